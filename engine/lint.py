"""Deploy-time lint: pluggable rules that look at a parsed pathway and report Problems.

A rule is any callable taking a `LintInput` and returning Problems: severity "error"
blocks the deploy, "warning" is kept with the deployed version. `DEFAULT_RULES` holds
the generic rules below; a new rule is one function plus `DEFAULT_RULES.append(rule)`.

The checks exist because SpiffWorkflow only finds these mistakes at run time, in the
middle of someone's case: timer, script and condition texts are Python that it
evaluates when the task is reached, and it knows nothing of our forms and lanes.
"""
from __future__ import annotations

import ast
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Set
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from lxml import etree
from SpiffWorkflow.bpmn.parser.util import BPMN_MODEL_NS
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from engine.errors import Problem

if TYPE_CHECKING:
    from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec

    from engine.bpmn_parsing import LaneInfo, UserTaskInfo

SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
_NS = {"bpmn": BPMN_MODEL_NS, "spiffworkflow": SPIFF_NS}


@dataclass(frozen=True)
class LintInput:
    """What a rule may look at: our lxml trees (with line numbers) and the parsed pathway's parts."""

    bpmn: etree._Element  # root of the uploaded BPMN file
    dmns: Mapping[str, etree._Element]  # file label -> root of each uploaded DMN file
    spec: BpmnProcessSpec
    subprocess_specs: Mapping[str, BpmnProcessSpec]
    user_tasks: Mapping[str, UserTaskInfo]
    lanes: Mapping[str, LaneInfo]
    exits: Set[str]
    form_keys: Container[str]


Rule = Callable[[LintInput], Iterable[Problem]]


def run_rules(rules: Iterable[Rule], lint_input: LintInput) -> list[Problem]:
    """All findings of all rules; a rule that crashes is reported, not propagated."""
    problems = []
    for rule in rules:
        try:
            problems.extend(rule(lint_input))
        except Exception as exc:
            name = getattr(rule, "__name__", repr(rule))
            error = f"{type(exc).__name__}: {exc}"
            problems.append(Problem("lint", f"lint rule {name} failed: {error}", code="rule-crashed",
                                    params={"rule": name, "error": error}))
    return problems


# --- Rule 1: timers are quoted ISO 8601 literals -------------------------------------------------


def _parse_duration(value: str) -> None:
    if not value.upper().startswith("P") or not TimerEventDefinition.parse_iso_duration(value):
        raise ValueError(value)


def _parse_date(value: str) -> None:
    if not isinstance(TimerEventDefinition.parse_time_or_duration(value), datetime):
        raise ValueError(value)


def _parse_cycle(value: str) -> None:
    if not value.upper().startswith("R"):
        raise ValueError(value)
    TimerEventDefinition.parse_iso_recurring_interval(value)


_TIMER_FORMATS = {  # element -> (what it must evaluate to, check with SpiffWorkflow's own parsing)
    "timeDate": ('an ISO 8601 date-time like "2025-01-31T09:00:00"', _parse_date),
    "timeDuration": ('an ISO 8601 duration like "P15D"', _parse_duration),
    "timeCycle": ('an ISO 8601 repeating interval like "R3/P1D"', _parse_cycle),
}


def _parses(parse: Callable[[str], None], value: str) -> bool:
    try:
        parse(value)
    except Exception:  # SpiffWorkflow's parsers raise bare Exception, ValueError, AttributeError...
        return False
    return True


def timer_expressions(lint: LintInput) -> Iterator[Problem]:
    """Timer expressions are Python evaluated at run time to an ISO 8601 string: check the literal ones now."""
    for kind, (expected, parse) in _TIMER_FORMATS.items():
        for element in lint.bpmn.iter(f"{{{BPMN_MODEL_NS}}}{kind}"):
            problem = _check_timer(element, kind, expected, parse)
            if problem is not None:
                yield problem
    for task in lint.user_tasks.values():
        if task.due_in is not None and not _parses(_parse_duration, task.due_in):
            message = f"spie:dueIn '{task.due_in}' of user task {task.bpmn_id} is not an ISO 8601 duration like P15D"
            yield Problem("timer-expression", message, element_id=task.bpmn_id, line=task.line,
                          code="due-in-not-duration", params={"value": task.due_in, "task": task.bpmn_id})


def _check_timer(element: etree._Element, kind: str, expected: str, parse) -> Problem | None:
    owner = _owner_id(element)
    source = (element.text or "").lstrip(" \t")  # what SpiffWorkflow hands to eval()

    def problem(message: str, code: str, severity: str = "error", **params) -> Problem:
        return Problem("timer-expression", f"{kind} of {owner} {message}", owner, element.sourceline, severity,
                       code=code, params={"kind": kind, "owner": owner, **params})

    if not source.strip():
        return problem(f"is empty; it must be {expected}", "timer-empty")
    try:
        body = ast.parse(source, mode="eval").body
    except SyntaxError as exc:
        body, syntax_error = None, exc
    if isinstance(body, ast.Constant) and isinstance(body.value, str):
        return None if _parses(parse, body.value) else problem(f"is {body.value!r}, which is not {expected}",
                                                               "timer-not-iso", value=body.value)
    bare = source.strip()
    if _parses(parse, bare):
        failure = "a NameError" if isinstance(body, ast.Name) else "an error"
        return problem(
            f"is {bare} without quotes: timer expressions are Python, so this is {failure} at run time; "
            f'write it with quotes: "{bare}"', "timer-unquoted", value=bare
        )
    if body is None:
        return problem(f"is not a Python expression ({syntax_error.msg}); it must be {expected}, with quotes",
                       "timer-not-python", error=syntax_error.msg)
    return problem(f"is computed at run time ({bare}); it cannot be checked at deploy", "timer-computed",
                   severity="warning", value=bare)


