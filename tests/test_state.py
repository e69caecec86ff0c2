"""engine.state writes exactly what SpiffWorkflow's own serializer writes, the specs left out."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

from engine.bpmn_parsing import parse_pathway
from engine.clock import install_spiff_clock, workflow_time
from engine.sandbox import create_script_engine
from engine.state import StateSerializer
from tests.conftest import fixture_bytes
from tests.golden import GOLDEN, T0, specs_for

SPIFF = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))


@pytest.fixture(scope="module", autouse=True)
def spiff_clock():
    install_spiff_clock()


def spiff_state_without_specs(workflow: BpmnWorkflow) -> str:
    """SpiffWorkflow's ``serialize_json`` with the two spec keys taken out, keys kept in their order."""
    dct = json.loads(SPIFF.serialize_json(workflow))
    del dct["spec"], dct["subprocess_specs"]
    return json.dumps(dct)


def assert_same_as_spiff(workflow: BpmnWorkflow) -> None:
    """Written as Spiff writes it; read back into the workflow Spiff reads back."""
    ours = StateSerializer().dump(workflow)
    assert json.dumps(json.loads(ours)) == spiff_state_without_specs(workflow)
    again = StateSerializer().load(ours, workflow.spec, workflow.subprocess_specs)
    assert described(again) == described(SPIFF.deserialize_json(SPIFF.serialize_json(workflow)))
    assert StateSerializer().dump(again) == ours


def described(workflow) -> dict:
    """Everything a loaded workflow holds, in plain values: tasks, links, data, waiting events, subprocesses."""
    def tasks(wf) -> dict:
        return {str(t.id): (str(t._parent), [str(c) for c in t._children], t.state, t.task_spec.name, t.triggered,
                            t.last_state_change, t.internal_data, t.data, type(t).__name__)
                for t in wf.tasks.values()}

    return {
        "tasks": tasks(workflow), "root": str(workflow.task_tree.id), "data": workflow.data,
        "last_task": str(workflow.last_task.id) if workflow.last_task else None,
        "success": workflow.success, "completed": workflow.completed, "correlations": workflow.correlations,
        "waiting": sorted(str(t.id) for t in workflow.event_manager.tasks.values()),
        "subprocesses": {str(k): (tasks(sp), str(sp.task_tree.id), sp.data, str(sp.parent_task_id), sp.spec.name)
                         for k, sp in workflow.subprocesses.items()},
    }


def golden(name: str) -> BpmnWorkflow:
    spec, subprocess_specs = specs_for(GOLDEN / name)
    workflow = StateSerializer().load((GOLDEN / name / "state.json").read_text(), spec, subprocess_specs)
    workflow.script_engine = create_script_engine()
    return workflow


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()))
def test_golden_states_are_written_as_spiff_writes_them(name):
    workflow = golden(name)
    assert_same_as_spiff(workflow)
    ready = workflow.get_tasks(state=TaskState.READY, manual=True)
    with workflow_time(T0 + timedelta(days=60)):  # one more step, then again
        if ready:
            ready[0].set_data(note="ok", approved=True, referent_email="r@example.org", date_designation="2026-03-01")
            ready[0].run()
        else:
            [waiting] = workflow.get_tasks(state=TaskState.WAITING)
            workflow.send_event(BpmnEvent(waiting.task_spec.event_definition, payload={"ok": True}))
        workflow.refresh_timers()
        workflow.do_engine_steps()
    assert_same_as_spiff(workflow)


def test_a_case_is_written_as_spiff_writes_it_at_every_step():
    """simple.bpmn: data added and deleted along the way, a boundary timer, the end."""
    parsed = parse_pathway(fixture_bytes("engine/simple.bpmn"), validate=False)
    workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=create_script_engine())
    with workflow_time(T0):
        workflow.do_engine_steps()
        assert_same_as_spiff(workflow)
        for data in ({"note": "vu", "approved": True, "nested": {"a": [1, 2]}}, {"note": "fini"}):
            [task] = workflow.get_tasks(state=TaskState.READY, manual=True)
            task.set_data(**data)
            if "nested" not in data:
                task.data.pop("approved")
            task.run()
            workflow.do_engine_steps()
            assert_same_as_spiff(workflow)
    assert workflow.completed


def test_a_long_loop_is_written_as_spiff_writes_it():
    parsed = parse_pathway(fixture_bytes("engine/loop.bpmn"), validate=False)
    workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=create_script_engine())
    workflow.get_tasks(state=TaskState.READY)[0].data.update(target=5)
    with workflow_time(T0):
        workflow.do_engine_steps()
    for week in range(1, 6):
        with workflow_time(T0 + timedelta(days=8 * week)):
            workflow.refresh_timers()
            workflow.do_engine_steps()
        assert_same_as_spiff(workflow)
    assert workflow.completed and workflow.last_task.data["passes"] == 5
