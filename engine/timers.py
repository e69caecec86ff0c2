"""Firing due timers, exactly once, with any number of workers.

The work queue is ``case.next_timer_at``.  A worker claims a batch of due
cases with ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL), so two workers
never hold the same case; for each case it loads the workflow, lets
SpiffWorkflow fire what is due (``refresh_timers`` + engine steps), and saves
state, projections and timeline in the same transaction as the claim.  A
worker that dies mid-batch loses nothing: its transaction rolls back and the
rows are claimed again.  On SQLite there is one writer at a time, so one
worker runs.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine import runtime
from engine.context import EngineContext
from engine.db import supports_skip_locked, transaction
from engine.models import Case

log = logging.getLogger(__name__)

TIMER_ACTOR = "system:timer"


def fire_due_timers(
    session_factory: sessionmaker[Session], ctx: EngineContext, now: datetime | None = None, *, batch: int = 50
) -> int:
    """Fire every timer due at ``now`` (default: the clock's now); return cases processed."""
    processed: set[int] = set()
    while True:
        with session_factory() as session, transaction(session):
            moment = now or ctx.clock.now(session)
            case_ids = _claim_due_cases(session, moment, batch, exclude=processed)
            for case_id in case_ids:
                fire_case_timers(session, ctx, case_id, moment)
        processed.update(case_ids)
        if len(case_ids) < batch:
            return len(processed)


def fire_case_timers(session: Session, ctx: EngineContext, case_id: int, now: datetime) -> None:
    loaded = runtime.load_case(session, ctx, case_id)
    runtime.settle(loaded, now, actor=TIMER_ACTOR)
    runtime.save(session, ctx, loaded, now, TIMER_ACTOR)


def _claim_due_cases(session: Session, now: datetime, batch: int, exclude: set[int]) -> list[int]:
    query = select(Case.id).where(Case.next_timer_at <= now).order_by(Case.next_timer_at).limit(batch)
    if exclude:
        # A case whose timer did not move (it opened an incident, say) is not retried in this run.
        query = query.where(Case.id.not_in(exclude))
    if supports_skip_locked(session):
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))
