"""Turn uploaded BPMN/DMN bytes into SpiffWorkflow specs, safely, or refuse them with precise problems.

Why not hand the upload to SpiffWorkflow's parser directly: its defaults are unsafe
and unhelpful for files that designers upload.

- It parses with lxml's default parser, accepts a DOCTYPE and has no size bound.
  We bound the size, parse every document ourselves with entities, DTD loading and
  network access off, refuse any DOCTYPE, and hand Spiff the already-parsed tree.
- XSD validation is opt-in (without it, unknown elements and duplicate ids pass).
- Malformed XML escapes as a raw lxml exception; semantic errors carry an element
  id but no line; a flow to a missing element is reported as "found two items,
  perhaps a form has the same ID". Every failure becomes a `Problem` naming the
  rule, the element id and the line; nothing but DeployError or TooLarge escapes.

Our extension attributes (spie:formKey, spie:exit, spie:dueIn, spie:structureType)
are read from our own tree, then the lint rules of `engine.lint` run on the result.
"""
from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lxml import etree
from SpiffWorkflow.bpmn.parser.util import BPMN_MODEL_NS
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import CallActivity
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask
from SpiffWorkflow.dmn.parser.BpmnDmnParser import SCHEMAS as DMN_SCHEMAS
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser

from engine.errors import DeployError, Problem, TooLarge
from engine.lint import DEFAULT_RULES, SPIFF_NS, LintInput, Rule, run_rules

SPIE_NS = "https://spie-parcours.fr/schema/bpmn/1.0"  # our extension namespace, prefix "spie"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
MAX_XML_BYTES = 5 * 1024 * 1024

MAIN_FILE = "pathway.bpmn"  # the name Spiff and our messages give the uploaded BPMN
_NS = {"bpmn": BPMN_MODEL_NS, "spiffworkflow": SPIFF_NS}
_SCOPE_TAGS = {f"{{{BPMN_MODEL_NS}}}{tag}" for tag in ("process", "subProcess", "transaction", "adHocSubProcess")}
_PREFIXES = {BPMN_MODEL_NS: "bpmn", SPIFF_NS: "spiffworkflow", **{ns: "dmn" for ns in DMN_SCHEMAS}}
_ELEMENT_REPR = re.compile(r"<Element (\S+) at 0x[0-9a-f]+>")
_MISSING_TARGET = re.compile(r"perhaps a form has the same ID\? \((?P<target>.*)\)")


# A deployed pathway another one may call: its BPMN, or its BPMN and DMN files.
LibraryEntry = bytes | tuple[bytes, Sequence[bytes]]


@dataclass(frozen=True)
class UserTaskInfo:
    bpmn_id: str
    name: str | None
    lane: str | None
    form_key: str | None
    exit: bool
    due_in: str | None
    line: int | None
    audience: str = "referent"  # spie:audience: referent, supervisor or pilot
    action: str | None = None  # spie:action: designate-referent, joint-meeting, orientation, prescribe


@dataclass(frozen=True)
class LaneInfo:
    """Who works a lane: structure types in order of preference, or a data variable naming one."""

    structure_types: tuple[str, ...]  # from spie:structureType="ccas|departement"; empty when absent
    structure_type_variable: str | None = None  # spie:structureTypeVariable


@dataclass
class ParsedPathway:
    key: str  # id of the pathway's executable process
    name: str  # process name (or key)
    spec: BpmnProcessSpec
    subprocess_specs: dict  # {process_id: spec} for call activities and embedded subprocesses
    called_processes: set[str]  # ids of processes called through callActivity (this file or the library)
    user_tasks: dict[str, UserTaskInfo]  # every userTask of this file that runs (incl. in subprocesses)
    lanes: dict[str, LaneInfo]  # lane name -> its structure types
    exits: set[str]  # ids of elements with spie:exit="true"
    processes: set[str] = field(default_factory=set)  # ids of the processes and subprocesses of this file
    # callActivity id -> spie:receivingStructureType (None when absent)
    hand_offs: dict[str, str | None] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)


