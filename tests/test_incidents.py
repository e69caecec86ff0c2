"""A failing or hostile script opens an incident on its case; nothing else is hurt."""
from __future__ import annotations

import time
from datetime import timedelta
from xml.sax.saxutils import escape

import pytest

from engine import cases, pathways
from engine.db import transaction
from engine.errors import Conflict
from engine.models import Case
from engine.timers import fire_due_timers
from tests.conftest import SIMULATION_START, fixture_bytes
from tests.helpers import open_tasks, start, timeline

HOSTILE = {
    "import": "__import__('os').system('id')",
    "import-statement": "import os\nos.system('id')",
    "subclasses": "x = ().__class__.__base__.__subclasses__()",
    "endless-loop": "while True:\n    pass",
    "huge-allocation": "x = 'a' * 10 ** 10",
    "huge-list": "x = [0] * 10 ** 10",
}


def _deploy_script(session_factory, ctx, script: str) -> None:
    xml = fixture_bytes("engine/scripted.bpmn").replace(b"SCRIPT", escape(script).encode())
    with session_factory() as session, transaction(session):
        pathways.deploy(session, ctx, xml, deployed_by="designer")


def _case(session_factory, case_id) -> Case:
    with session_factory() as session:
        return session.get(Case, case_id)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_script_opens_an_incident(session_factory, ctx, name):
    _deploy_script(session_factory, ctx, HOSTILE[name])
    began = time.monotonic()
    case_id = start(session_factory, ctx, "scripted")
    assert time.monotonic() - began < 5
    case = _case(session_factory, case_id)
    assert case.status == "incident"
    assert case.incident["bpmn_id"] == "compute" and case.incident["message"]
    assert [e.kind for e in timeline(session_factory, case_id)][-1] == "incident_opened"
    # The process is healthy: an ordinary case of another version still runs.
    _deploy_script(session_factory, ctx, "total = sum([1, 2, 3])")
    healthy = start(session_factory, ctx, "scripted")
    assert _case(session_factory, healthy).status == "active"
    assert [t.bpmn_id for t in open_tasks(session_factory, healthy)] == ["check"]


def test_incident_retried_after_a_data_fix(session_factory, ctx):
    _deploy_script(session_factory, ctx, "ratio = total / divisor")
    case_id = start(session_factory, ctx, "scripted", {"total": 10, "divisor": 0})
    assert _case(session_factory, case_id).status == "incident"
    assert "division by zero" in _case(session_factory, case_id).incident["message"]
    assert open_tasks(session_factory, case_id) == []

    with session_factory() as session, transaction(session):
        cases.retry_incident(session, ctx, case_id, actor="admin", data={"divisor": 4})
    case = _case(session_factory, case_id)
    assert case.status == "active" and case.incident is None
    assert [t.bpmn_id for t in open_tasks(session_factory, case_id)] == ["check"]
    with session_factory() as session, pytest.raises(Conflict, match="no open incident"):
        cases.retry_incident(session, ctx, case_id, actor="admin")


def test_a_failing_timer_script_does_not_stop_the_batch(session_factory, ctx):
    """Timers of several cases come due together; one script fails: only its case is in incident."""
    xml = fixture_bytes("engine/loop.bpmn").replace(b"passes += 1", b"passes += 1\nratio = 1 / divisor")
    with session_factory() as session, transaction(session):
        pathways.deploy(session, ctx, xml, deployed_by="designer")
    broken = start(session_factory, ctx, "weekly_loop", {"target": 1, "divisor": 0})
    healthy = [start(session_factory, ctx, "weekly_loop", {"target": 1, "divisor": 1}) for _ in range(3)]
    fire_due_timers(session_factory, ctx, SIMULATION_START + timedelta(days=8))
    assert _case(session_factory, broken).status == "incident"
    assert {_case(session_factory, c).status for c in healthy} == {"closed"}
