"""A sandboxed script engine for SpiffWorkflow.

Why this module exists
----------------------
Pathways (BPMN diagrams) are written by people we do not fully trust with the
server, yet they contain Python: script tasks, pre/post scripts, gateway
conditions, timer expressions and DMN cells. SpiffWorkflow's default
``PythonScriptEngine`` runs them with ``exec``/``eval`` and the *full* builtins,
so ``__import__('os').system(...)`` simply works. The "restricted" setup in
Spiff's docs (``TaskDataEnvironment(RestrictedPython.safe_globals)``) only swaps
the builtins and is escapable through ``().__class__.__base__.__subclasses__()``.
Nothing bounds time or memory either.

How the sandbox works
---------------------
1. **Restricted compilation.** Every script and expression is compiled with
   RestrictedPython (``compile_restricted_exec``/``_eval``) under
   :class:`SandboxPolicy`. Names and attributes starting with ``_`` are refused,
   attribute access goes through ``_getattr_``, item access, iteration and
   unpacking through their guards. The policy also refuses ``import``, class
   definitions, ``print``, bare ``except:`` and ``finally``.
2. **A tiny namespace.** The builtins are a short explicit list
   (:data:`SAFE_BUILTINS`); there is no ``getattr``, ``open``, ``eval``,
   ``type``, ``bytes`` or ``bytearray``. Their ``__import__`` only loads the two
   modules the C code of ``datetime`` imports on demand, and scripts cannot name
   it. The only modules are the ones in :data:`SCRIPT_GLOBALS`, rebuilt as
   synthetic modules holding just whitelisted members: the real ``datetime``
   module has a ``sys`` attribute, and ``datetime.sys.modules['os']`` would be a
   full escape.
   ``str.format``/``format_map`` are refused by RestrictedPython's
   ``safer_getattr`` (``'{0.__class__}'.format(x)`` reaches dunders), and
   ``mro``, ``translate``, ``from_bytes``, ``to_bytes`` are refused too.
3. **Size bounds.** The policy rewrites ``+``, ``*``, ``**``, ``<<`` and ``%``
   (and their augmented forms) into guarded helpers that refuse, *before*
   computing, a string longer than :data:`MAX_STRING_LENGTH`, a list or tuple
   longer than :data:`MAX_COLLECTION_LENGTH`, or an int above
   :data:`MAX_INT_BITS`. ``%`` formatting and f-string format specs are checked
   for huge widths; ``range``, ``round`` and ``sum`` are bounded; the
   size-expanding string methods (``ljust``, ``rjust``, ``center``, ``zfill``,
   ``expandtabs``, ``replace``, ``join``) check their result size first.
4. **Time bound.** While a script runs, a ``sys.settrace`` function checks a
   wall-clock deadline on every call and line event of sandboxed code and
   raises :class:`ScriptLimitExceeded` when it has passed. ``sys.settrace`` is
   per thread, so this works in any thread (unlike signals); the previous trace
   function (coverage, a debugger) is restored afterwards. Two gaps are closed
   by the policy: CPython 3.11 emits no trace event for a loop that jumps to
   itself (``while True: pass``), so every ``while`` body starts with a deadline
   check; and CPython removes a trace function that raises, so a script must
   never regain control after a limit error: every ``try`` gets a first handler
   that re-raises it (and ``RecursionError``/``MemoryError``, which the tracer
   itself can hit), and ``finally``/bare ``except:`` are refused.
5. **Memory backstop.** Besides the size bounds, the same trace function reads
   the process's resident memory (Linux ``/proc/self/statm``) every
   :data:`MEMORY_CHECK_INTERVAL` seconds and stops a script once the process has
   grown by more than :data:`MEMORY_GROWTH_LIMIT` since its first check (catches
   a loop that keeps appending big objects). A ``MemoryError`` (e.g. under an
   ``RLIMIT_AS`` set by the deployment) also becomes ``ScriptLimitExceeded``.
6. **Spiff semantics.** Scripts run in one namespace made of the task data plus
   the globals above (one dict, so comprehensions see task variables); after a
   script, its variables become the task data, without the injected guards,
   modules and callables, so the data stays serializable. On failure the task
   data is left untouched. Every failure reaches SpiffWorkflow as a
   ``WorkflowTaskException`` carrying the task (chained to the original
   error), so the caller can raise an incident.

Compiled code is cached per source string (:data:`COMPILE_CACHE_SIZE`).
Measured (Python 3.11, 2 vCPU AMD EPYC): a cached condition such as
``amount > 100`` costs about 3.5 µs through this environment (a bare ``eval``
of the same code object: 0.3 µs); SpiffWorkflow's unsandboxed
``TaskDataEnvironment`` needs 9-23 µs because it recompiles every time. A short
two-line script costs about 19 µs (36 µs unsandboxed). Traced loops pay about
0.4 µs per line executed.

SpiffWorkflow gives a workflow its unsafe default engine whenever none is
passed, including after ``BpmnWorkflowSerializer.deserialize_json``: set
``workflow.script_engine`` on every workflow you build *or load*.

Residual risks (an in-process sandbox cannot close these)
---------------------------------------------------------
* A single C-level call cannot be interrupted: the deadline is only checked
  between Python events. Calls over bounded inputs (``sorted``/``sum`` over a
  million items, big-int arithmetic below the bit bound) can overrun the
  deadline by up to a few seconds.
* Size bounds are per operation. Repeated references multiply sizes without
  copying: ``a = [0] * 10**6; b = [a] * 10**6`` is cheap, but ``str(b)`` (or
  serializing ``b`` as task data) expands to 10**12 items. In-place growth
  (``list.extend``, slice assignment) is only caught by the memory backstop,
  which is coarse, process-wide (another thread's allocations count) and
  Linux-only. Run workers under an OS memory limit (cgroup or ``RLIMIT_AS``) and
  bound the size of serialized task data in the persistence layer.
* Compilation is not time-bounded: bound the size of scripts at deploy time.
* Augmented assignment to items (``d['n'] += 1``) is refused by RestrictedPython;
  scripts write ``d['n'] = d['n'] + 1``.
* RestrictedPython is the security boundary; a bug in it or in a whitelisted
  object's attributes would be a bug here.
"""
from __future__ import annotations