def parse_pathway(
    bpmn_xml: bytes,
    dmn_xmls: Sequence[bytes] = (),
    *,
    library: Mapping[str, LibraryEntry] = {},
    form_keys: Container[str] = frozenset(),
    validate: bool = True,
    rules: Sequence[Rule] | None = None,
) -> ParsedPathway:
    """Parse one pathway file (plus its DMN files and the deployed files it calls).

    `validate=False` is the fast path for a stored, already-validated version:
    still parsed safely, but no structural checks, no XSD and no lint.
    Raises TooLarge for an oversized upload, DeployError for anything refused.
    """
    try:
        return _parse(bpmn_xml, dmn_xmls, library, form_keys, validate, _default_rules() if rules is None else rules)
    except (DeployError, TooLarge):
        raise
    except Exception as exc:  # a bug or quirk in lxml/SpiffWorkflow must not escape as a crash
        error = f"{type(exc).__name__}: {exc}"
        raise DeployError([Problem("parse", f"unexpected {type(exc).__name__} while parsing: {exc}",
                                   code="parse-crashed", params={"error": error})]) from exc


def _default_rules() -> list[Rule]:
    """The generic rules, then the SPIE ones (imported late: they need the directory's vocabulary)."""
    from engine.spie_lint import SPIE_RULES

    return [*DEFAULT_RULES, *SPIE_RULES]


def _parse(bpmn_xml, dmn_xmls, library, form_keys, validate, rules) -> ParsedPathway:
    files = [(MAIN_FILE, bpmn_xml), *((f"decision-{n}.dmn", raw) for n, raw in enumerate(dmn_xmls, 1))]
    for label, raw in files:
        _check_size(raw, label)
    main, *dmns = _read_all(files)
    if validate:
        _raise_if_any(_check_structure(main, dmns))
    process = _choose_process(main)
    key = process.get("id")
    library_documents, library_decisions = _library_documents(main, library, known_decisions=set(dmn_xmls))
    spec, subprocess_specs = _spiff_specs(key, main, [*dmns, *library_decisions], library_documents, validate)
    specs = [spec, *subprocess_specs.values()]
    parsed = ParsedPathway(
        key=key,
        name=process.get("name") or key,
        spec=spec,
        subprocess_specs=subprocess_specs,
        called_processes=_called_processes(specs),
        user_tasks=_user_tasks(main, specs),
        lanes=_lanes(main),
        exits=_exits(main),
        processes=_scopes(main),
        hand_offs=_hand_offs(main),
    )
    if validate:
        parsed.warnings = _lint(parsed, main, dmns, form_keys, rules)
    return parsed


# --- Safe XML reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Document:
    """One XML file parsed by us; `label` is the file name given to Spiff and used in messages."""

    label: str
    root: etree._Element

    def element(self, element_id: str) -> etree._Element | None:
        found = self.root.xpath("//*[@id=$id]", id=element_id)
        return found[0] if found else None

    def element_at_line(self, line: int) -> etree._Element | None:
        return next((e for e in self.root.iter(tag=etree.Element) if e.sourceline == line), None)


def _check_size(raw: bytes, label: str) -> None:
    if len(raw) > MAX_XML_BYTES:
        raise TooLarge(f"{label} is {len(raw)} bytes; the limit is {MAX_XML_BYTES} bytes")


def _safe_parser() -> etree.XMLParser:
    # A new parser per document: lxml parser objects must not be shared between threads.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=False
    )


def _read(raw: bytes, label: str) -> _Document:
    try:
        root = etree.fromstring(raw, _safe_parser())
    except etree.XMLSyntaxError as exc:
        if _doctype_line(raw) is not None:  # e.g. an unresolved entity: the DOCTYPE is the real problem
            raise _doctype_refused(raw, label) from exc
        raise DeployError([Problem("xml-syntax", _in(label, f"malformed XML: {exc.msg}"), line=exc.lineno,
                                   code="xml-malformed", params={"error": exc.msg, **_file(label)})]) from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise _doctype_refused(raw, label)
    return _Document(label, root)


