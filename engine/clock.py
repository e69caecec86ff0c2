"""One injectable clock for the whole engine, and SpiffWorkflow's view of it.

SpiffWorkflow's timer module reads ``datetime.now(timezone.utc)`` directly.  We
replace the ``datetime`` name in that module with a subclass whose ``now()``
returns the time set by :func:`workflow_time` for the current thread (a
context variable), so timers are computed and fired against the engine's
clock: real time in production, the stored simulated time in simulation mode.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from typing import Protocol

from sqlalchemy.orm import Session

from engine.models import SimulatedClock

_workflow_now: ContextVar[datetime | None] = ContextVar("spie_workflow_now", default=None)


class Clock(Protocol):
    simulated: bool

    def now(self, session: Session) -> datetime: ...


class SystemClock:
    simulated = False

    def now(self, session: Session | None = None) -> datetime:
        return datetime.now(timezone.utc)


class DatabaseClock:
    """Simulated time stored in the database; it moves only when advanced."""

    simulated = True

    def __init__(self, start: datetime | None = None):
        self.start = start or datetime.now(timezone.utc).replace(microsecond=0)

    def now(self, session: Session) -> datetime:
        row = session.get(SimulatedClock, 1)
        if row is None:
            row = SimulatedClock(id=1, now=self.start)
            session.add(row)
            session.flush()
        return row.now

    def set(self, session: Session, value: datetime) -> None:
        row = session.get(SimulatedClock, 1, with_for_update=True)
        if row is None:
            session.add(SimulatedClock(id=1, now=value))
        elif value < row.now:
            raise ValueError("simulated time cannot go backwards")
        else:
            row.now = value
        session.flush()


class _EngineDatetime(datetime):
    """``datetime`` whose ``now()`` honours :func:`workflow_time`."""

    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        current = _workflow_now.get()
        if current is None:
            return datetime.now(tz)
        return current.astimezone(tz) if tz is not None else current.astimezone().replace(tzinfo=None)


@contextmanager
def workflow_time(now: datetime) -> Iterator[None]:
    """Run SpiffWorkflow code as if the current time were ``now``."""
    token = _workflow_now.set(now)
    try:
        yield
    finally:
        _workflow_now.reset(token)


def install_spiff_clock() -> None:
    """Point SpiffWorkflow's timer module at the engine clock (idempotent)."""
    from SpiffWorkflow.bpmn.specs.event_definitions import timer

    timer.datetime = _EngineDatetime


# Spiff compares due times with a strict "<": a timer due at t fires at t + 1 µs.
FIRING_EPSILON = timedelta(microseconds=1)