import ast
import datetime
import functools
import importlib
import math
import mmap
import operator
import re
import sys
import time
import traceback
from types import CodeType, ModuleType

from RestrictedPython import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr_raise,
)
from RestrictedPython.transformer import RestrictingNodeTransformer, copy_locations
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

__all__ = [
    "ScriptLimitExceeded",
    "ScriptRejected",
    "SandboxEnvironment",
    "SandboxScriptEngine",
    "create_script_engine",
]

DEFAULT_TIME_LIMIT = 1.0  # seconds of wall-clock time per script or expression
MAX_STRING_LENGTH = 10_000_000  # characters (or bytes) in one string
MAX_COLLECTION_LENGTH = 1_000_000  # items in one list, tuple or range
MAX_INT_BITS = 100_000  # about 30 000 decimal digits
MEMORY_GROWTH_LIMIT = 512 * 1024 * 1024  # bytes of resident memory one script may add
MEMORY_CHECK_INTERVAL = 0.01  # seconds between two resident-memory readings
COMPILE_CACHE_SIZE = 4096
SANDBOX_FILENAME = "<bpmn-script>"  # marks sandboxed frames for the tracer and tracebacks


class ScriptLimitExceeded(Exception):
    """A script went over its time, size or memory bound."""


class ScriptRejected(SyntaxError):
    """A script does not compile under the sandbox policy (syntax or forbidden construct)."""

    def __init__(self, errors: tuple[str, ...]):
        super().__init__("; ".join(errors))
        self.errors = errors
        match = re.match(r"Line (\d+):", errors[0]) if errors else None
        self.lineno = int(match.group(1)) if match else None

    def __str__(self):
        return "; ".join(self.errors)  # each error already names its line


