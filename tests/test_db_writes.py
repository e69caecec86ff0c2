"""engine.db.write_versioned and insert_now write a row as the ORM's flush would, in one statement."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from engine.db import insert_now, transaction, write_versioned
from engine.errors import Conflict
from engine.models import Case, HumanTask
from tests.conftest import SIMULATION_START
from tests.helpers import deploy_fixture, open_tasks, start


@pytest.fixture
def task_id(session_factory, ctx) -> int:
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    [task] = open_tasks(session_factory, start(session_factory, ctx, "simple"))
    return task.id


def test_the_row_gets_the_values_and_the_pending_changes_and_a_new_version(session_factory, task_id):
    with session_factory() as session, transaction(session):
        row = session.get(HumanTask, task_id)
        version = row.version
        row.escalation_level = 2  # changed through the ORM before
        write_versioned(session, row, state="claimed", assignee="alice")
        assert (row.state, row.assignee, row.version) == ("claimed", "alice", version + 1)
        assert not session.is_modified(row)  # nothing left for a flush to write
    with session_factory() as session:
        row = session.get(HumanTask, task_id)
        assert (row.state, row.assignee, row.escalation_level, row.version) == ("claimed", "alice", 2, version + 1)


def test_a_row_changed_by_someone_else_is_a_conflict(session_factory, task_id):
    with session_factory() as session:
        row = session.get(HumanTask, task_id)
        with session_factory() as other, transaction(other):
            other.execute(update(HumanTask).where(HumanTask.id == task_id).values(version=HumanTask.version + 1))
        with pytest.raises(Conflict, match=f"human_task {task_id} was changed by someone else"):
            write_versioned(session, row, state="claimed", assignee="alice")


def test_a_changed_relationship_goes_through_the_orm(session_factory, ctx, task_id):
    with session_factory() as session, transaction(session):
        row = session.get(HumanTask, task_id)
        case = session.get(Case, row.case_id)
        version = case.version
        case.pathway_version = case.pathway_version  # a relationship set: not a column
        write_versioned(session, case, exit_reason="emploi")
        assert case.version == version + 1
    with session_factory() as session:
        assert session.get(Case, row.case_id).exit_reason == "emploi"


def test_insert_now_sends_what_was_set_and_leaves_the_rest_null(session_factory, ctx, task_id):
    with session_factory() as session, transaction(session):
        existing = session.get(HumanTask, task_id)
        case = Case(pathway_version_id=session.get(Case, existing.case_id).pathway_version_id, state="{}",
                    serializer_version="1.5", created_at=SIMULATION_START, updated_at=SIMULATION_START,
                    created_by="test")
        insert_now(session, case)
        assert case.id is not None and (case.status, case.version, case.incident) == ("active", 1, None)
        assert case in session and not session.dirty and not session.new
        case.updated_at = SIMULATION_START + timedelta(days=1)  # from here on, an ordinary versioned ORM object
    with session_factory() as session:
        stored = session.get(Case, case.id)
        assert (stored.status, stored.version, stored.updated_at) == ("active", 2, SIMULATION_START + timedelta(days=1))
        assert session.scalar(select(func.count()).where(Case.id == case.id, Case.incident.is_(None))) == 1


def test_a_deadlock_is_a_conflict_and_writes_nothing(db_engine, session_factory, task_id):
    """Two transactions each holding a row the other wants: PostgreSQL aborts one, which the caller sees as a
    conflict to try again; the other goes through."""
    if db_engine.dialect.name != "postgresql":
        pytest.skip("SQLite locks the whole database: no deadlock between rows")
    with session_factory() as session:
        case_id = session.get(HumanTask, task_id).case_id
    both_hold = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def work(name: str, first, second) -> None:
        try:
            with session_factory() as session, transaction(session):
                session.execute(first)
                both_hold.wait(timeout=10)
                session.execute(second)
            outcomes[name] = "committed"
        except Conflict as exc:
            outcomes[name] = exc

    touch_task = update(HumanTask).where(HumanTask.id == task_id).values(escalation_level=HumanTask.escalation_level + 1)
    touch_case = update(Case).where(Case.id == case_id).values(exit_reason="emploi")
    threads = [threading.Thread(target=work, args=("task first", touch_task, touch_case)),
               threading.Thread(target=work, args=("case first", touch_case, touch_task))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(str(v) if isinstance(v, str) else "conflict" for v in outcomes.values()) == ["committed", "conflict"]
    [conflict] = [v for v in outcomes.values() if isinstance(v, Conflict)]
    assert "try again" in str(conflict)
    with session_factory() as session:
        assert session.get(HumanTask, task_id).escalation_level == 1  # once: the aborted transaction wrote nothing