def _doctype_refused(raw: bytes, label: str) -> DeployError:
    message = "a DOCTYPE is not allowed: DTDs and entity declarations are refused for safety"
    return DeployError([Problem("xml-doctype", _in(label, message), line=_doctype_line(raw), code="doctype",
                                params=_file(label))])


def _read_all(files: Sequence[tuple[str, bytes]]) -> list[_Document]:
    """Read every file, reporting the problems of all of them at once."""
    documents, problems = [], []
    for label, raw in files:
        try:
            documents.append(_read(raw, label))
        except DeployError as exc:
            problems.extend(exc.problems)
    _raise_if_any(problems)
    return documents


def _doctype_line(raw: bytes) -> int | None:
    position = raw.find(b"<!DOCTYPE")
    return raw.count(b"\n", 0, position) + 1 if position >= 0 else None


# --- Structural checks, before SpiffWorkflow sees the files --------------------------------------


def _check_structure(main: _Document, dmns: Sequence[_Document]) -> list[Problem]:
    problems = _check_roots(main, dmns)
    for document in (main, *dmns):
        problems += _duplicate_ids(document)
    return problems + _dangling_flows(main)


def _check_roots(main: _Document, dmns: Sequence[_Document]) -> list[Problem]:
    problems = []
    if main.root.tag != f"{{{BPMN_MODEL_NS}}}definitions":
        message = f"expected a BPMN 2.0 document (bpmn:definitions), found <{_short(main.root.tag)}>"
        problems.append(Problem("xml-root", message, line=main.root.sourceline, code="not-bpmn",
                                params={"found": _short(main.root.tag)}))
    for dmn in dmns:
        name = etree.QName(dmn.root)
        if name.localname != "definitions" or name.namespace not in DMN_SCHEMAS:
            message = f"expected a DMN 1.1, 1.2 or 1.3 document (dmn:definitions), found <{_short(dmn.root.tag)}>"
            problems.append(Problem("xml-root", _in(dmn.label, message), line=dmn.root.sourceline, code="not-dmn",
                                    params={"found": _short(dmn.root.tag), **_file(dmn.label)}))
    return problems


def _duplicate_ids(document: _Document) -> list[Problem]:
    """Ids must be unique, except inside extensionElements: vendor extensions are not the standard's ids."""
    lines_by_id = defaultdict(list)
    for element in document.root.iter(tag=etree.Element):
        if element.get("id") is not None and not _in_extension(element):
            lines_by_id[element.get("id")].append(element.sourceline)
    return [
        Problem(
            "duplicate-id",
            _in(document.label, f"id '{element_id}' is used {len(lines)} times, on lines {_join(lines)}"),
            element_id=element_id,
            line=lines[1],
            code="duplicate-id",
            params={"id": element_id, "count": len(lines), "lines": ", ".join(map(str, lines)),
                    **_file(document.label)},
        )
        for element_id, lines in lines_by_id.items()
        if len(lines) > 1
    ]


def _in_extension(element: etree._Element) -> bool:
    return any(etree.QName(a).localname == "extensionElements" for a in element.iterancestors())


def _dangling_flows(main: _Document) -> list[Problem]:
    """Every sequence flow must join two elements of its own process or subprocess."""
    ids_by_scope: dict[etree._Element, set[str]] = {}
    problems = []
    for flow in main.root.iter(f"{{{BPMN_MODEL_NS}}}sequenceFlow"):
        scope = next((a for a in flow.iterancestors() if a.tag in _SCOPE_TAGS), main.root)
        if scope not in ids_by_scope:
            ids_by_scope[scope] = {e.get("id") for e in scope.iter(tag=etree.Element) if e.get("id")}
        for end, verb, code in (("sourceRef", "starts from", "flow-missing-source"),
                                ("targetRef", "points to", "flow-missing-target")):
            ref = flow.get(end)
            if ref not in ids_by_scope[scope]:
                message = f"sequence flow {flow.get('id')} {verb} missing element {ref}"
                problems.append(Problem("sequence-flow", message, element_id=flow.get("id"), line=flow.sourceline,
                                        code=code, params={"flow": flow.get("id"), "ref": ref}))
    return problems


