"""What changed between two versions of a pathway, element by element (matched by BPMN id).

A designer deploying version N+1 wants to review what a reviewer would ask about: which
steps appeared or went, which lanes now go to another structure type, which forms,
exit markers, due times and timer deadlines moved, which flows now lead elsewhere.
Layout (the diagram interchange part), element order and XML formatting are ignored:
a diagram saved again by a modeler without edits has no changes.

The result is structured (ids, attribute names, values); the web pages word it in French.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.util import BPMN_MODEL_NS

from engine.bpmn_parsing import SPIE_NS

TIMER_KINDS = ("timeDuration", "timeDate", "timeCycle")
# BPMN attributes whose change matters to the run, compared as plain values.
COMPARED_ATTRIBUTES = ("calledElement", "attachedToRef", "cancelActivity", "default")
_ALSO_COMPARED = {"process", "subProcess", "transaction", "adHocSubProcess", "callActivity", "task", "lane",
               "sequenceFlow"}


@dataclass(frozen=True)
class Timer:
    """A timer event's definition: its kind (timeDuration, timeDate, timeCycle) and its Python expression."""

    kind: str | None
    expression: str

    @property
    def value(self) -> str:
        """The ISO 8601 text of a literal expression ('"P15D"' gives P15D); the expression itself otherwise."""
        try:
            literal = ast.literal_eval(self.expression)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return self.expression
        return literal if isinstance(literal, str) else self.expression

    @property
    def computed(self) -> bool:
        return self.value == self.expression


@dataclass(frozen=True)
class Change:
    """One difference. ``kind`` is one of: added, removed, renamed, type, spie, attribute, timer,
    rerouted, condition, script, lane, documentation. ``attribute`` names the attribute for
    ``spie`` (structureType, formKey, exit...) and ``attribute`` changes. ``before``/``after``
    are strings, ``Timer`` values (timer) or ``(source id, target id)`` pairs (rerouted)."""

    kind: str
    element_id: str
    element_type: str  # BPMN local name of the element (the new one; the old one when removed)
    name: str | None
    attribute: str | None = None
    before: Any = None
    after: Any = None


@dataclass
class PathwayDiff:
    changes: list[Change]
    names: dict[str, str] = field(default_factory=dict)  # element id -> name, in either version (the new wins)

    def label(self, element_id: str | None) -> str | None:
        """An element's name, else its id."""
        if element_id is None:
            return None
        return self.names.get(element_id) or element_id


def diff_versions(old_xml: str | bytes, new_xml: str | bytes) -> PathwayDiff:
    """The changes from ``old_xml`` to ``new_xml`` (two stored, already validated BPMN files)."""
    old, new = _Elements(_read(old_xml)), _Elements(_read(new_xml))
    changes: list[Change] = []
    for element_id, element in new.by_id.items():
        before = old.by_id.get(element_id)
        if before is None:
            changes.append(_change("added", element_id, element))
        else:
            changes.extend(_compare(element_id, before, element, old, new))
    changes.extend(_change("removed", element_id, element)
                   for element_id, element in old.by_id.items() if element_id not in new.by_id)
    names = {**old.names(), **new.names()}
    return PathwayDiff(changes, names)


def _read(xml: str | bytes) -> etree._Element:
    raw = xml.encode("utf-8") if isinstance(xml, str) else xml
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True)
    return etree.fromstring(raw, parser)


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _bpmn(tag: str) -> str:
    return f"{{{BPMN_MODEL_NS}}}{tag}"


def _is_compared(element: etree._Element) -> bool:
    """Flow nodes, flows, lanes and processes: what a designer draws and names."""
    if not isinstance(element.tag, str) or etree.QName(element).namespace != BPMN_MODEL_NS or not element.get("id"):
        return False
    name = _local(element)
    return name in _ALSO_COMPARED or name.endswith(("Task", "Event", "Gateway"))


class _Elements:
    """The compared elements of one file, by id, in document order, with each flow node's lane."""

    def __init__(self, root: etree._Element):
        self.by_id: dict[str, etree._Element] = {}
        for process in root.iter(_bpmn("process")):
            for element in process.iter(tag=etree.Element):
                if _is_compared(element) and not _in_extension(element):
                    self.by_id.setdefault(element.get("id"), element)
        self.lane_of: dict[str, str] = {}
        for lane in root.iter(_bpmn("lane")):  # document order: a nested lane comes after its parent and wins
            for ref in lane.findall(_bpmn("flowNodeRef")):
                if ref.text and ref.text.strip():
                    self.lane_of[ref.text.strip()] = lane.get("id")

    def names(self) -> dict[str, str]:
        return {element_id: _name(e) for element_id, e in self.by_id.items() if _name(e)}


def _in_extension(element: etree._Element) -> bool:
    return any(isinstance(a.tag, str) and _local(a) == "extensionElements" for a in element.iterancestors())


def _name(element: etree._Element) -> str | None:
    name = " ".join((element.get("name") or "").split())
    return name or None


def _change(kind: str, element_id: str, element: etree._Element, attribute: str | None = None,
            before: Any = None, after: Any = None) -> Change:
    return Change(kind, element_id, _local(element), _name(element), attribute, before, after)


def _compare(element_id: str, old: etree._Element, new: etree._Element, old_file: _Elements,
             new_file: _Elements) -> list[Change]:
    changes = []

    def differs(kind: str, before: Any, after: Any, attribute: str | None = None) -> None:
        if before != after:
            changes.append(_change(kind, element_id, new, attribute, before, after))

    differs("type", _local(old), _local(new))
    differs("renamed", _name(old), _name(new))
    for attribute in sorted(_spie_attributes(old) | _spie_attributes(new)):
        differs("spie", _spie(old, attribute), _spie(new, attribute), attribute)
    differs("timer", _timer(old), _timer(new))
    if _local(new) == "sequenceFlow":
        differs("rerouted", (old.get("sourceRef"), old.get("targetRef")), (new.get("sourceRef"), new.get("targetRef")))
        differs("condition", _child_text(old, "conditionExpression"), _child_text(new, "conditionExpression"))
    for attribute in COMPARED_ATTRIBUTES:
        differs("attribute", old.get(attribute), new.get(attribute), attribute)
    differs("script", _child_text(old, "script"), _child_text(new, "script"))
    differs("lane", old_file.lane_of.get(element_id), new_file.lane_of.get(element_id))
    differs("documentation", _child_text(old, "documentation"), _child_text(new, "documentation"))
    return changes


def _spie_attributes(element: etree._Element) -> set[str]:
    return {etree.QName(name).localname for name in element.attrib if etree.QName(name).namespace == SPIE_NS}


def _spie(element: etree._Element, attribute: str) -> str | None:
    value = (element.get(f"{{{SPIE_NS}}}{attribute}") or "").strip()
    return value or None


def _timer(element: etree._Element) -> Timer | None:
    definition = element.find(_bpmn("timerEventDefinition"))
    if definition is None:
        return None
    for kind in TIMER_KINDS:
        expression = definition.find(_bpmn(kind))
        if expression is not None:
            return Timer(kind, (expression.text or "").strip())
    return Timer(None, "")


def _child_text(element: etree._Element, tag: str) -> str | None:
    child = element.find(_bpmn(tag))
    if child is None:
        return None
    text = (child.text or "").strip()
    return text or None
