"""SPIE lint rules: the hand-off invariant and the directory, checked on the diagram at deploy.

- every path from a start event to an element marked ``spie:exit`` passes a hand-off
  (a call to ``passage-de-relais``, or the joint meeting inside it) or a positive-exit
  branch (a flow whose condition names a positive exit reason, or ``spie:positiveExit="true"``);
- every lane maps to a known structure type;
- every call to ``passage-de-relais`` names the receiving structure type.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from lxml import etree
from SpiffWorkflow.bpmn.parser.util import BPMN_MODEL_NS

from engine.directory import STRUCTURE_TYPES, normalize_structure_type
from engine.errors import InvalidInput, Problem
from engine.lint import LintInput
from engine.people import EXITS_WITHOUT_HAND_OFF

HAND_OFF_PROCESS = "passage-de-relais"
SPIE_NS = "https://spie-parcours.fr/schema/bpmn/1.0"
_NS = {"bpmn": BPMN_MODEL_NS}
_SCOPES = ("process", "subProcess", "transaction", "adHocSubProcess")


def _q(tag: str) -> str:
    return f"{{{BPMN_MODEL_NS}}}{tag}"


def _spie(element: etree._Element, name: str) -> str | None:
    return element.get(f"{{{SPIE_NS}}}{name}")


def exits_pass_a_hand_off(lint: LintInput) -> Iterator[Problem]:
    graph = _FlowGraph(lint.bpmn)
    for exit_id in sorted(lint.exits):
        path = graph.unsafe_path_to(exit_id)
        if path:
            element = graph.elements[exit_id]
            yield Problem(
                "spie-exit-without-hand-off",
                f"the path {' → '.join(path)} reaches the exit {exit_id} without a hand-off "
                f"(a call to {HAND_OFF_PROCESS}) or a positive-exit branch "
                f"({', '.join(sorted(EXITS_WITHOUT_HAND_OFF))})",
                element_id=exit_id,
                line=element.sourceline,
                code="exit-without-hand-off",
                params={"path": " → ".join(path), "exit": exit_id, "hand_off": HAND_OFF_PROCESS,
                        "positive_exits": ", ".join(sorted(EXITS_WITHOUT_HAND_OFF))},
            )


def lanes_have_structure_types(lint: LintInput) -> Iterator[Problem]:
    for lane in lint.bpmn.iter(_q("lane")):
        declared = _spie(lane, "structureType")
        if lane.find(_q("childLaneSet")) is not None or (_spie(lane, "structureTypeVariable") and not declared):
            continue
        candidates = declared.split("|") if declared else [lane.get("name") or ""]
        unknown = [c for c in candidates if not _known_type(c)]
        if unknown:
            yield Problem(
                "spie-lane-structure-type",
                f"lane {lane.get('name') or lane.get('id')!r} maps to no known structure type "
                f"({', '.join(repr(u) for u in unknown)}); set spie:structureType to one of "
                f"{', '.join(STRUCTURE_TYPES)}",
                element_id=lane.get("id"),
                line=lane.sourceline,
                code="lane-unknown-type",
                params={"lane": lane.get("name") or lane.get("id"), "unknown": ", ".join(unknown),
                        "known": ", ".join(STRUCTURE_TYPES)},
            )


def hand_offs_name_the_receiver(lint: LintInput) -> Iterator[Problem]:
    for call in lint.bpmn.iter(_q("callActivity")):
        if call.get("calledElement") != HAND_OFF_PROCESS:
            continue
        receiving = _spie(call, "receivingStructureType")
        if not receiving or not all(_known_type(t) for t in receiving.split("|")):
            yield Problem(
                "spie-hand-off-receiver",
                f"call activity {call.get('id')} calls {HAND_OFF_PROCESS} without a known "
                f"spie:receivingStructureType (got {receiving!r})",
                element_id=call.get("id"),
                line=call.sourceline,
                code="hand-off-without-receiver",
                params={"call": call.get("id"), "hand_off": HAND_OFF_PROCESS, "receiving": receiving or ""},
            )


SPIE_RULES = [exits_pass_a_hand_off, lanes_have_structure_types, hand_offs_name_the_receiver]


def _known_type(value: str) -> bool:
    try:
        normalize_structure_type(value)
    except InvalidInput:
        return False
    return True


class _FlowGraph:
    """Flow nodes of every scope, with sequence flows, boundary events and subprocess entry/exit."""

    def __init__(self, root: etree._Element):
        self.elements: dict[str, etree._Element] = {}
        self.edges: dict[str, list[tuple[str, bool]]] = {}  # node -> [(next node, flow is a safe branch)]
        self.starts: list[str] = []
        for scope in root.iter(*(_q(s) for s in _SCOPES)):
            self._add_scope(scope)

    def _add_scope(self, scope: etree._Element) -> None:
        for child in scope:
            if child.get("id") and child.tag != _q("sequenceFlow"):
                self.elements[child.get("id")] = child
        for flow in scope.iter(_q("sequenceFlow")):
            if flow.getparent() is scope:
                self._edge(flow.get("sourceRef"), flow.get("targetRef"), _is_positive_branch(flow))
        for boundary in scope.findall(_q("boundaryEvent")):
            self._edge(boundary.get("attachedToRef"), boundary.get("id"), False)
        inner_starts = [c.get("id") for c in scope.findall(_q("startEvent"))]
        if scope.tag == _q("process"):
            self.starts.extend(inner_starts)
            return
        for start in inner_starts:
            self._edge(scope.get("id"), start, False)
        for end in scope.findall(_q("endEvent")):
            for flow in scope.getparent().iter(_q("sequenceFlow")):
                if flow.get("sourceRef") == scope.get("id"):
                    self._edge(end.get("id"), flow.get("targetRef"), _is_positive_branch(flow))

    def _edge(self, source: str | None, target: str | None, safe: bool) -> None:
        if source and target:
            self.edges.setdefault(source, []).append((target, safe))

    def _is_hand_off(self, node_id: str) -> bool:
        element = self.elements.get(node_id)
        if element is None:
            return False
        if element.tag == _q("callActivity"):
            return element.get("calledElement") == HAND_OFF_PROCESS
        return _spie(element, "action") == "joint-meeting"

    def unsafe_path_to(self, target: str) -> list[str] | None:
        """A path from a start to ``target`` through no hand-off and no positive branch, if any."""
        came_from: dict[str, str | None] = {s: None for s in self.starts if not self._is_hand_off(s)}
        queue = deque(came_from)
        while queue:
            node = queue.popleft()
            if node == target:
                return self._path(came_from, node)
            for following, safe in self.edges.get(node, []):
                if safe or following in came_from or self._is_hand_off(following):
                    continue
                came_from[following] = node
                queue.append(following)
        return None

    @staticmethod
    def _path(came_from: dict[str, str | None], node: str) -> list[str]:
        path = []
        while node is not None:
            path.append(node)
            node = came_from[node]
        return path[::-1]


def _is_positive_branch(flow: etree._Element) -> bool:
    if (_spie(flow, "positiveExit") or "").lower() == "true":
        return True
    condition = flow.find(_q("conditionExpression"))
    text = condition.text if condition is not None and condition.text else ""
    return any(code in text for code in EXITS_WITHOUT_HAND_OFF)
