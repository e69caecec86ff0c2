"""Saved cases from the pinned SpiffWorkflow must keep loading and running.

A SpiffWorkflow upgrade that cannot read these states fails here, before it
can strand real cases. See tests/golden.py to regenerate on purpose.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from SpiffWorkflow.bpmn import BpmnEvent
from SpiffWorkflow.util.task import TaskState

from engine.clock import install_spiff_clock, workflow_time
from engine.sandbox import create_script_engine
from engine.state import StateSerializer
from tests.golden import GOLDEN, T0, specs_for, waiting_snapshot

CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


@pytest.fixture(scope="module", autouse=True)
def spiff_clock():
    install_spiff_clock()


def _load(name: str):
    directory = GOLDEN / name
    spec, subprocess_specs = specs_for(directory)
    workflow = StateSerializer().load((directory / "state.json").read_text(), spec, subprocess_specs)
    workflow.script_engine = create_script_engine()
    return workflow, json.loads((directory / "expected.json").read_text())


def test_golden_cases_exist():
    assert {"simple-after-boundary-timer", "timers-cycle-waiting", "message-waiting",
            "ml-exit-in-hand-off"} <= set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_golden_state_loads_with_the_same_waiting_tasks(name):
    workflow, expected = _load(name)
    assert waiting_snapshot(workflow) == expected["waiting"]
    again = StateSerializer()
    assert waiting_snapshot(again.load(again.dump(workflow), workflow.spec, workflow.subprocess_specs)) == \
        expected["waiting"]


@pytest.mark.parametrize("name", CASES)
def test_golden_state_keeps_running(name):
    """Each saved case can take its next step: a user task, or its next timer."""
    workflow, expected = _load(name)
    ready = workflow.get_tasks(state=TaskState.READY, manual=True)
    with workflow_time(T0 + timedelta(days=60)):
        if ready:
            ready[0].set_data(note="ok", approved=True, referent_email="r@example.org", date_designation="2026-03-01")
            ready[0].run()
        else:
            [waiting] = workflow.get_tasks(state=TaskState.WAITING)
            workflow.send_event(BpmnEvent(waiting.task_spec.event_definition, payload={"ok": True}))
        workflow.refresh_timers()
        workflow.do_engine_steps()
    assert waiting_snapshot(workflow) != expected["waiting"]