# Exceptions a script may not catch: after a limit error no sandboxed code may run
# again, because the trace function that enforces the deadline may be gone.
UNCATCHABLE = (ScriptLimitExceeded, RecursionError, MemoryError)


# --------------------------------------------------------------------------- size guards

def _refuse(what: str, size: int, limit: int) -> None:
    raise ScriptLimitExceeded(f"{what} of {size} exceeds the sandbox limit of {limit}")


def _check_int_bits(bits: float) -> None:
    if bits > MAX_INT_BITS:
        _refuse("an integer with a bit length", math.ceil(bits), MAX_INT_BITS)


def _check_text_length(length: int) -> None:
    if length > MAX_STRING_LENGTH:
        _refuse("a string length", length, MAX_STRING_LENGTH)


def _check_sequence_length(sequence, length: int) -> None:
    if isinstance(sequence, (str, bytes)):
        _check_text_length(length)
    elif length > MAX_COLLECTION_LENGTH:
        _refuse("a collection length", length, MAX_COLLECTION_LENGTH)


_SEQUENCES = (str, bytes, list, tuple)


def _check_add(left, right) -> None:
    if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        _check_sequence_length(left, len(left) + len(right))


def _check_mul(left, right) -> None:
    if isinstance(left, int) and isinstance(right, int):
        _check_int_bits(left.bit_length() + right.bit_length())
    elif isinstance(left, _SEQUENCES) and isinstance(right, int):
        _check_sequence_length(left, len(left) * right)
    elif isinstance(right, _SEQUENCES) and isinstance(left, int):
        _check_sequence_length(right, len(right) * left)


def _check_pow(base, exponent) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        _check_int_bits(exponent * math.log2(abs(base)))


def _check_lshift(value, shift) -> None:
    if isinstance(value, int) and isinstance(shift, int) and value:
        _check_int_bits(value.bit_length() + shift)


# %-formatting: a conversion specifier that has a width or a precision (the
# lookahead skips the common "%s", so huge templates scan at C speed).
_PRINTF_NUMBERS = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?=[\d*.])(\*|\d*)(?:\.(\*|\d*))?")


def _check_mod(template, values) -> None:
    """Bound ``template % values`` for str and bytes templates (ints are plain modulo)."""
    if not isinstance(template, (str, bytes)):
        return
    text = template.decode("latin-1") if isinstance(template, bytes) else template
    widest = 0
    for number in (number for pair in _PRINTF_NUMBERS.findall(text) for number in pair if number):
        if number == "*":
            raise ScriptLimitExceeded("'*' widths in %-formatting are not supported")
        widest = max(widest, _format_width(number))
    if isinstance(values, dict):
        values = values.values()
    elif not isinstance(values, tuple):
        values = (values,)
    longest = max((len(v) for v in values if isinstance(v, (str, bytes))), default=0)
    # Every "%" may be a specifier printing the widest field or the longest value.
    _check_text_length(len(text) + text.count("%") * max(widest, longest))


def _format_width(digits: str) -> int:
    """A width or precision written in a format string, refused above the string bound."""
    if len(digits) > len(str(MAX_STRING_LENGTH)) or int(digits) > MAX_STRING_LENGTH:
        raise ScriptLimitExceeded(f"a format width of {digits[:30]} exceeds the sandbox limit of {MAX_STRING_LENGTH}")
    return int(digits)


def _guarded(check, operation):
    def apply(left, right):
        check(left, right)
        return operation(left, right)

    apply.__name__ = operation.__name__
    return apply


# Names the policy substitutes for binary operators.
_BINARY_HELPERS = {
    ast.Add: ("_add_", _guarded(_check_add, operator.add)),
    ast.Mult: ("_mul_", _guarded(_check_mul, operator.mul)),
    ast.Pow: ("_pow_", _guarded(_check_pow, operator.pow)),
    ast.LShift: ("_lshift_", _guarded(_check_lshift, operator.lshift)),
    ast.Mod: ("_mod_", _guarded(_check_mod, operator.mod)),
}

