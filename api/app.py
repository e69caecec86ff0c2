"""Application factory."""
from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app
from sqlalchemy import event

from api.errors import register_error_handlers
from api.extensions import SpieApi, db
from engine.clock import DatabaseClock, SystemClock
from engine.context import EngineContext
from engine.paths import FORMS_DIR, PROJECT_ROOT
from engine.db import apply_sqlite_pragmas, make_session_factory
from web import init_web


_API_SETTINGS = {
    "API_TITLE": "SPIE pathways engine",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_REDOC_PATH": "/docs",
    "OPENAPI_REDOC_URL": "https://cdn.jsdelivr.net/npm/redoc@2.1.5/bundles/redoc.standalone.js",
    # A connection cut by a database restart is replaced instead of failing the next request.
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,  # a BPMN upload is bounded at 5 MB by the parser
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
}


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
    app.config.from_mapping(_API_SETTINGS)
    if config:
        app.config.from_mapping(config)
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", apply_sqlite_pragmas)
            db.engine.dispose()
    clock = DatabaseClock() if app.config["SPIE_SIMULATION"] else SystemClock()
    app.extensions["spie"] = EngineContext(clock=clock, forms_dir=Path(app.config["SPIE_FORMS_DIR"]))

    from api import health, v1
    from api.v1.common import CONVERTERS, NameConverter, name_param_schema

    app.register_blueprint(health.bp)
    app.url_map.converters.update(CONVERTERS)
    # One Api per app: its OpenAPI document describes this app (with or without the simulation endpoint).
    api = SpieApi()
    api.init_app(app)
    api.register_converter(NameConverter, name_param_schema)
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    api.spec.options["security"] = [{"bearer": []}]
    v1.register(api, simulation_mode=app.config["SPIE_SIMULATION"])
    register_error_handlers(app)
    init_web(app)
    return app


def engine_context() -> EngineContext:
    return current_app.extensions["spie"]


def session_factory():
    """A sessionmaker on the app's engine, for work outside a request (workers)."""
    return make_session_factory(db.engine)
