"""Saving and loading a case's SpiffWorkflow state without its spec.

SpiffWorkflow's serializer embeds the whole spec in every instance.  We store
the spec once per pathway version (and keep parsed specs in memory), so the
workflow converter here writes only the instance part and, on load, receives
the already-built spec objects instead of rebuilding them from JSON.

Long cases: a gateway back-edge deepens the task tree by a few levels per pass
and SpiffWorkflow stops seeing READY tasks past depth 1000 (the loop stall).
:func:`compact` re-roots the tree on the lowest common ancestor of the
unfinished tasks, dropping finished history above it, so state size and depth
stay bounded however long a case lives.  History is kept in ``case_event``.
"""
from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import (
    BpmnSubWorkflowConverter,
    BpmnWorkflowConverter,
    WorkflowConverter,
)
from SpiffWorkflow.bpmn.serializer.workflow import VERSION as SERIALIZER_VERSION
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskState

# Compact only trees deeper than this: ordinary cases keep their whole history.
COMPACTION_DEPTH = 60


def workflow_to_dict(converter: WorkflowConverter, workflow) -> dict:
    """``WorkflowConverter.to_dict`` (the keys of a workflow or subprocess), with its tasks by :func:`tasks_to_dict`."""
    registry = converter.registry
    return {
        "data": registry.convert(registry.clean(workflow.data)),
        "correlations": workflow.correlations,
        "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
        "success": workflow.success,
        "completed": workflow.completed,
        "tasks": tasks_to_dict(registry, workflow.tasks),
        "root": str(workflow.task_tree.id),
    }


def tasks_to_dict(registry, tasks: dict) -> dict:
    """What ``mapping_to_dict(tasks)`` gives with Spiff's ``TaskConverter``, dict for dict, key for key.

    Saving is the costliest step of a command after the engine steps, and most of
    it is this per-task conversion; done here without the registry's dispatch
    per task and with each task id formatted once, it takes about half the time.
    ``tests/test_state.py`` checks the output against Spiff's own converter.
    """
    typename = registry.typenames[Task]
    convert = registry.convert
    ids = {task_id: str(task_id) for task_id in tasks}
    converted = {}
    for task_id, task in tasks.items():
        parent = tasks.get(task._parent)  # Task.parent
        if parent is None:
            data, delta = task.data, {}
        else:  # TaskConverter stores only what differs from the parent's data
            data, above, mine = {}, parent.data, task.data
            delta = {"updates": {k: v for k, v in mine.items() if k not in above or v != above[k]},
                     "deletions": [k for k in above if k not in mine]}
        key = ids[task_id]
        converted[key] = {
            "id": key,
            "parent": ids[task._parent] if parent is not None else None,
            "children": [ids.get(child) or str(child) for child in task._children],
            "last_state_change": task.last_state_change,
            "state": task._state,
            "task_spec": task.task_spec.name,
            "triggered": task.triggered,
            "internal_data": convert(task.internal_data),
            "data": data,
            "delta": delta,
            "typename": typename,
        }
    return converted


def tasks_from_dict(registry, workflow, dct: dict) -> dict:
    """What ``mapping_from_dict(tasks, UUID)`` gives with Spiff's ``TaskConverter``, task for task.

    The same steps as ``TaskConverter.from_dict``, each task id parsed once
    (parsing UUIDs was a third of a load); tests/test_state.py compares both.
    """
    typename = registry.typenames[Task]
    restore = registry.restore
    uuids: dict[str, UUID] = {}

    def uuid(text: str) -> UUID:
        found = uuids.get(text)
        if found is None:
            found = uuids[text] = UUID(text)
        return found

    tasks = {}
    for key, item in dct.items():
        if item.get("typename") != typename:  # not a plain task: let the registry restore it
            tasks[uuid(key)] = restore(item, workflow=workflow)
            continue
        task_spec = workflow.spec.task_specs.get(item["task_spec"])
        task = Task(workflow, task_spec, state=item["state"], id=uuid(item["id"]))
        task._parent = uuid(item["parent"]) if item["parent"] is not None else None
        task._children = [uuid(child) for child in item["children"]]
        task.last_state_change = item["last_state_change"]
        task.triggered = item["triggered"]
        task.internal_data = restore(item["internal_data"])
        if isinstance(task_spec, CatchingEvent) and task.has_state(TaskState.WAITING):
            task.workflow.top_workflow.event_manager.add_task(task)
        delta, parent = item.get("delta"), task.parent
        if delta and parent is not None:
            data = DeepMerge.merge({}, parent.data)
            data.update(restore(delta.get("updates", {})))
            for deleted in delta.get("deletions", {}):
                data.pop(deleted, None)
        else:
            data = restore(item["data"])
        task.data = data
        tasks[uuid(key)] = task
    return tasks


