"""The per-process cache of live workflows (engine.workflow_cache) never changes what a command does."""
from __future__ import annotations

import threading

import pytest
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from engine import cases, pathways, runtime
from engine.clock import DatabaseClock
from engine.consistency import check_database
from engine.context import EngineContext
from engine.db import transaction
from engine.errors import InvalidInput
from engine.models import Case, CaseEvent, HumanTask, Timer
from engine.workflow_cache import CachedWorkflow, WorkflowCache
from tests.conftest import FIXTURES, SIMULATION_START, fixture_bytes
from tests.helpers import complete, deploy_fixture, open_tasks, start, timeline


class Boom(Exception):
    pass


def other_process():
    """A second engine context on the same database: what another process would hold."""
    return EngineContext(clock=DatabaseClock(start=SIMULATION_START), forms_dir=FIXTURES / "forms")


def assert_consistent(session_factory, ctx) -> None:
    with session_factory() as session:
        report = check_database(session, ctx)
    assert report.ok, "\n".join(report.lines())


def test_the_next_command_takes_the_workflow_its_process_saved(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple")
    assert len(ctx.workflows) == 1
    [first] = open_tasks(session_factory, case_id)
    hits = ctx.workflows.hits
    complete(session_factory, ctx, first.id, {"note": "vu", "approved": True})
    assert ctx.workflows.hits == hits + 1
    [second] = open_tasks(session_factory, case_id)
    assert second.bpmn_id == "second"
    complete(session_factory, ctx, second.id, {"note": "fini"})
    assert ctx.workflows.hits == hits + 2
    assert len(ctx.workflows) == 0  # a closed case is not kept
    assert_consistent(session_factory, ctx)


def test_a_case_advanced_by_another_process_is_read_from_the_database(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple")  # this process keeps the case at its first version
    [first] = open_tasks(session_factory, case_id)
    other = other_process()
    complete(session_factory, other, first.id, {"note": "vu", "approved": True})  # the case moves on elsewhere

    [second] = open_tasks(session_factory, case_id)
    hits, misses = ctx.workflows.hits, ctx.workflows.misses
    case = complete(session_factory, ctx, second.id, {"note": "fini"})
    assert (ctx.workflows.hits, ctx.workflows.misses) == (hits, misses + 1)  # the stale entry was not used
    assert case.status == "closed"
    assert [e.kind for e in timeline(session_factory, case_id)].count("task_completed") == 2
    assert_consistent(session_factory, ctx)


def test_a_rolled_back_command_leaves_no_workflow_behind(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple")
    [first] = open_tasks(session_factory, case_id)
    with pytest.raises(Boom), session_factory() as session, transaction(session):
        cases.complete_task(session, ctx, first.id, {"note": "vu", "approved": True}, user="referent@test")
        raise Boom  # the caller fails after the command: its transaction rolls back
    assert len(ctx.workflows) == 0
    [still_open] = open_tasks(session_factory, case_id)
    assert still_open.id == first.id

    misses = ctx.workflows.misses
    complete(session_factory, ctx, first.id, {"note": "vu", "approved": True})
    assert ctx.workflows.misses == misses + 1
    assert [t.bpmn_id for t in open_tasks(session_factory, case_id)] == ["second"]
    assert [e.kind for e in timeline(session_factory, case_id)].count("task_completed") == 1
    assert_consistent(session_factory, ctx)


def test_a_session_used_again_after_a_rollback_does_not_keep_the_rolled_back_workflow(session_factory, ctx):
    """As a web request's session may: a command, a rollback, then a commit of other work."""
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple")
    [first] = open_tasks(session_factory, case_id)
    with session_factory() as session:
        cases.complete_task(session, ctx, first.id, {"note": "vu", "approved": True}, user="referent@test")
        session.rollback()
        session.get(Case, case_id)
        session.commit()
    assert len(ctx.workflows) == 0
    complete(session_factory, ctx, first.id, {"note": "vu", "approved": True})
    assert [t.bpmn_id for t in open_tasks(session_factory, case_id)] == ["second"]


def test_a_savepoint_rolled_back_keeps_nothing_either(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple")
    [first] = open_tasks(session_factory, case_id)
    with session_factory() as session, transaction(session):
        savepoint = session.begin_nested()
        cases.complete_task(session, ctx, first.id, {"note": "vu", "approved": True}, user="referent@test")
        savepoint.rollback()
    assert len(ctx.workflows) == 0
    assert [t.bpmn_id for t in open_tasks(session_factory, case_id)] == ["first"]
    complete(session_factory, ctx, first.id, {"note": "vu", "approved": True})
    assert [t.bpmn_id for t in open_tasks(session_factory, case_id)] == ["second"]


def test_a_refused_command_does_not_put_its_workflow_back(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple")
    [first] = open_tasks(session_factory, case_id)
    with pytest.raises(InvalidInput), session_factory() as session, transaction(session):
        cases.complete_task(session, ctx, first.id, {"unknown": 1}, user="referent@test")  # the form refuses it
    assert len(ctx.workflows) == 0
    complete(session_factory, ctx, first.id, {"note": "vu", "approved": True})
    assert [t.bpmn_id for t in open_tasks(session_factory, case_id)] == ["second"]


def test_a_reused_case_id_at_the_same_version_is_not_mistaken_for_the_cached_case(session_factory, ctx):
    """SQLite gives a deleted case's id to the next case: same id, same version, another workflow."""
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    deleted = start(session_factory, ctx, "simple")
    [kept] = ctx.workflows._items.values()
    with session_factory() as session, transaction(session):
        for model in (Timer, HumanTask, CaseEvent, Case):
            session.execute(delete(model))
    case_id = start(session_factory, other_process(), "simple")  # not through ctx, which keeps the deleted case
    with session_factory() as session:
        version = session.get(Case, case_id).version
        dialect = session.get_bind().dialect.name
    if dialect == "sqlite":  # the situation the stored-text check is for (PostgreSQL never reuses an id)
        assert (case_id, version) == (deleted, kept.version)
    [first] = open_tasks(session_factory, case_id)
    hits = ctx.workflows.hits
    complete(session_factory, ctx, first.id, {"note": "vu", "approved": True})
    assert ctx.workflows.hits == hits
    assert [t.bpmn_id for t in open_tasks(session_factory, case_id)] == ["second"]
    assert_consistent(session_factory, ctx)


def test_a_case_in_incident_is_not_kept(session_factory, ctx):
    xml = fixture_bytes("engine/scripted.bpmn").replace(b"SCRIPT", b"ratio = total / divisor")
    with session_factory() as session, transaction(session):
        pathways.deploy(session, ctx, xml, deployed_by="designer")
    case_id = start(session_factory, ctx, "scripted", {"total": 10, "divisor": 0})
    with session_factory() as session:
        assert session.get(Case, case_id).status == "incident"
    assert len(ctx.workflows) == 0
    with session_factory() as session, transaction(session):
        cases.retry_incident(session, ctx, case_id, actor="admin", data={"divisor": 4})
    assert len(ctx.workflows) == 1
    assert [t.bpmn_id for t in open_tasks(session_factory, case_id)] == ["check"]


def test_hits_and_misses_give_the_same_rows_and_timeline(session_factory, ctx):
    """One case through the cache, one with the cache off: the same projections and events."""
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    uncached = other_process()
    uncached.workflows = WorkflowCache(capacity=0)

    def run(context) -> tuple[list, list]:
        case_id = start(session_factory, context, "simple")
        [first] = open_tasks(session_factory, case_id)
        complete(session_factory, context, first.id, {"note": "vu", "approved": True})
        with session_factory() as session:
            rows = session.execute(select(HumanTask.bpmn_id, HumanTask.state, HumanTask.due_at)
                                   .where(HumanTask.case_id == case_id).order_by(HumanTask.id)).all()
            rows += session.execute(select(Timer.bpmn_id, Timer.state, Timer.due_at)
                                    .where(Timer.case_id == case_id).order_by(Timer.id)).all()
        events = [(e.kind, e.bpmn_id, e.summary) for e in timeline(session_factory, case_id)]
        return rows, events

    assert run(ctx) == run(uncached)
    assert uncached.workflows.hits == 0 and ctx.workflows.hits >= 1


def test_start_leaves_unset_columns_null(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple")
    with session_factory() as session:
        assert session.scalar(select(func.count()).where(Case.id == case_id, Case.incident.is_(None),
                                                          Case.ended_at.is_(None))) == 1


def test_the_cache_is_bounded_and_gives_an_entry_once():
    cache = WorkflowCache(capacity=2)
    for case_id in (1, 2, 3):
        cache._put(case_id, CachedWorkflow(2, f"state {case_id}", object(), None))
    assert len(cache) == 2 and cache.take(1, 2, "state 1") is None  # the oldest went first
    assert cache.take(3, 2, "another text") is None and cache.take(3, 2, "state 3") is None  # dropped on mismatch

    entry = CachedWorkflow(5, "state 9", object(), None)
    cache._put(9, entry)
    taken = []
    barrier = threading.Barrier(8)

    def take():
        barrier.wait()
        taken.append(cache.take(9, 5, "state 9"))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [t for t in taken if t is not None] == [entry]
    session = Session()
    WorkflowCache(capacity=0).keep_on_commit(session, 1, entry)
    assert session.info == {}


def read(session_factory, ctx, case_id: int) -> list[str]:
    """What a task page does with the workflow: read it, change nothing."""
    with session_factory() as session, runtime.reading(session, ctx, case_id) as loaded:
        return sorted(t.task_spec.bpmn_id for t in loaded.workflow.get_tasks(state=TaskState.READY))


def test_a_page_read_between_two_commands_gives_the_workflow_back(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple")
    [first] = open_tasks(session_factory, case_id)
    hits, misses = ctx.workflows.hits, ctx.workflows.misses
    assert read(session_factory, ctx, case_id) == ["first"]
    assert read(session_factory, ctx, case_id) == ["first"]
    complete(session_factory, ctx, first.id, {"note": "vu", "approved": True})
    assert (ctx.workflows.hits, ctx.workflows.misses) == (hits + 3, misses)

    ctx.workflows.clear()  # another process saved it, or this one restarted: the read parses it and keeps it
    [second] = open_tasks(session_factory, case_id)
    assert read(session_factory, ctx, case_id) == ["second"]
    complete(session_factory, ctx, second.id, {"note": "fini"})
    assert (ctx.workflows.hits, ctx.workflows.misses) == (hits + 4, misses + 1)
    assert read(session_factory, ctx, case_id) == [] and len(ctx.workflows) == 0  # closed: not kept
    assert_consistent(session_factory, ctx)


def test_a_read_that_fails_keeps_nothing_and_a_newer_save_wins(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple")
    with pytest.raises(Boom), session_factory() as session, runtime.reading(session, ctx, case_id):
        raise Boom
    assert len(ctx.workflows) == 0

    [first] = open_tasks(session_factory, case_id)
    with session_factory() as session, runtime.reading(session, ctx, case_id) as stale:
        complete(session_factory, ctx, first.id, {"note": "vu", "approved": True})  # saved while the page reads
        kept = ctx.workflows._items[case_id]
    assert ctx.workflows._items[case_id] is kept and kept.workflow is not stale.workflow
    [second] = open_tasks(session_factory, case_id)
    assert complete(session_factory, ctx, second.id, {"note": "fini"}).status == "closed"
    assert_consistent(session_factory, ctx)

