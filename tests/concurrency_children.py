"""Code run in child processes by the concurrency tests (must be importable)."""
from __future__ import annotations

from engine import cases
from engine.clock import DatabaseClock
from engine.context import EngineContext
from engine.db import make_engine, make_session_factory, transaction
from engine.errors import Conflict
from tests.conftest import FIXTURES, SIMULATION_START


def complete_task(database_url: str, task_id: int, user: str, barrier, results) -> None:
    engine = make_engine(database_url)
    session_factory = make_session_factory(engine)
    ctx = EngineContext(clock=DatabaseClock(start=SIMULATION_START), forms_dir=FIXTURES / "forms")
    barrier.wait()
    try:
        with session_factory() as session, transaction(session):
            cases.complete_task(session, ctx, task_id, {"note": user, "approved": True}, user=user)
        results.put("ok")
    except Conflict:
        results.put("conflict")
    finally:
        engine.dispose()