def _choose_process(main: _Document) -> etree._Element:
    """The executable process that is the pathway; the others are called from it or documentation."""
    processes = main.root.findall("bpmn:process", _NS)
    if not processes:
        raise DeployError([Problem("process", "the file contains no bpmn:process", code="no-process")])
    executable = [p for p in processes if p.get("isExecutable") == "true"] or [
        p for p in processes if p.get("isExecutable") is None  # SpiffWorkflow's default is executable
    ]
    if not executable:
        message = f'no executable process (found {_names(processes)}): set isExecutable="true" on the pathway'
        raise DeployError([Problem("process", message, **_where(processes[0]), code="no-executable-process",
                                   params={"found": _names(processes)})])
    called = {call.get("calledElement") for call in _call_activities(main.root)}
    uncalled = [p for p in executable if p.get("id") not in called] if len(executable) > 1 else executable
    if len(uncalled) != 1:
        candidates = _names(uncalled or executable)
        message = f"cannot tell which executable process is the pathway among {candidates}: keep one uncalled"
        raise DeployError([Problem("process", message, code="ambiguous-process", params={"candidates": candidates})])
    return uncalled[0]


def _library_documents(
    main: _Document, library: Mapping[str, LibraryEntry], known_decisions: set[bytes]
) -> tuple[list[_Document], list[_Document]]:
    """The deployed files the pathway calls, transitively, and their DMN files.

    A call that resolves nowhere is refused.
    """
    defined = _process_ids(main.root)
    documents, decisions, problems, seen_decisions = [], [], [], set(known_decisions)
    pending = [(main, call) for call in _call_activities(main.root)]
    while pending:
        document, call = pending.pop(0)
        called = call.get("calledElement")
        if called in defined:
            continue
        if called not in library:
            message = (
                f"call activity {call.get('id')} calls process '{called}', "
                "which is neither in this file nor a deployed pathway"
                if called
                else f"call activity {call.get('id')} names no process (calledElement is empty)"
            )
            problems.append(Problem("call-activity", _in(document.label, message), **_where(call),
                                    code="call-unknown-process" if called else "call-without-process",
                                    params={"call": call.get("id"), "process": called or "", **_file(document.label)}))
            continue
        bpmn_raw, dmn_raws = (library[called], ()) if isinstance(library[called], bytes) else library[called]
        dependency = _read(bpmn_raw, f"{called}.bpmn")
        for number, raw in enumerate(dmn_raws, 1):
            if raw not in seen_decisions:  # two called pathways may share a decision file
                seen_decisions.add(raw)
                decisions.append(_read(raw, f"{called}-decision-{number}.dmn"))
        if called not in _process_ids(dependency.root):
            message = f"call activity {call.get('id')} calls '{called}', but its deployed file has no such process"
            problems.append(Problem("call-activity", _in(document.label, message), **_where(call),
                                    code="call-process-missing",
                                    params={"call": call.get("id"), "process": called, **_file(document.label)}))
        documents.append(dependency)
        defined |= _process_ids(dependency.root) | {called}
        pending += [(dependency, c) for c in _call_activities(dependency.root)]
    _raise_if_any(problems)
    return documents, decisions


# --- SpiffWorkflow ------------------------------------------------------------------------------


class _SerializedValidator:
    """SpiffWorkflow's shared VALIDATOR, used by one thread at a time: its XMLSchema keeps the last error."""

    def __init__(self, validator):
        self._validator = validator
        self._lock = threading.Lock()

    def validate(self, document, filename=None):
        with self._lock:
            self._validator.validate(document, filename)


_XSD_VALIDATOR = _SerializedValidator(VALIDATOR)  # BPMN20.xsd + spiffworkflow.xsd, loaded once at import


