"""Write clean BPMN DI (diagram shapes and edges) for the pathways of bpmn/.

The pathway files are written as semantic BPMN (process, lanes, tasks, flows);
this tool computes their diagram so that they open laid out left to right in
bpmn.io, Camunda Modeler or any BPMN tool:

    .venv/bin/python bpmn/tools/layout.py bpmn/passage-de-relais.bpmn [...]

Each file's ``bpmndi:BPMNDiagram`` is replaced; the semantic part is kept as is.
Run it again after editing a file's flows, or draw the diagram by hand in a
modeler instead: the engine only needs the DI to be complete.

How the layout works, per process and per expanded subprocess:

- columns: each flow node gets the column of its longest path from a start
  event (back edges of loops ignored; a boundary event's target comes after
  its host), and all lanes share the columns;
- rows: inside its lane, a node takes the row of its predecessor when that
  cell is free, else the next free row below; a boundary event's branch goes
  one row below its host; lanes stack top to bottom in document order, in one
  pool when the file has a collaboration;
- boundary events sit on the bottom border of their host; expanded
  subprocesses are laid out recursively and sized to fit;
- sequence flows are orthogonal: straight when source and target share a row,
  otherwise out of a gateway's top or bottom corner, or with one elbow; loops
  go back over the top of the row. Among the candidate routes the first one
  that crosses no other shape is kept.
"""
from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"

TASK = (100, 80)
EVENT = (36, 36)
GATEWAY = (50, 50)
COLUMN_GAP = 50  # between two columns
ROW_GAP = 60  # between two rows of a lane (room for boundary events and their labels)
LANE_PAD_TOP = 45  # room for loops drawn over the first row
LANE_PAD_BOTTOM = 30
LANE_PAD_LEFT = 40
POOL_LABEL = 30  # the pool's name band
LANE_LABEL = 30  # the lane's name band
SUB_PAD = (30, 40, 30, 30)  # expanded subprocess padding: left, top, right, bottom
ORIGIN = (160, 80)
CHAR_WIDTH = 6  # approximate width of a label character, for label bounds

FLOW_NODE_TAGS = {
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "task", "userTask", "manualTask", "scriptTask", "serviceTask", "businessRuleTask", "sendTask",
    "receiveTask", "callActivity", "subProcess", "transaction", "adHocSubProcess",
    "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway",
}
CONTAINER_TAGS = {"subProcess", "transaction", "adHocSubProcess"}


def local(element: etree._Element) -> str:
    return etree.QName(element).localname


@dataclass
class Box:
    x: float = 0
    y: float = 0
    w: float = 0
    h: float = 0

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h


@dataclass
class Node:
    element: etree._Element
    id: str
    kind: str  # event, gateway, task, container
    box: Box = field(default_factory=Box)
    layer: int = 0
    row: int = 0
    lane: str | None = None
    scope: Scope | None = None  # the laid-out content of an expanded subprocess
    label_left: bool = False  # boundary events: label on the left of the outgoing flow


@dataclass
class Scope:
    """A process or an expanded subprocess: its nodes, boundary events and flows."""

    element: etree._Element
    nodes: dict[str, Node]
    boundaries: dict[str, Node]
    flows: list[etree._Element]
    lanes: list[etree._Element]
    width: float = 0
    height: float = 0
    lane_boxes: dict[str, Box] = field(default_factory=dict)


def kind_of(element: etree._Element) -> str:
    name = local(element)
    if name.endswith("Event"):
        return "event"
    if name.endswith("Gateway"):
        return "gateway"
    if name in CONTAINER_TAGS and any(local(c) in FLOW_NODE_TAGS for c in element):
        return "container"
    return "task"


