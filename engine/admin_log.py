"""The administration log: who changed which account or the directory, when, and what changed.

Case reads and writes go to :class:`engine.access.AccessLog`; changes made by
administrators (accounts created, deactivated, given another role or
structure, passwords reset, directory imports) go here, append-only. ``detail``
holds the values before and after, never a password.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship
from sqlalchemy.sql import Select

from engine.db import Base, BigId, UTCDateTime
from engine.directory import User

ACTIONS = ("user_created", "user_updated", "user_deactivated", "user_reactivated", "password_reset",
           "directory_imported")


class AdminEvent(Base):
    __tablename__ = "admin_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # None: the command line (spie create-admin, spie directory import).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), index=True)
    action: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id], lazy="joined")
    user: Mapped[User | None] = relationship(foreign_keys=[user_id], lazy="joined")


def record(session: Session, *, actor: User | None, action: str, at: datetime, user: User | None = None,
           detail: dict[str, Any] | None = None) -> AdminEvent:
    if action not in ACTIONS:
        raise ValueError(f"unknown administration action {action!r}")
    event = AdminEvent(at=at, actor_id=actor.id if actor else None, action=action,
                       user_id=user.id if user else None, detail=detail or {})
    session.add(event)
    return event


def events_query(*, user_id: int | None = None) -> Select:
    """The log, newest first; with ``user_id``, the events about that account or made by it."""
    query = select(AdminEvent).order_by(AdminEvent.at.desc(), AdminEvent.id.desc())
    if user_id is not None:
        query = query.where((AdminEvent.user_id == user_id) | (AdminEvent.actor_id == user_id))
    return query
