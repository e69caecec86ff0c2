"""APScheduler job that fires due timers inside ``spie serve``."""
from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from engine.db import make_session_factory
from engine.timers import fire_due_timers

log = logging.getLogger(__name__)


def start_timer_scheduler(app: Flask) -> BackgroundScheduler:
    with app.app_context():
        from api.extensions import db

        factory = make_session_factory(db.engine)
    ctx = app.extensions["spie"]

    def tick() -> None:
        try:
            fire_due_timers(factory, ctx)
        except Exception:  # noqa: BLE001 - rolled back; the next tick retries
            log.exception("timer batch failed")

    scheduler = BackgroundScheduler(timezone="UTC")
    # One run at a time: overlapping ticks would only contend for the same rows.
    scheduler.add_job(tick, "interval", seconds=app.config["SPIE_TIMER_INTERVAL"], max_instances=1, coalesce=True)
    scheduler.start()
    return scheduler