def read_scope(container: etree._Element) -> Scope:
    nodes, boundaries, flows = {}, {}, []
    for child in container:
        if not isinstance(child.tag, str):
            continue
        name = local(child)
        if name == "sequenceFlow":
            flows.append(child)
        elif name == "boundaryEvent":
            boundaries[child.get("id")] = Node(child, child.get("id"), "event", Box(w=EVENT[0], h=EVENT[1]))
        elif name in FLOW_NODE_TAGS:
            node = Node(child, child.get("id"), kind_of(child))
            if node.kind == "container":
                node.scope = read_scope(child)
            nodes[node.id] = node
    lanes = container.findall(f"{{{BPMN}}}laneSet/{{{BPMN}}}lane")
    return Scope(container, nodes, boundaries, flows, lanes)


# --- columns and rows ---------------------------------------------------------------------------


def edges_of(scope: Scope) -> list[tuple[str, str, bool]]:
    """(source, target, from_boundary) between the scope's nodes; a boundary stands for its host."""
    edges = []
    for flow in scope.flows:
        source, target = flow.get("sourceRef"), flow.get("targetRef")
        boundary = scope.boundaries.get(source)
        if boundary is not None:
            source = boundary.element.get("attachedToRef")
        if source in scope.nodes and target in scope.nodes:
            edges.append((source, target, boundary is not None))
    return edges


def back_edges(scope: Scope, edges) -> set[tuple[str, str]]:
    """The edges that close a loop, found by a depth-first walk from the nodes without incoming flow."""
    successors = defaultdict(list)
    incoming = defaultdict(int)
    for source, target, _ in edges:
        successors[source].append(target)
        incoming[target] += 1
    roots = [n for n in scope.nodes if incoming[n] == 0] + list(scope.nodes)
    state: dict[str, int] = {}  # 1 on the DFS stack, 2 done
    back = set()
    for root in roots:
        if root in state:
            continue
        stack = [(root, iter(successors[root]))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(successors[child])))
    return back


def assign_layers(scope: Scope, edges, back) -> None:
    """Column of each node: its longest path from a start, loops ignored."""
    forward = [(s, t) for s, t, _ in edges if (s, t) not in back]
    indegree = {n: 0 for n in scope.nodes}
    successors = defaultdict(list)
    for source, target in forward:
        successors[source].append(target)
        indegree[target] += 1
    ready = [n for n in scope.nodes if indegree[n] == 0]
    while ready:
        node = ready.pop(0)
        for target in successors[node]:
            scope.nodes[target].layer = max(scope.nodes[target].layer, scope.nodes[node].layer + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)


def assign_rows(scope: Scope, edges, back) -> None:
    """Rows inside each lane: a node keeps its predecessor's row when the straight line is free."""
    lane_of = {}
    for lane in scope.lanes:
        for ref in lane.findall(f"{{{BPMN}}}flowNodeRef"):
            lane_of[ref.text.strip()] = lane.get("id")
    order = list(scope.nodes)
    for node in scope.nodes.values():
        node.lane = lane_of.get(node.id)
        if scope.lanes and node.lane is None:
            raise SystemExit(f"{node.id} is in no lane: add a bpmn:flowNodeRef for it")
    predecessors = defaultdict(list)
    for source, target, from_boundary in edges:
        if (source, target) not in back:
            predecessors[target].append((scope.nodes[source], from_boundary))
    taken: set[tuple[str | None, int, int]] = set()

    def fits(node: Node, row: int, preds) -> bool:
        if (node.lane, node.layer, row) in taken:
            return False
        for pred, from_boundary in preds:  # a straight line from a predecessor must not cross a node
            start = pred.layer + (0 if from_boundary and row != pred.row else 1)
            if pred.row == row or from_boundary:
                if any((node.lane, layer, row) in taken for layer in range(start, node.layer)):
                    return False
        return True

    placed: set[str] = set()
    for node in sorted(scope.nodes.values(), key=lambda n: (n.layer, order.index(n.id))):
        preds = [(p, b) for p, b in predecessors[node.id] if p.id in placed and p.lane == node.lane]
        row = min((p.row + (1 if b else 0) for p, b in preds), default=0)
        while not fits(node, row, preds):
            row += 1
        node.row = row
        taken.add((node.lane, node.layer, row))
        placed.add(node.id)


# --- sizes and positions ------------------------------------------------------------------------


