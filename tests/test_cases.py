"""Deploy → start → claim → complete → end, on both databases."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import cases, pathways
from engine.db import transaction
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import Case, HumanTask
from tests.conftest import SIMULATION_START, fixture_bytes
from tests.helpers import complete, deploy_fixture, open_tasks, start, timeline


def test_deploy_start_claim_complete_end(session_factory, ctx):
    version = deploy_fixture(session_factory, ctx, "simple.bpmn")
    assert (version.key, version.version) == ("simple", 1)
    assert version.meta["lanes"] == {
        "mission-locale": {"structure_types": [], "structure_type_variable": None},
        "Département": {"structure_types": ["departement"], "structure_type_variable": None},
    }

    case_id = start(session_factory, ctx, "simple")
    [first] = open_tasks(session_factory, case_id)
    assert (first.bpmn_id, first.lane, first.form_key, first.state) == ("first", "mission-locale", "note", "open")
    assert first.due_at == SIMULATION_START + timedelta(days=15)  # from the boundary timer

    with session_factory() as session, transaction(session):
        cases.claim_task(session, ctx, first.id, user="alice")
    with session_factory() as session, pytest.raises(Conflict, match="claimed by alice"):
        cases.claim_task(session, ctx, first.id, user="bob")

    complete(session_factory, ctx, first.id, {"note": "vu", "approved": True}, user="alice")
    [second] = open_tasks(session_factory, case_id)
    assert (second.bpmn_id, second.lane) == ("second", "Département")
    assert second.due_at == SIMULATION_START + timedelta(days=7)  # spie:dueIn

    case = complete(session_factory, ctx, second.id, {"note": "fini"}, user="bob")
    assert case.status == "closed" and case.ended_at is not None
    assert open_tasks(session_factory, case_id) == []
    kinds = [e.kind for e in timeline(session_factory, case_id)]
    assert kinds[0] == "case_started" and kinds[-1] == "case_closed"
    assert kinds.count("task_completed") == 2 and "task_claimed" in kinds
    with session_factory() as session:
        states = dict(session.execute(select(HumanTask.bpmn_id, HumanTask.state).where(HumanTask.case_id == case_id)).all())
        timers = session.scalar(select(Case.next_timer_at).where(Case.id == case_id))
    assert states == {"first": "completed", "second": "completed"}
    assert timers is None  # the boundary timer went with its task


def test_state_is_saved_without_spec(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple")
    with session_factory() as session:
        state = session.get(Case, case_id).state
    assert '"spec"' not in state and "Premier entretien" not in state


def test_redeploying_identical_content_returns_existing_version(session_factory, ctx):
    first = deploy_fixture(session_factory, ctx, "simple.bpmn")
    again = deploy_fixture(session_factory, ctx, "simple.bpmn")
    assert again.id == first.id
    changed = fixture_bytes("engine/simple.bpmn").replace(b"Second entretien", b"Entretien final")
    with session_factory() as session, transaction(session):
        result = pathways.deploy(session, ctx, changed, deployed_by="d")
    assert result.created and result.version.version == 2
    with session_factory() as session:
        assert pathways.get_version(session, "simple").version == 2
        assert pathways.get_version(session, "simple", 1).id == first.id
    # a case can still be started on a named older version
    with session_factory() as session, transaction(session):
        case = cases.start_case(session, ctx, "simple", actor="r", version=1)
        assert case.pathway_version_id == first.id


def test_form_errors_are_reported_and_nothing_changes(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple")
    [task] = open_tasks(session_factory, case_id)
    with pytest.raises(InvalidInput) as error:
        complete(session_factory, ctx, task.id, {"note": "", "extra": 1})
    fields = {e["field"] for e in error.value.errors}
    assert fields == {"note", ""}
    [still] = open_tasks(session_factory, case_id)
    assert still.id == task.id and still.state == "open"


def test_completed_task_cannot_be_completed_again(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple")
    [task] = open_tasks(session_factory, case_id)
    complete(session_factory, ctx, task.id, {"note": "ok"})
    with pytest.raises(Conflict, match="already completed"):
        complete(session_factory, ctx, task.id, {"note": "again"})


def test_unknown_pathway_and_task(session_factory, ctx):
    with session_factory() as session:
        with pytest.raises(NotFound):
            cases.start_case(session, ctx, "nope", actor="r")
        with pytest.raises(NotFound):
            cases.claim_task(session, ctx, 999, user="r")


def test_release_and_supervisor_assignment(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple")
    [task] = open_tasks(session_factory, case_id)
    with session_factory() as session, transaction(session):
        cases.claim_task(session, ctx, task.id, user="alice")
        cases.release_task(session, ctx, task.id, user="alice")
        cases.assign_task(session, ctx, task.id, user="bob", actor="chief")
    with pytest.raises(Conflict):
        complete(session_factory, ctx, task.id, {"note": "x"}, user="alice")
    complete(session_factory, ctx, task.id, {"note": "x"}, user="bob")