# RestrictedPython turns ``x op= y`` into ``x = _inplacevar_('op=', x, y)``. The
# in-place operator functions keep Python's semantics (``lst += other`` extends
# the same list object).
_INPLACE_OPERATIONS = {
    "+=": _guarded(_check_add, operator.iadd),
    "*=": _guarded(_check_mul, operator.imul),
    "**=": _guarded(_check_pow, operator.ipow),
    "<<=": _guarded(_check_lshift, operator.ilshift),
    "%=": _guarded(_check_mod, operator.imod),
    "-=": operator.isub,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
    "@=": operator.imatmul,
}


def _inplacevar(op: str, target, value):
    return _INPLACE_OPERATIONS[op](target, value)


_CONVERSIONS = {ord("s"): str, ord("r"): repr, ord("a"): ascii}
_DIGIT_RUNS = re.compile(r"\d+")


def _format_value(value, conversion: int, spec: str) -> str:
    """One ``{value!conversion:spec}`` field of an f-string, with the width bounded."""
    if conversion != -1:
        value = _CONVERSIONS[conversion](value)
    for digits in _DIGIT_RUNS.findall(spec):
        _format_width(digits)
    return format(value, spec)


# Size-expanding methods of str and bytes, called with the string first.

def _ljust(text, width, *fill):
    _check_text_length(width)
    return text.ljust(width, *fill)


def _rjust(text, width, *fill):
    _check_text_length(width)
    return text.rjust(width, *fill)


def _center(text, width, *fill):
    _check_text_length(width)
    return text.center(width, *fill)


def _zfill(text, width):
    _check_text_length(width)
    return text.zfill(width)


def _expandtabs(text, tabsize=8):
    tab = "\t" if isinstance(text, str) else b"\t"
    _check_text_length(len(text) + text.count(tab) * max(tabsize, 0))
    return text.expandtabs(tabsize)


def _replace(text, old, new, count=-1):
    occurrences = text.count(old) if count < 0 else min(count, text.count(old))
    _check_text_length(len(text) + occurrences * max(len(new) - len(old), 0))
    return text.replace(old, new, count)


def _join(separator, items):
    items = list(items)
    parts = sum(len(item) for item in items if isinstance(item, (str, bytes)))
    _check_text_length(parts + len(separator) * max(len(items) - 1, 0))
    return separator.join(items)


_STRING_METHODS = {
    "ljust": _ljust,
    "rjust": _rjust,
    "center": _center,
    "zfill": _zfill,
    "expandtabs": _expandtabs,
    "replace": _replace,
    "join": _join,
}

# Attributes refused on every object, on top of RestrictedPython's rules:
# ``mro`` leads to ``BaseException``/``object``; the others build unbounded results.
_DENIED_ATTRIBUTES = frozenset({"mro", "translate", "from_bytes", "to_bytes"})


def _guarded_getattr(obj, name: str):
    if name in _DENIED_ATTRIBUTES:
        raise AttributeError(f'"{name}" is not available in scripts')
    value = safer_getattr_raise(obj, name)  # refuses "_" names, str.format, frames...
    if name in _STRING_METHODS:
        if isinstance(obj, (str, bytes)):
            return functools.partial(_STRING_METHODS[name], obj)
        if isinstance(obj, type) and issubclass(obj, (str, bytes)):
            return _STRING_METHODS[name]
    return value


def _apply(function, *args, **kwargs):
    """Target of calls with ``*args``/``**kwargs`` (RestrictedPython's ``_apply_``)."""
    return function(*args, **kwargs)


def _range(*args):
    values = range(*args)
    try:
        length = len(values)
    except OverflowError:
        length = sys.maxsize
    if length > MAX_COLLECTION_LENGTH:
        _refuse("a range length", length, MAX_COLLECTION_LENGTH)
    return values


def _round(number, ndigits=None):
    if isinstance(number, int) and isinstance(ndigits, int) and ndigits < 0:
        _check_int_bits(-ndigits * math.log2(10))  # rounding computes 10 ** -ndigits
    return round(number, ndigits)


