"""Helpers shared by the v1 views: pagination, access logging, the engine context."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.sql import Select

from api.auth import client_address, now_utc
from api.extensions import db
from engine import access
from engine.context import EngineContext
from engine.directory import User


def engine_context() -> EngineContext:
    return current_app.extensions["spie"]


def paginate(query: Select, args: dict) -> tuple[list, dict]:
    """One page of ``query`` and the ``X-Total-Count`` header."""
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    page, per_page = args["page"], args["per_page"]
    items = list(db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)))
    return items, {"X-Total-Count": str(total)}


def log_access(user: User | None, case_id: int | None, action: str, outcome: str = "allowed",
               detail: str | None = None) -> None:
    access.record(db.session, user=user, case_id=case_id, action=action, outcome=outcome, at=now_utc(),
                  address=client_address(), detail=detail)
