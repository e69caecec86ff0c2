"""Simulated time: advance the stored clock, firing timers in due order at their own time."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FIRING_EPSILON, DatabaseClock
from engine.context import EngineContext
from engine.db import transaction
from engine.errors import NotFound
from engine.models import Case
from engine.timers import fire_due_timers
from engine.timeutil import add_iso_duration


@dataclass
class AdvanceResult:
    started_at: datetime
    now: datetime
    firings: int  # case visits that fired timers, one per due moment and case


def advance(session_factory: sessionmaker[Session], ctx: EngineContext, duration: str) -> AdvanceResult:
    """Move simulated time forward by an ISO 8601 duration.

    Each due timer fires with the clock set to its own due time, so what it
    starts (new timers, task due dates) is dated as if time had really passed.
    """
    clock = ctx.clock
    if not isinstance(clock, DatabaseClock):
        raise NotFound("the clock can only be advanced in simulation mode (SPIE_SIMULATION=1)")
    with session_factory() as session, transaction(session):
        start = clock.now(session)
        target = add_iso_duration(start, duration)
    fired, previous = 0, None
    while True:
        with session_factory() as session, transaction(session):
            next_due = session.scalar(select(func.min(Case.next_timer_at)))
            current = clock.now(session)
            if next_due is None or next_due > target:
                clock.set(session, max(target, current))
                break
            if next_due == previous:
                raise RuntimeError(f"a timer due at {next_due.isoformat()} does not fire; run `spie check`")
            moment = max(next_due + FIRING_EPSILON, current)
            clock.set(session, moment)
        fired += fire_due_timers(session_factory, ctx, moment)
        previous = next_due
    with session_factory() as session:
        return AdvanceResult(start, clock.now(session), fired)