def _sum(iterable, /, start=0):
    if isinstance(start, _SEQUENCES):
        raise TypeError("sum() of sequences is not supported in scripts; use a comprehension")
    return sum(iterable, start)


# --------------------------------------------------------------------------- namespace

# C code of whitelisted classes imports these on first use (datetime.strptime,
# strftime) through the *calling frame's* ``__import__``.
_LAZY_IMPORTS = frozenset({"_strptime", "time"})


def _lazy_import(name, globals=None, locals=None, fromlist=(), level=0):
    """``__import__`` for the interpreter only: scripts cannot name it (names starting with "_" are refused)."""
    if name not in _LAZY_IMPORTS or level:
        raise ImportError(f"importing {name!r} is not allowed in scripts")
    return importlib.import_module(name)


SAFE_BUILTINS = {
    "__import__": _lazy_import,
    "abs": abs,
    "all": all,
    "any": any,
    "bool": bool,
    "dict": dict,
    "enumerate": enumerate,
    "float": float,
    "int": int,
    "isinstance": isinstance,
    "len": len,
    "list": list,
    "max": max,
    "min": min,
    "range": _range,
    "round": _round,
    "set": set,
    "sorted": sorted,
    "str": str,
    "sum": _sum,
    "tuple": tuple,
    "zip": zip,
    "ArithmeticError": ArithmeticError,
    "AttributeError": AttributeError,
    "Exception": Exception,
    "IndexError": IndexError,
    "KeyError": KeyError,
    "LookupError": LookupError,
    "TypeError": TypeError,
    "ValueError": ValueError,
    "ZeroDivisionError": ZeroDivisionError,
}


def _synthetic_module(module: ModuleType, members: tuple[str, ...]) -> ModuleType:
    """A module object holding only the listed members of ``module``."""
    copy = ModuleType(module.__name__)
    for name in members:
        setattr(copy, name, getattr(module, name))
    return copy


_MATH_MEMBERS = (
    "pi", "e", "tau", "inf", "nan",
    "ceil", "floor", "trunc", "fabs", "fmod", "fsum", "gcd", "isclose", "isfinite", "isinf",
    "isnan", "sqrt", "isqrt", "exp", "log", "log10", "log2", "pow", "copysign", "hypot",
    "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "degrees", "radians",
)  # not factorial, comb, perm, prod, lcm: unbounded work inside one C call

# The modules and classes scripts see as globals; there is no import statement.
SCRIPT_GLOBALS = {
    "datetime": _synthetic_module(
        datetime, ("date", "datetime", "time", "timedelta", "timezone", "MINYEAR", "MAXYEAR")
    ),
    "date": datetime.date,
    "timedelta": datetime.timedelta,
    "math": _synthetic_module(math, _MATH_MEMBERS),
}

# Names the compiled code relies on; they always override task data.
_GUARDS = {
    "__builtins__": SAFE_BUILTINS,
    "_getattr_": _guarded_getattr,
    "_getitem_": default_guarded_getitem,
    "_getiter_": default_guarded_getiter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": full_write_guard,
    "_inplacevar_": _inplacevar,
    "_apply_": _apply,
    "_format_": _format_value,
    "_uncatchable_": UNCATCHABLE,
    **dict(_BINARY_HELPERS.values()),
}
_CHECK_LIMITS = "_check_limits_"  # bound per run to the watchdog's check
_GUARD_NAMES = frozenset(_GUARDS) | {_CHECK_LIMITS}


# --------------------------------------------------------------------------- compile policy

def _call(name: str, args: list[ast.expr], like: ast.AST) -> ast.Call:
    node = ast.Call(func=ast.Name(name, ast.Load()), args=args, keywords=[])
    copy_locations(node, like)
    return node


class SandboxPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy plus size guards and rules that keep limits enforceable."""

    def visit_BinOp(self, node):
        node = super().visit_BinOp(node)
        helper = _BINARY_HELPERS.get(type(node.op))
        if helper is None:
            return node
        return _call(helper[0], [node.left, node.right], like=node)

    def visit_FormattedValue(self, node):
        node = super().visit_FormattedValue(node)
        spec = node.format_spec or ast.Constant("")
        node.value = _call("_format_", [node.value, ast.Constant(node.conversion), spec], like=node.value)
        node.conversion = -1
        node.format_spec = None
        return node

    def visit_While(self, node):
        node = super().visit_While(node)
        check = ast.Expr(_call(_CHECK_LIMITS, [], like=node))
        copy_locations(check, node)
        node.body.insert(0, check)
        return node

    def visit_Try(self, node):
        node = super().visit_Try(node)
        if node.finalbody:
            self.error(node, "'finally' is not allowed in scripts.")
        reraise = ast.ExceptHandler(type=ast.Name("_uncatchable_", ast.Load()), name=None, body=[ast.Raise()])
        copy_locations(reraise, node)
        node.handlers.insert(0, reraise)
        return node

    def visit_ExceptHandler(self, node):
        if node.type is None:
            self.error(node, "A bare 'except:' is not allowed; name the exception, e.g. 'except ValueError:'.")
        return super().visit_ExceptHandler(node)

    def visit_Import(self, node):
        self.error(node, f"import is not allowed; scripts can use: {', '.join(SCRIPT_GLOBALS)}.")

    visit_ImportFrom = visit_Import

    def visit_ClassDef(self, node):
        self.error(node, "Class definitions are not allowed in scripts.")

    def visit_Name(self, node):
        if node.id in ("print", "printed"):
            self.error(node, f'"{node.id}" is not available in scripts.')
        return super().visit_Name(node)


@functools.lru_cache(maxsize=COMPILE_CACHE_SIZE)
def _compile(source: str, mode: str) -> CodeType:
    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    result = compiler(source, filename=SANDBOX_FILENAME, policy=SandboxPolicy)
    if result.errors:
        raise ScriptRejected(result.errors)
    return result.code


# --------------------------------------------------------------------------- limits at run time

_PAGE_SIZE = mmap.PAGESIZE


def _resident_memory() -> int | None:
    """Resident set size of this process in bytes, or None where /proc is unavailable."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


class _Watchdog:
    """Deadline and memory checks for one run; ``trace`` is installed with ``sys.settrace``."""

    __slots__ = ("time_limit", "deadline", "next_memory_check", "memory_baseline")

    def __init__(self, time_limit: float):
        now = time.monotonic()
        self.time_limit = time_limit
        self.deadline = now + time_limit
        self.next_memory_check = now + MEMORY_CHECK_INTERVAL
        self.memory_baseline = None  # taken at the first check: reading it costs a few µs

    def trace(self, frame, event, arg):
        if frame.f_code.co_filename != SANDBOX_FILENAME:
            return None  # do not trace (or interrupt) library code called by the script
        self.check()
        return self.trace

    def check(self) -> None:
        now = time.monotonic()
        if now >= self.deadline:
            raise ScriptLimitExceeded(f"script exceeded its time limit of {self.time_limit:g} s")
        if now >= self.next_memory_check:
            self.next_memory_check = now + MEMORY_CHECK_INTERVAL
            self._check_memory()

    def _check_memory(self) -> None:
        resident = _resident_memory()
        if resident is None:
            return
        if self.memory_baseline is None:
            self.memory_baseline = resident
        elif resident - self.memory_baseline > MEMORY_GROWTH_LIMIT:
            raise ScriptLimitExceeded(
                f"script made the process grow by more than {MEMORY_GROWTH_LIMIT // 2**20} MiB"
            )


# --------------------------------------------------------------------------- SpiffWorkflow glue

