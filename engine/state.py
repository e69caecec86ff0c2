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
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import VERSION as SERIALIZER_VERSION
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

# Compact only trees deeper than this: ordinary cases keep their whole history.
COMPACTION_DEPTH = 60


class SpeclessWorkflowConverter(BpmnWorkflowConverter):
    """Workflow converter that leaves the specs out of the saved state."""

    def to_dict(self, workflow):
        dct = super().to_dict(workflow)
        del dct["spec"], dct["subprocess_specs"]
        return dct

    def from_dict(self, dct):
        # The caller put the live spec objects in the dict (see StateSerializer.load).
        workflow = self.target_class(dct.pop("spec"), dct.pop("subprocess_specs"), deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _configure() -> BpmnWorkflowSerializer:
    config = dict(SPIFF_CONFIG)
    config[BpmnWorkflow] = SpeclessWorkflowConverter
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
    depth, stack = 0, [(workflow.task_tree, 1)]
    while stack:
        task, level = stack.pop()
        depth = max(depth, level)
        stack.extend((child, level + 1) for child in task.children)
    return depth


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