def _spiff_specs(key, main, dmns, library_documents, validate) -> tuple[BpmnProcessSpec, dict]:
    parser = SpiffBpmnParser(validator=_XSD_VALIDATOR if validate else None)
    try:
        for document in (main, *library_documents):
            parser.add_bpmn_xml(document.root, filename=document.label)
        for document in dmns:
            parser.add_dmn_xml(document.root, filename=document.label)
        return parser.get_spec(key), parser.get_subprocess_specs(key)
    except ValidationException as exc:
        raise DeployError([_problem_from_validation(exc, [main, *dmns, *library_documents])]) from exc


def _problem_from_validation(exc: ValidationException, documents: Sequence[_Document]) -> Problem:
    """Give a ValidationException the element id and the line it lacks, and a clear message."""
    message = _tidy(" ".join([str(exc.args[0]) if exc.args else "", *getattr(exc, "notes", [])]).strip())
    document = _document_of(exc, documents)
    if exc.line_number and not exc.id:  # from the XSD: a line, no id
        element = document.element_at_line(int(exc.line_number))
        return Problem(
            "xsd", _in(document.label, message),
            element_id=_nearest_id(element), line=int(exc.line_number),
            code="xsd", params={"error": message, **_file(document.label)},
        )
    missing = _MISSING_TARGET.search(message)
    if missing:
        return _missing_target_problem(document, exc.id, missing["target"])
    element = document.element(exc.id) if exc.id else None
    rule = "dmn" if document.label.endswith(".dmn") else "bpmn"
    return Problem(rule, _in(document.label, message), element_id=exc.id or None, line=_line(element),
                   code="spiff-validation", params={"error": message, **_file(document.label)})


def _missing_target_problem(document: _Document, source_id: str, target_id: str) -> Problem:
    flows = document.root.xpath(
        "//bpmn:sequenceFlow[@sourceRef=$source and @targetRef=$target]", namespaces=_NS, source=source_id,
        target=target_id,
    )
    flow_id = flows[0].get("id") if flows else f"from {source_id}"
    message = _in(document.label, f"sequence flow {flow_id} points to missing element {target_id}")
    return Problem("sequence-flow", message, element_id=flows[0].get("id") if flows else source_id,
                   line=_line(flows[0] if flows else document.element(source_id)), code="flow-missing-target",
                   params={"flow": flows[0].get("id") if flows else "", "source": source_id, "ref": target_id,
                           **_file(document.label)})


def _document_of(exc: ValidationException, documents: Sequence[_Document]) -> _Document:
    by_label = next((d for d in documents if d.label == exc.file_name), None)
    if by_label is not None:
        return by_label
    return next((d for d in documents if exc.id and d.element(exc.id) is not None), documents[0])


# --- What we read from the diagram ---------------------------------------------------------------


def _user_tasks(main: _Document, specs: Iterable[BpmnProcessSpec]) -> dict[str, UserTaskInfo]:
    """User tasks of this file that have a task spec (those in non-executable processes never run)."""
    lane_by_id = {
        task_spec.bpmn_id: task_spec.lane
        for spec in specs
        for task_spec in spec.task_specs.values()
        if isinstance(task_spec, UserTask)
    }
    return {
        element.get("id"): UserTaskInfo(
            bpmn_id=element.get("id"),
            name=element.get("name"),
            lane=lane_by_id[element.get("id")],
            form_key=_form_key(element),
            exit=_is_exit(element),
            due_in=element.get(f"{{{SPIE_NS}}}dueIn"),
            line=element.sourceline,
            audience=element.get(f"{{{SPIE_NS}}}audience") or "referent",
            action=element.get(f"{{{SPIE_NS}}}action"),
        )
        for element in main.root.iter(f"{{{BPMN_MODEL_NS}}}userTask")
        if element.get("id") in lane_by_id
    }


def _form_key(user_task: etree._Element) -> str | None:
    """spie:formKey, else camunda:formKey, else spiff-arena's formJsonSchemaFilename without .json."""
    key = user_task.get(f"{{{SPIE_NS}}}formKey") or user_task.get(f"{{{CAMUNDA_NS}}}formKey")
    if key:
        return key
    for prop in user_task.iterfind("bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", _NS):
        if prop.get("name") == "formJsonSchemaFilename" and prop.get("value"):
            return prop.get("value").removesuffix(".json")
    return None