def size_nodes(scope: Scope) -> None:
    for node in scope.nodes.values():
        if node.kind == "container":
            layout_scope(node.scope)
            node.box.w, node.box.h = node.scope.width, node.scope.height
        else:
            node.box.w, node.box.h = {"event": EVENT, "gateway": GATEWAY}.get(node.kind, TASK)


def layout_scope(scope: Scope) -> None:
    """Place the scope's nodes relative to (0, 0); sets scope.width/height (and lane boxes)."""
    edges = edges_of(scope)
    back = back_edges(scope, edges)
    assign_layers(scope, edges, back)
    assign_rows(scope, edges, back)
    size_nodes(scope)
    layers = max((n.layer for n in scope.nodes.values()), default=0) + 1
    column_width = [0.0] * layers
    for node in scope.nodes.values():
        column_width[node.layer] = max(column_width[node.layer], node.box.w)
    lanes = [lane.get("id") for lane in scope.lanes] or [None]
    left = LANE_LABEL + LANE_PAD_LEFT if scope.lanes else SUB_PAD[0]
    column_x = []
    x = left
    for width in column_width:
        column_x.append(x)
        x += width + COLUMN_GAP
    content_right = x - COLUMN_GAP
    y = 0 if scope.lanes else SUB_PAD[1]
    for lane in lanes:
        members = [n for n in scope.nodes.values() if n.lane == lane]
        rows = max((n.row for n in members), default=0) + 1
        row_height = [TASK[1]] * rows
        for node in members:
            row_height[node.row] = max(row_height[node.row], node.box.h)
        top = y
        y += LANE_PAD_TOP if scope.lanes else 0
        row_y = []
        for height in row_height:
            row_y.append(y)
            y += height + ROW_GAP
        y -= ROW_GAP
        for node in members:
            node.box.x = column_x[node.layer] + (column_width[node.layer] - node.box.w) / 2
            node.box.y = row_y[node.row] + (row_height[node.row] - node.box.h) / 2
        if scope.lanes:
            y += LANE_PAD_BOTTOM
            scope.lane_boxes[lane] = Box(0, top, 0, y - top)
    if scope.lanes:
        scope.width = content_right + LANE_PAD_LEFT
        for box in scope.lane_boxes.values():
            box.w = scope.width
        scope.height = y
    else:
        scope.width = content_right + SUB_PAD[2]
        scope.height = y + SUB_PAD[3]


def shift(scope: Scope, dx: float, dy: float) -> None:
    """Move a scope's own nodes and lanes by (dx, dy); nested scopes follow in place_nested."""
    for node in scope.nodes.values():
        node.box.x += dx
        node.box.y += dy
    for box in scope.lane_boxes.values():
        box.x += dx
        box.y += dy


def place_nested(scope: Scope) -> None:
    """Give nested scopes absolute positions once their container is placed."""
    for node in scope.nodes.values():
        if node.scope is not None:
            shift(node.scope, node.box.x, node.box.y)
            place_nested(node.scope)


def place_boundaries(scope: Scope) -> None:
    """Boundary events on their host's bottom border; the one whose branch goes lowest is leftmost."""
    nodes = all_nodes(scope)
    target_y = {}
    for flow in scope.flows:
        if flow.get("sourceRef") in scope.boundaries and flow.get("targetRef") in nodes:
            target_y[flow.get("sourceRef")] = nodes[flow.get("targetRef")].box.cy
    by_host = defaultdict(list)
    for boundary in scope.boundaries.values():
        by_host[boundary.element.get("attachedToRef")].append(boundary)
    for host_id, boundaries in by_host.items():
        host = nodes[host_id]
        boundaries.sort(key=lambda b: -target_y.get(b.id, 0))
        count = len(boundaries)
        for index, boundary in enumerate(boundaries):
            boundary.box.x = host.box.x + host.box.w * (2 * index + 1) / (2 * count) - EVENT[0] / 2
            boundary.box.y = host.box.bottom - EVENT[1] / 2
            boundary.label_left = index < count - 1
    for node in scope.nodes.values():
        if node.scope is not None:
            place_boundaries(node.scope)