def _is_code_or_module(value) -> bool:
    return callable(value) or isinstance(value, ModuleType)


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """Runs scripts and expressions under the sandbox; holds no per-run state."""

    def __init__(self, time_limit: float = DEFAULT_TIME_LIMIT):
        if not time_limit > 0:
            raise ValueError("time_limit must be a positive number of seconds")
        super().__init__()
        self.time_limit = time_limit

    def evaluate(self, expression, context, external_context=None):
        code = _compile(expression.strip(), "eval")
        return self._run(code, self._namespace(context, external_context))

    def execute(self, script, context, external_context=None):
        code = _compile(script, "exec")
        namespace = self._namespace(context, external_context)
        self._run(code, namespace)
        data = self._task_data(namespace, context, external_context or {})
        context.clear()
        context.update(data)
        return True

    def call_service(self, context, **kwargs):
        raise NotImplementedError("service tasks are not supported by the sandboxed script engine")

    @staticmethod
    def _namespace(context, external_context):
        namespace = dict(SCRIPT_GLOBALS)
        namespace.update(external_context or {})
        namespace.update(context)
        namespace.update(_GUARDS)
        return namespace

    @staticmethod
    def _task_data(namespace, context, external_context):
        """The script's variables, without what the environment injected."""
        data = {
            name: value
            for name, value in namespace.items()
            if name not in _GUARD_NAMES and name not in external_context and not _is_code_or_module(value)
        }
        data.update((name, context[name]) for name in _GUARD_NAMES & context.keys())
        return data

    def _run(self, code: CodeType, namespace: dict):
        """Evaluate ``code`` (an expression or a script) with the limits in force."""
        watchdog = _Watchdog(self.time_limit)
        namespace[_CHECK_LIMITS] = watchdog.check
        previous_tracer = sys.gettrace()
        sys.settrace(watchdog.trace)
        try:
            return eval(code, namespace)  # noqa: S307 - restricted code in a guarded namespace
        except MemoryError as error:
            raise ScriptLimitExceeded("script ran out of memory") from error
        finally:
            sys.settrace(previous_tracer)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class SandboxScriptEngine(PythonScriptEngine):
    """``PythonScriptEngine`` over :class:`SandboxEnvironment` with clearer errors.

    Every failure surfaces as ``WorkflowTaskException(task=...)`` whose
    ``__cause__`` is the original error (``ScriptLimitExceeded``,
    ``ScriptRejected``, ``NameError``...).
    """

    def __init__(self, time_limit: float = DEFAULT_TIME_LIMIT):
        super().__init__(environment=SandboxEnvironment(time_limit))

    def evaluate(self, task, expression, external_context=None):
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except Exception as error:
            message = f"Error evaluating expression '{expression}': {_describe(error)}"
            raise WorkflowTaskException(message, task=task, exception=error) from error

    def execute(self, task, script, external_context=None):
        try:
            return self.environment.execute(script, task.data, external_context)
        except Exception as error:
            raise self.create_task_exec_exception(task, script, error) from error

    def call_service(self, task, **kwargs):
        # Replaces the library's version, whose error path hides the real error
        # behind "NameError: name 'script' is not defined".
        raise WorkflowTaskException(
            f"Service tasks are not supported (operation {kwargs.get('operation_name')!r})", task=task
        )

    def create_task_exec_exception(self, task, script, err):
        line_number, error_line = self.get_error_line_number_and_content(script, err)
        return WorkflowTaskException(
            _describe(err), task=task, exception=err, line_number=line_number, error_line=error_line
        )

    def get_error_line_number_and_content(self, script, err):
        if isinstance(err, SyntaxError):
            line_number = err.lineno or 0
        else:
            frames = traceback.extract_tb(err.__traceback__)
            line_numbers = [frame.lineno for frame in frames if frame.filename == SANDBOX_FILENAME]
            line_number = line_numbers[-1] if line_numbers else 0
        lines = script.splitlines()
        error_line = lines[line_number - 1] if 0 < line_number <= len(lines) else ""
        return line_number, error_line


def create_script_engine(*, time_limit: float = DEFAULT_TIME_LIMIT) -> PythonScriptEngine:
    """A sandboxed script engine; stateless, so one instance can serve all workflows and threads.

    Pass it to ``BpmnWorkflow(..., script_engine=...)`` and assign it to
    ``workflow.script_engine`` after every deserialization: SpiffWorkflow
    otherwise falls back to its unsandboxed ``PythonScriptEngine``.
    """
    return SandboxScriptEngine(time_limit)
