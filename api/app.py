"""Application factory."""
from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app
from sqlalchemy import event

from api.extensions import db
from engine.clock import DatabaseClock, SystemClock
from engine.context import EngineContext
from engine.paths import FORMS_DIR, PROJECT_ROOT
from engine.db import apply_sqlite_pragmas, make_session_factory


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_path=os.environ.get("SPIE_INSTANCE_PATH") or str(PROJECT_ROOT / "instance"))
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(
        SECRET_KEY=os.environ.get("SPIE_SECRET_KEY", "dev-only-change-me"),
        SQLALCHEMY_DATABASE_URI=os.environ.get("DATABASE_URL")
        or f"sqlite:///{os.path.join(app.instance_path, 'spie.sqlite3')}",
        SPIE_SIMULATION=os.environ.get("SPIE_SIMULATION") == "1",
        SPIE_TIMER_INTERVAL=float(os.environ.get("SPIE_TIMER_INTERVAL", "5")),
        SPIE_FORMS_DIR=os.environ.get("SPIE_FORMS_DIR") or str(FORMS_DIR),
    )
    if config:
        app.config.from_mapping(config)
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", apply_sqlite_pragmas)
            db.engine.dispose()
    clock = DatabaseClock() if app.config["SPIE_SIMULATION"] else SystemClock()
    app.extensions["spie"] = EngineContext(clock=clock, forms_dir=Path(app.config["SPIE_FORMS_DIR"]))

    from api import health

    app.register_blueprint(health.bp)
    return app


def engine_context() -> EngineContext:
    return current_app.extensions["spie"]


def session_factory():
    """A sessionmaker on the app's engine, for work outside a request (workers)."""
    return make_session_factory(db.engine)