def all_nodes(scope: Scope) -> dict[str, Node]:
    found = {**scope.nodes, **scope.boundaries}
    for node in scope.nodes.values():
        if node.scope is not None:
            found.update(all_nodes(node.scope))
    return found


# --- edges ------------------------------------------------------------------------------------


def route(source: Node, target: Node, back: bool, obstacles: list[Node], arrivals: set) -> list[tuple[float, float]]:
    """Orthogonal waypoints; `arrivals` holds the end points of the flows already routed."""
    s, t = source.box, target.box
    candidates = []
    if local(source.element) == "boundaryEvent":  # down from the event, then right into the target
        candidates.append([(s.cx, s.bottom), (s.cx, t.cy), (t.x, t.cy)])
        step = s.bottom + 20
        near_target = t.x - COLUMN_GAP / 2
        candidates.append([(s.cx, s.bottom), (s.cx, step), (near_target, step), (near_target, t.cy), (t.x, t.cy)])
    elif back:
        over = min(s.y, t.y) - 25
        under = max(s.bottom, t.bottom) + 25
        candidates.append([(s.cx, s.y), (s.cx, over), (t.cx, over), (t.cx, t.y)])
        candidates.append([(s.cx, s.bottom), (s.cx, under), (t.cx, under), (t.cx, t.bottom)])
    elif abs(s.cy - t.cy) < 1:
        candidates.append([(s.right, s.cy), (t.x, t.cy)])
        over = min(s.y, t.y) - 25
        under = max(s.bottom, t.bottom) + 25
        candidates.append([(s.cx, s.y), (s.cx, over), (t.cx, over), (t.cx, t.y)])
        candidates.append([(s.cx, s.bottom), (s.cx, under), (t.cx, under), (t.cx, t.bottom)])
    else:
        down = t.cy > s.cy
        if source.kind == "gateway" and target.kind == "gateway":  # corner to corner, between the rows
            middle = (s.bottom + t.y) / 2 if down else (s.y + t.bottom) / 2
            candidates.append([(s.cx, s.bottom if down else s.y), (s.cx, middle), (t.cx, middle),
                               (t.cx, t.y if down else t.bottom)])
        if source.kind == "gateway":
            candidates.append([(s.cx, s.bottom if down else s.y), (s.cx, t.cy), (t.x, t.cy)])
        if target.kind == "gateway":
            candidates.append([(s.right, s.cy), (t.cx, s.cy), (t.cx, t.y if down else t.bottom)])
        near_target = t.x - COLUMN_GAP / 2
        near_source = s.right + COLUMN_GAP / 2
        candidates.append([(s.right, s.cy), (near_target, s.cy), (near_target, t.cy), (t.x, t.cy)])
        candidates.append([(s.right, s.cy), (near_source, s.cy), (near_source, t.cy), (t.x, t.cy)])
        if source.kind != "gateway":
            candidates.append([(s.cx, s.bottom if down else s.y), (s.cx, t.cy), (t.x, t.cy)])
    others = [
        o for o in obstacles
        if o is not source and o is not target and not contains(o, source) and not contains(o, target)
    ]
    clear = [points for points in candidates if not any(crosses(points, o.box) for o in others)]
    alone = [points for points in clear if (round(points[-1][0]), round(points[-1][1])) not in arrivals]
    return (alone or clear or candidates)[0]


def contains(outer: Node, inner: Node) -> bool:
    """An expanded subprocess contains its children; a host 'contains' its boundary events."""
    if outer.scope is not None and inner.id in all_nodes(outer.scope):
        return True
    return inner.element.get("attachedToRef") == outer.id


def crosses(points, box: Box, margin: float = 4) -> bool:
    left, top, right, bottom = box.x - margin, box.y - margin, box.right + margin, box.bottom + margin
    for (x1, y1), (x2, y2) in zip(points, points[1:]):
        if max(x1, x2) < left or min(x1, x2) > right or max(y1, y2) < top or min(y1, y2) > bottom:
            continue
        return True
    return False


