"""`spie worker` processes: exactly-once firing with two workers, and after a SIGKILL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from engine import cases
from engine.db import transaction
from engine.models import Case, CaseEvent, HumanTask, Timer
from tests.helpers import deploy_fixture

pytestmark = pytest.mark.slow

CASES = 1000


def _start_many(session_factory, ctx, count: int) -> None:
    deploy_fixture(session_factory, ctx, "timers.bpmn")
    far = "2099-01-01T00:00:00+00:00"
    with session_factory() as session, transaction(session):
        for _ in range(count):
            cases.start_case(session, ctx, "timers", data={"reminders": 0, "appointment_at": far}, actor="load")


def _spawn_worker(database_url: str, tmp_path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "SPIE_INSTANCE_PATH": str(tmp_path)}
    env.pop("SPIE_SIMULATION", None)  # real time: every timer of the simulated January is overdue
    code = "from api.cli import main; main()"
    log = open(tmp_path / f"worker-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-c", code, "worker", "--interval", "0.1"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def _fired(session_factory) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.kind == "timer_fired"))


def _wait_until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def _assert_each_fired_once(session_factory) -> None:
    with session_factory() as session:
        per_case = dict(session.execute(
            select(CaseEvent.case_id, func.count()).where(CaseEvent.kind == "timer_fired").group_by(CaseEvent.case_id)
        ).all())
        tasks = dict(session.execute(
            select(HumanTask.case_id, func.count()).where(HumanTask.bpmn_id == "work").group_by(HumanTask.case_id)
        ).all())
        timers = session.execute(select(Timer.state, Timer.fired_count).where(Timer.bpmn_id == "wait")).all()
        statuses = set(session.scalars(select(Case.status)))
    assert len(per_case) == CASES and set(per_case.values()) == {1}
    assert len(tasks) == CASES and set(tasks.values()) == {1}
    assert set(timers) == {("fired", 1)} and len(timers) == CASES
    assert statuses == {"active"}


def _stop(workers) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        worker.wait(30)


def test_two_workers_fire_each_timer_once(session_factory, ctx, database_url, tmp_path):
    _start_many(session_factory, ctx, CASES)
    workers = [_spawn_worker(database_url, tmp_path) for _ in range(2)]
    try:
        _wait_until(lambda: _fired(session_factory) >= CASES, 180)
        time.sleep(1)  # let a double fire, if there were one, land
    finally:
        _stop(workers)
    _assert_each_fired_once(session_factory)


def test_killed_worker_loses_nothing(session_factory, ctx, database_url, tmp_path):
    _start_many(session_factory, ctx, CASES)
    victim, survivor = _spawn_worker(database_url, tmp_path), None
    try:
        _wait_until(lambda: _fired(session_factory) >= 100, 120)
        victim.send_signal(signal.SIGKILL)  # in the middle of a batch
        victim.wait(10)
        assert _fired(session_factory) < CASES
        survivor = _spawn_worker(database_url, tmp_path)
        _wait_until(lambda: _fired(session_factory) >= CASES, 180)
        time.sleep(1)
    finally:
        _stop([w for w in (victim, survivor) if w is not None])
    _assert_each_fired_once(session_factory)
