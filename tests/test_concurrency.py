"""Two threads, then two processes, complete the same task at once: one wins, one gets a conflict."""
from __future__ import annotations

import multiprocessing
import threading

from sqlalchemy import func, select

from engine.errors import Conflict
from engine.models import CaseEvent, HumanTask
from tests import concurrency_children
from tests.helpers import complete, deploy_fixture, open_tasks, start


def _assert_exactly_one_completion(session_factory, case_id):
    with session_factory() as session:
        completed = session.scalar(
            select(func.count()).select_from(CaseEvent).where(
                CaseEvent.case_id == case_id, CaseEvent.kind == "task_completed"
            )
        )
        second = session.scalars(
            select(HumanTask).where(HumanTask.case_id == case_id, HumanTask.bpmn_id == "second")
        ).all()
    assert completed == 1
    assert len(second) == 1  # the next task was created once, not twice


def test_two_threads_complete_the_same_task(session_factory, ctx):
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple")
    [task] = open_tasks(session_factory, case_id)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def worker(user: str) -> None:
        barrier.wait()
        try:
            complete(session_factory, ctx, task.id, {"note": user, "approved": True}, user=user)
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=worker, args=(u,)) for u in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["conflict", "ok"]
    _assert_exactly_one_completion(session_factory, case_id)


def test_two_processes_complete_the_same_task(session_factory, ctx, database_url):
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple")
    [task] = open_tasks(session_factory, case_id)
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(2), spawn.Queue()
    processes = [
        spawn.Process(target=concurrency_children.complete_task, args=(database_url, task.id, user, barrier, results))
        for user in ("alice", "bob")
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    outcomes = sorted(results.get(timeout=5) for _ in processes)
    assert outcomes == ["conflict", "ok"]
    _assert_exactly_one_completion(session_factory, case_id)