def _is_exit(element: etree._Element) -> bool:
    return (element.get(f"{{{SPIE_NS}}}exit") or "").strip().lower() in ("true", "1")


def _exits(main: _Document) -> set[str]:
    return {e.get("id") for e in main.root.iter(tag=etree.Element) if e.get("id") and _is_exit(e)}


def _lanes(main: _Document) -> dict[str, LaneInfo]:
    return {
        lane.get("name"): LaneInfo(
            structure_types=tuple(
                t.strip() for t in (lane.get(f"{{{SPIE_NS}}}structureType") or "").split("|") if t.strip()
            ),
            structure_type_variable=lane.get(f"{{{SPIE_NS}}}structureTypeVariable"),
        )
        for lane in main.root.iter(f"{{{BPMN_MODEL_NS}}}lane")
        if lane.get("name")
    }


def _scopes(main: _Document) -> set[str]:
    return {e.get("id") for e in main.root.iter(*_SCOPE_TAGS) if e.get("id")}


def _hand_offs(main: _Document) -> dict[str, str | None]:
    return {
        call.get("id"): call.get(f"{{{SPIE_NS}}}receivingStructureType")
        for call in _call_activities(main.root)
        if call.get("id")
    }


def _called_processes(specs: Iterable[BpmnProcessSpec]) -> set[str]:
    return {
        task_spec.spec
        for spec in specs
        for task_spec in spec.task_specs.values()
        if isinstance(task_spec, CallActivity)
    }


def _lint(parsed: ParsedPathway, main, dmns, form_keys, rules) -> list[Problem]:
    """Run the rules; raise on any error, return the warnings."""
    lint_input = LintInput(
        bpmn=main.root,
        dmns={d.label: d.root for d in dmns},
        spec=parsed.spec,
        subprocess_specs=parsed.subprocess_specs,
        user_tasks=parsed.user_tasks,
        lanes=parsed.lanes,
        exits=parsed.exits,
        form_keys=form_keys,
    )
    findings = run_rules(rules, lint_input)
    errors = [p for p in findings if p.severity != "warning"]
    warnings = [p for p in findings if p.severity == "warning"]
    if errors:
        raise DeployError(errors + warnings)
    return warnings


# --- Small helpers ------------------------------------------------------------------------------


def _raise_if_any(problems: list[Problem]) -> None:
    if problems:
        raise DeployError(problems)


def _in(label: str, message: str) -> str:
    """Name the file in messages about any file but the uploaded BPMN (Problem has no file field)."""
    return message if label == MAIN_FILE else f"{label}: {message}"


def _file(label: str) -> dict:
    """The same, as a Problem's params."""
    return {} if label == MAIN_FILE else {"file": label}


def _call_activities(root: etree._Element) -> list[etree._Element]:
    return root.findall(".//bpmn:callActivity", _NS)


def _process_ids(root: etree._Element) -> set[str]:
    return {p.get("id") for p in root.findall("bpmn:process", _NS)}


def _names(processes: Iterable[etree._Element]) -> str:
    return ", ".join(repr(p.get("id")) for p in processes)


def _where(element: etree._Element) -> dict:
    return {"element_id": element.get("id"), "line": element.sourceline}


def _line(element: etree._Element | None) -> int | None:
    return element.sourceline if element is not None else None


def _nearest_id(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    return next((e.get("id") for e in (element, *element.iterancestors()) if e.get("id")), None)


def _join(lines: Sequence[int]) -> str:
    return ", ".join(map(str, lines[:-1])) + f" and {lines[-1]}"


def _short(tag: str) -> str:
    name = etree.QName(tag)
    return f"{_PREFIXES[name.namespace]}:{name.localname}" if name.namespace in _PREFIXES else name.localname


def _tidy(message: str) -> str:
    """Spiff and lxml messages name elements as {namespace}tag or <Element ... at 0x...>: use prefixes."""
    message = _ELEMENT_REPR.sub(r"\1", message)
    for namespace, prefix in _PREFIXES.items():
        message = message.replace(f"{{{namespace}}}", f"{prefix}:")
    return message