def collect_flows(scope: Scope) -> list[tuple[etree._Element, bool, Scope]]:
    edges = edges_of(scope)
    back = back_edges(scope, edges)
    found = []
    for flow in scope.flows:
        source, target = flow.get("sourceRef"), flow.get("targetRef")
        host = scope.boundaries[source].element.get("attachedToRef") if source in scope.boundaries else source
        found.append((flow, (host, target) in back, scope))
    for node in scope.nodes.values():
        if node.scope is not None:
            found.extend(collect_flows(node.scope))
    return found


# --- DI -----------------------------------------------------------------------------------------


def bounds(parent: etree._Element, box: Box, tag: str = "Bounds") -> None:
    etree.SubElement(parent, f"{{{DC}}}{tag}", x=fmt(box.x), y=fmt(box.y), width=fmt(box.w), height=fmt(box.h))


def fmt(value: float) -> str:
    return str(int(round(value)))


def label_box(node: Node, used: set[tuple[float, float]]) -> Box | None:
    """Bounds of an event's or gateway's name; `used` holds the points where flows touch shapes."""
    name = node.element.get("name")
    if not name or node.kind not in ("event", "gateway"):
        return None
    width = min(max(len(name) * CHAR_WIDTH, 40), 120)
    height = 14 * -(-len(name) * CHAR_WIDTH // width)
    b = node.box
    if node.kind == "gateway":  # above the diamond, or below when a flow uses the top corner
        top_free = (round(b.cx), round(b.y)) not in used
        bottom_free = (round(b.cx), round(b.bottom)) not in used
        if top_free:
            return Box(b.cx - width / 2, b.y - height - 4, width, height)
        if bottom_free:
            return Box(b.cx - width / 2, b.bottom + 4, width, height)
        return Box(b.cx - width - 4, b.y - height, width, height)  # above, left of the top corner
    if local(node.element) == "boundaryEvent":  # below, beside the flow leaving downwards
        return Box(b.cx - width - 4 if node.label_left else b.cx + 4, b.bottom + 2, width, height)
    return Box(b.cx - width / 2, b.bottom + 6, width, height)


def flow_label(flow: etree._Element, points, back: bool) -> Box | None:
    name = flow.get("name")
    if not name:
        return None
    (x1, y1), (x2, y2) = points[0], points[1]
    if back:  # centred on the segment that goes back, on its outer side
        (x1, y1), (x2, y2) = points[1], points[2]
        width = min(len(name) * CHAR_WIDTH, 160)
        height = 14 * -(-len(name) * CHAR_WIDTH // width)
        above = points[1][1] < points[0][1]
        return Box((x1 + x2) / 2 - width / 2, y1 - height - 2 if above else y1 + 2, width, height)
    if abs(x1 - x2) < 1 and len(points) > 2:  # leaves vertically: label above the segment after the bend
        (x1, y1), (x2, y2) = points[1], points[2]
    room = abs(x2 - x1) - 12 if abs(y1 - y2) < 1 else 120
    width = max(min(len(name) * CHAR_WIDTH, 120, room), 48)
    height = 14 * -(-len(name) * CHAR_WIDTH // width)
    if abs(x1 - x2) < 1:  # a single vertical segment: label beside it
        return Box(x1 + 6, (y1 + y2) / 2 - height / 2, width, height)
    return Box(min(x1, x2) + 6, y1 - height - 2, width, height)


def write_diagram(definitions: etree._Element, process: etree._Element, scope: Scope, origin) -> None:
    for old in definitions.findall(f"{{{BPMNDI}}}BPMNDiagram"):
        definitions.remove(old)
    participant = definitions.find(f"{{{BPMN}}}collaboration/{{{BPMN}}}participant[@processRef='{process.get('id')}']")
    collaboration = participant.getparent() if participant is not None else None
    diagram = etree.SubElement(definitions, f"{{{BPMNDI}}}BPMNDiagram", id=f"diagram-{process.get('id')}")
    plane_element = collaboration if collaboration is not None else process
    plane = etree.SubElement(diagram, f"{{{BPMNDI}}}BPMNPlane", id=f"plane-{process.get('id')}",
                             bpmnElement=plane_element.get("id"))
    x0, y0 = origin
    if participant is not None:
        shape = etree.SubElement(plane, f"{{{BPMNDI}}}BPMNShape", id=f"{participant.get('id')}_di",
                                 bpmnElement=participant.get("id"), isHorizontal="true")
        bounds(shape, Box(x0, y0, scope.width + POOL_LABEL, scope.height))
    for lane in scope.lanes:
        shape = etree.SubElement(plane, f"{{{BPMNDI}}}BPMNShape", id=f"{lane.get('id')}_di",
                                 bpmnElement=lane.get("id"), isHorizontal="true")
        bounds(shape, scope.lane_boxes[lane.get("id")])
    nodes = all_nodes(scope)
    obstacles = list(nodes.values())
    routes, arrivals = [], set()
    for flow, back, _ in collect_flows(scope):
        points = route(nodes[flow.get("sourceRef")], nodes[flow.get("targetRef")], back, obstacles, arrivals)
        arrivals.add((round(points[-1][0]), round(points[-1][1])))
        routes.append((flow, back, points))
    used = {(round(x), round(y)) for _, _, points in routes for x, y in (points[0], points[-1])}
    for node in nodes.values():
        attributes = {"id": f"{node.id}_di", "bpmnElement": node.id}
        if node.kind == "container":
            attributes["isExpanded"] = "true"
        if local(node.element) == "exclusiveGateway":
            attributes["isMarkerVisible"] = "true"
        shape = etree.SubElement(plane, f"{{{BPMNDI}}}BPMNShape", **attributes)
        bounds(shape, node.box)
        label = label_box(node, used)
        if label is not None:
            bounds(etree.SubElement(shape, f"{{{BPMNDI}}}BPMNLabel"), label)
    for flow, back, points in routes:
        edge = etree.SubElement(plane, f"{{{BPMNDI}}}BPMNEdge", id=f"{flow.get('id')}_di", bpmnElement=flow.get("id"))
        for x, y in points:
            etree.SubElement(edge, f"{{{DI}}}waypoint", x=fmt(x), y=fmt(y))
        label = flow_label(flow, points, back)
        if label is not None:
            bounds(etree.SubElement(edge, f"{{{BPMNDI}}}BPMNLabel"), label)


def layout_file(path: Path) -> None:
    tree = etree.parse(str(path), etree.XMLParser(remove_blank_text=False, resolve_entities=False, no_network=True))
    definitions = tree.getroot()
    processes = definitions.findall(f"{{{BPMN}}}process")
    if len(processes) != 1:
        raise SystemExit(f"{path}: expected one bpmn:process, found {len(processes)}")
    process = processes[0]
    scope = read_scope(process)
    layout_scope(scope)
    has_pool = definitions.find(f"{{{BPMN}}}collaboration/{{{BPMN}}}participant") is not None
    dx = ORIGIN[0] + (POOL_LABEL if has_pool else 0)
    shift(scope, dx, ORIGIN[1])
    place_nested(scope)
    place_boundaries(scope)
    write_diagram(definitions, process, scope, ORIGIN)
    etree.indent(definitions.find(f"{{{BPMNDI}}}BPMNDiagram"), space="  ", level=1)
    definitions.find(f"{{{BPMNDI}}}BPMNDiagram").tail = "\n"
    previous = definitions.find(f"{{{BPMNDI}}}BPMNDiagram").getprevious()
    if previous is not None:
        previous.tail = "\n  "
    body = etree.tostring(definitions, encoding="UTF-8", xml_declaration=False)
    path.write_bytes(b'<?xml version="1.0" encoding="UTF-8"?>\n' + body + b"\n")


def main(paths: list[str]) -> None:
    if not paths:
        raise SystemExit(__doc__)
    for name in paths:
        layout_file(Path(name))


if __name__ == "__main__":
    main(sys.argv[1:])