class SpeclessWorkflowConverter(BpmnWorkflowConverter):
    """Workflow converter that leaves the specs out of the saved state."""

    def to_dict(self, workflow):
        # BpmnWorkflowConverter.to_dict without its spec and subprocess_specs keys, which it
        # would convert (a third of the cost of a save) only for us to drop them.
        dct = workflow_to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct):
        # The caller put the live spec objects in the dict (see StateSerializer.load).
        workflow = self.target_class(dct.pop("spec"), dct.pop("subprocess_specs"), deserializing=True)
        workflow.tasks = tasks_from_dict(self.registry, workflow, dct["tasks"])
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


class SubprocessConverter(BpmnSubWorkflowConverter):
    """Spiff's subprocess converter, its tasks by :func:`tasks_to_dict` and :func:`tasks_from_dict`."""

    def to_dict(self, workflow):
        dct = workflow_to_dict(self, workflow)
        dct["parent_task_id"] = str(workflow.parent_task_id)
        dct["spec"] = workflow.spec.name
        return dct

    def from_dict(self, dct, task, top_workflow):
        spec = top_workflow.subprocess_specs.get(task.task_spec.spec)
        subprocess = self.target_class(spec, task.id, top_workflow, deserializing=True)
        subprocess.tasks = tasks_from_dict(self.registry, subprocess, dct["tasks"])
        subprocess.task_tree = subprocess.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(subprocess, dct)
        return subprocess


def _configure() -> BpmnWorkflowSerializer:
    config = dict(SPIFF_CONFIG)
    config[BpmnWorkflow] = SpeclessWorkflowConverter
    config[BpmnSubWorkflow] = SubprocessConverter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))


class StateSerializer:
    """JSON in and out of ``case.state``; thread-safe and shared by the process."""

    version = SERIALIZER_VERSION

    def __init__(self) -> None:
        self._serializer = _configure()

    def dump(self, workflow: BpmnWorkflow) -> str:
        return self._serializer.serialize_json(workflow)

    def load(self, state: str, spec, subprocess_specs: dict) -> BpmnWorkflow:
        dct: dict[str, Any] = json.loads(state)
        self._serializer.migrate(dct)
        dct["spec"] = spec
        dct["subprocess_specs"] = subprocess_specs
        return self._serializer.from_dict(dct)


def tree_depth(workflow: BpmnWorkflow) -> int:
    """Levels of the task tree, walked level by level on task ids (every save of a large tree asks)."""
    tasks, level, frontier = workflow.tasks, 0, [workflow.task_tree.id]
    while frontier:
        level += 1
        frontier = [child for task_id in frontier for child in tasks[task_id]._children]
    return level


def compact(workflow: BpmnWorkflow, threshold: int = COMPACTION_DEPTH) -> int:
    """Drop finished history above the unfinished tasks; return tasks removed.

    Applied to the top-level workflow only: call activities and embedded
    subprocesses are separate trees that end when their activity ends.
    """
    if len(workflow.tasks) <= threshold:  # a tree cannot be deeper than it has tasks
        return 0
    unfinished = [t for t in workflow.tasks.values() if not t.has_state(TaskState.FINISHED_MASK)]
    if not unfinished or tree_depth(workflow) <= threshold:
        return 0
    anchor = _lowest_common_ancestor(unfinished)
    root = workflow.task_tree
    if anchor is root or anchor.parent is root:
        return 0
    keep = {root.id}
    keep.update(t.id for t in _subtree(anchor))
    removed = [task_id for task_id in workflow.tasks if task_id not in keep]
    for task_id in removed:
        del workflow.tasks[task_id]
    for task_id in [tid for tid in workflow.subprocesses if tid not in keep]:
        del workflow.subprocesses[task_id]
    anchor._parent = root.id
    root._children = [anchor.id]
    if workflow.last_task is not None and workflow.last_task.id not in keep:
        workflow.last_task = anchor
    return len(removed)


def _ancestry(task) -> list:
    chain = []
    while task is not None:
        chain.append(task)
        task = task.parent
    return chain[::-1]


def _lowest_common_ancestor(tasks: list):
    common = _ancestry(tasks[0])
    for task in tasks[1:]:
        chain = _ancestry(task)
        length = 0
        for mine, theirs in zip(common, chain):
            if mine is not theirs:
                break
            length += 1
        common = common[:length]
    return common[-1]


def _subtree(task):
    stack = [task]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.children)