# --- Rules 2 and 3: user tasks have a known form and a lane ---------------------------------------


def user_task_forms(lint: LintInput) -> Iterator[Problem]:
    for task in lint.user_tasks.values():
        if not task.form_key:
            message = f"user task {_describe(task)} has no form: set spie:formKey"
            yield Problem("form-key", message, element_id=task.bpmn_id, line=task.line, code="form-missing",
                          params={"task": _describe(task)})
        elif task.form_key not in lint.form_keys:
            message = f"user task {_describe(task)} uses form key '{task.form_key}', which is not a known form"
            yield Problem("form-key", message, element_id=task.bpmn_id, line=task.line, code="form-unknown",
                          params={"task": _describe(task), "form_key": task.form_key})


def user_task_lanes(lint: LintInput) -> Iterator[Problem]:
    for task in lint.user_tasks.values():
        if task.lane is None:
            message = f"user task {_describe(task)} is in no lane: put it in the lane of the structure that does it"
            yield Problem("user-task-lane", message, element_id=task.bpmn_id, line=task.line, code="task-without-lane",
                          params={"task": _describe(task)})


# --- Rule 4: scripts and conditions compile as Python --------------------------------------------

_SCRIPTS = ".//bpmn:scriptTask/bpmn:script | .//spiffworkflow:preScript | .//spiffworkflow:postScript"
_CONDITIONS = ".//bpmn:conditionExpression | .//bpmn:condition | .//bpmn:completionCondition"


def python_expressions(lint: LintInput) -> Iterator[Problem]:
    for element in lint.bpmn.xpath(_SCRIPTS, namespaces=_NS):
        yield from _compile_problems(element, [element.text or ""], "exec", "script")
    for element in lint.bpmn.xpath(_CONDITIONS, namespaces=_NS):
        yield from _compile_problems(element, [(element.text or "").lstrip(" \t")], "eval", "condition")
    for label, root in lint.dmns.items():
        yield from _dmn_problems(label, root)


def _dmn_problems(label: str, root: etree._Element) -> Iterator[Problem]:
    """DMN cells are Python too; SpiffWorkflow only checks output entries, and only when the table is used."""
    for element in root.xpath(".//*[local-name()='inputExpression' or local-name()='outputEntry']/*[local-name()='text']"):
        yield from _compile_problems(element, [element.text or ""], "eval", "DMN expression", label)
    for element in root.xpath(".//*[local-name()='inputEntry']/*[local-name()='text']"):
        yield from _compile_problems(element, _unary_test_sources(element.text or ""), "eval", "DMN input entry", label)


def _unary_test_sources(text: str) -> list[str]:
    """The Python SpiffWorkflow's DMN engine may build from an input entry: any of these must compile."""
    if text.strip() in ("", "-"):
        return []
    if "?" in text:  # '?' stands for the input value
        return [text.replace("?", "value")]
    return [f"(value) == ({text})", f"value {text}"]


def _compile_problems(element, sources: list[str], mode: str, what: str, label: str | None = None):
    """One problem unless one of the sources compiles; its line is the line of the error in the file."""
    sources = [source for source in sources if source.strip()]
    errors = []
    for source in sources:
        try:
            compile(source, f"<{what}>", mode)
            return
        except SyntaxError as exc:
            errors.append(exc)
    if not errors:
        return
    text_lines = (element.text or "").splitlines() or [""]
    line_in_text = min(max(errors[0].lineno or 1, 1), len(text_lines))
    owner = _owner_id(element)
    message = (
        f"{what} of {owner} is not valid Python: {errors[0].msg} "
        f"(line {line_in_text} of the {what}: {text_lines[line_in_text - 1].strip()})"
    )
    yield Problem(
        "python-syntax",
        f"{label}: {message}" if label else message,
        element_id=owner,
        line=element.sourceline + line_in_text - 1,
        code="python-invalid",
        params={"what": what, "owner": owner, "error": errors[0].msg, "line": line_in_text,
                "text": text_lines[line_in_text - 1].strip(), **({"file": label} if label else {})},
    )


# --- Helpers -------------------------------------------------------------------------------------


def _owner_id(element: etree._Element) -> str | None:
    """Id of the element a problem is about: the task, flow or event holding this text."""
    for ancestor in element.iterancestors():
        if ancestor.get("id") and not ancestor.tag.endswith("EventDefinition"):
            return ancestor.get("id")
    return None


def _describe(task: UserTaskInfo) -> str:
    return f"{task.bpmn_id} ({task.name})" if task.name else task.bpmn_id


DEFAULT_RULES: list[Rule] = [timer_expressions, user_task_forms, user_task_lanes, python_expressions]
