"""engine.case_writes: a save's rows, in one statement on PostgreSQL, one by one elsewhere, with the same result."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from engine import case_writes, row_hooks
from engine.case_writes import SavedRows
from engine.clock import SystemClock
from engine.context import EngineContext
from engine.db import transaction
from engine.errors import Conflict
from engine.models import Case, CaseEvent, HumanTask, Timer
from tests.conftest import FIXTURES, SIMULATION_START
from tests.helpers import complete, database_work, deploy_fixture, open_tasks, start, timeline

NOW = SIMULATION_START + timedelta(hours=1)


def counts(session_factory, case_id: int) -> tuple[int, int, int]:
    with session_factory() as session:
        return tuple(session.scalar(select(func.count()).select_from(model).where(model.case_id == case_id))
                     for model in (HumanTask, Timer, CaseEvent))


def some_rows(case_id: int | None, task_uuid: str) -> SavedRows:
    return SavedRows(
        tasks=[{"case_id": case_id, "task_uuid": task_uuid, "bpmn_id": "relance", "name": "Relancer « Mme X »",
                "lane": None, "form_key": None, "state": "open", "assignee": None, "structure_id": None,
                "audience": "referent", "unassigned": True, "escalation_level": 0, "created_at": NOW,
                "due_at": NOW + timedelta(days=7), "version": 1}],
        timers=[{"case_id": case_id, "task_uuid": task_uuid, "bpmn_id": "relance-timer", "kind": "duration",
                 "due_at": NOW + timedelta(days=7), "state": "waiting", "fired_count": 0}],
        events=[{"case_id": case_id, "at": NOW, "actor": "test", "kind": kind, "bpmn_id": "relance",
                 "task_uuid": task_uuid, "summary": {"name": "Relancer « Mme X »", "n": i}}
                for i, kind in enumerate(("task_created", "task_unassigned", "note"))],
    )


def test_a_save_writes_the_case_and_its_rows_in_order(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple")
    before = counts(session_factory, case_id)
    with session_factory() as session, transaction(session):
        case = session.get(Case, case_id)
        version = case.version
        case.exit_reason = "emploi"  # a pending change goes with the values
        case_writes.write(session, case, {"updated_at": NOW}, some_rows(case_id, "uuid-relance"))
        assert case.version == version + 1 and not session.is_modified(case)
    with session_factory() as session:
        case = session.get(Case, case_id)
        assert (case.version, case.exit_reason, case.updated_at) == (version + 1, "emploi", NOW)
        task = session.scalar(select(HumanTask).where(HumanTask.task_uuid == "uuid-relance"))
        assert (task.case_id, task.name, task.unassigned, task.due_at) == (case_id, "Relancer « Mme X »", True,
                                                                            NOW + timedelta(days=7))
    assert counts(session_factory, case_id) == (before[0] + 1, before[1] + 1, before[2] + 3)
    last = timeline(session_factory, case_id)[-3:]
    assert [(e.kind, e.summary) for e in last] == [
        ("task_created", {"name": "Relancer « Mme X »", "n": 0}), ("task_unassigned", {"name": "Relancer « Mme X »", "n": 1}),
        ("note", {"name": "Relancer « Mme X »", "n": 2})]


def test_a_stale_case_writes_nothing(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple")
    before = counts(session_factory, case_id)
    with session_factory() as session:
        case = session.get(Case, case_id)
        with session_factory() as other, transaction(other):
            other.execute(update(Case).where(Case.id == case_id).values(version=Case.version + 1))
        with pytest.raises(Conflict, match=f"case {case_id} was changed by someone else"):
            with transaction(session):
                case_writes.write(session, case, {"updated_at": NOW}, some_rows(case_id, "uuid-relance"))
    assert counts(session_factory, case_id) == before


def test_a_new_case_is_inserted_with_its_rows_and_listeners_see_its_id(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    template = start(session_factory, ctx, "simple")
    seen = []

    def listener(session, tasks, events):
        seen.extend(row["case_id"] for row in [*tasks, *events])
        tasks[0]["name"] = "Relancer (modifié)"  # a listener may change the rows before they are written

    row_hooks.before_rows_written(listener)
    try:
        with session_factory() as session, transaction(session):
            pathway_version_id = session.get(Case, template).pathway_version_id
            case = Case(pathway_version_id=pathway_version_id, status="active", state="{}", serializer_version="1.4",
                        created_at=NOW, updated_at=NOW, created_by="test")
            case_writes.write(session, case, {"next_timer_at": None}, some_rows(None, "uuid-nouveau"))
            case_id = case.id
            assert case in session and not session.is_modified(case)
    finally:
        row_hooks._listeners.remove(listener)
    assert seen == [case_id] * 4
    with session_factory() as session:
        case = session.get(Case, case_id)
        assert (case.version, case.incident, case.ended_at, case.next_timer_at) == (1, None, None, None)
        assert session.scalar(select(HumanTask.name).where(HumanTask.case_id == case_id)) == "Relancer (modifié)"
    assert counts(session_factory, case_id) == (1, 1, 3)


def test_statements_per_command_on_postgresql(db_engine, session_factory):
    """Start: the version, the id, the save. Completion: the task and its case, the task row, the save."""
    if db_engine.dialect.name != "postgresql":
        pytest.skip("the one-statement save is PostgreSQL's")
    ctx = EngineContext(clock=SystemClock(), forms_dir=FIXTURES / "forms")  # no simulated clock to read
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    start(session_factory, ctx, "simple")  # this process has read the pathway's spec
    with database_work(db_engine) as seen:
        case_id = start(session_factory, ctx, "simple")
    [task] = open_tasks(session_factory, case_id)
    with database_work(db_engine) as done:
        complete(session_factory, ctx, task.id, {"note": "vu", "approved": True})
    assert (len(seen["statements"]), len(done["statements"])) == (3, 3)
    assert [t.bpmn_id for t in open_tasks(session_factory, case_id)] == ["second"]
