"""Tables of the engine: pathway versions, cases and their query-side projections.

A case row holds the SpiffWorkflow state serialized *without* its spec (the
spec is stored once per pathway version).  ``human_task``, ``timer`` and
``case_event`` are projections written in the same transaction as the state,
so that inboxes, schedulers and timelines never parse workflow JSON.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Base, BigId, UTCDateTime


class PathwayVersion(Base):
    """One immutable deployed version of a pathway (a BPMN process and its DMN/forms)."""

    __tablename__ = "pathway_version"
    __table_args__ = (
        UniqueConstraint("key", "version"),
        UniqueConstraint("key", "sha256"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(120), index=True)
    version: Mapped[int]
    name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    dmn_xml: Mapped[list[str]] = mapped_column(JSON, default=list)
    forms: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # {called process id: pathway_version.id}: call activities are bound at deploy.
    dependencies: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    # What the runtime needs without re-reading XML: user tasks, lanes, exits.
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    warnings: Mapped[list[dict]] = mapped_column(JSON, default=list)
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deployed_by: Mapped[str] = mapped_column(String(255))


class Case(Base):
    """One running (or finished) pathway instance."""

    __tablename__ = "case"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pathway_version_id: Mapped[int] = mapped_column(ForeignKey("pathway_version.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="active")  # active, closed, incident
    state: Mapped[str] = mapped_column(Text)
    serializer_version: Mapped[str] = mapped_column(String(10))
    # Earliest due time of the case's waiting timers: the scheduler's work queue.
    next_timer_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    incident: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(default=1)
    # The person and where they live (which structures serve them); empty for technical cases.
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    commune_insee: Mapped[str | None] = mapped_column(String(5))
    exit_reason: Mapped[str | None] = mapped_column(String(40))

    # Loaded on demand only: the runtime reads specs from the spec cache, not this row.
    pathway_version: Mapped[PathwayVersion] = relationship(lazy="select")

    __mapper_args__ = {"version_id_col": version}


class HumanTask(Base):
    """A BPMN user task as a référent's inbox sees it."""

    __tablename__ = "human_task"
    __table_args__ = (
        UniqueConstraint("case_id", "task_uuid"),
        Index("ix_human_task_assignee", "assignee", "state"),
        # Open tasks only (migration 0005; bench/queries.py, docs/operations.md): a structure's queue and
        # overdue board, the pilot's overdue board, the visibility and case-page look-ups by case.
        Index("ix_human_task_open_structure", "structure_id", "due_at", "id",
              postgresql_include=["case_id", "audience"], postgresql_where=text("state IN ('open', 'claimed')"),
              sqlite_where=text("state IN ('open', 'claimed')")),
        Index("ix_human_task_open_due", "due_at", "id",
              postgresql_where=text("state IN ('open', 'claimed')"),
              sqlite_where=text("state IN ('open', 'claimed')")),
        Index("ix_human_task_open_case", "case_id", "structure_id", "audience",
              postgresql_where=text("state IN ('open', 'claimed')"),
              sqlite_where=text("state IN ('open', 'claimed')")),
        # A référent's history (GET /tasks?scope=mine&status=completed).
        Index("ix_human_task_completed_by", "completed_by", "ended_at",
              postgresql_where=text("state = 'completed'"), sqlite_where=text("state = 'completed'")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"))  # indexed first by (case_id, task_uuid)
    task_uuid: Mapped[str] = mapped_column(String(36))
    bpmn_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    lane: Mapped[str | None] = mapped_column(String(255))
    form_key: Mapped[str | None] = mapped_column(String(120))
    state: Mapped[str] = mapped_column(String(12), default="open")  # open, claimed, completed, cancelled
    assignee: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by: Mapped[str | None] = mapped_column(String(255))
    escalation_level: Mapped[int] = mapped_column(default=0)
    # Which structure works it, and who among its people: référents, supervisors or the pilot.
    structure_id: Mapped[int | None] = mapped_column(ForeignKey("structure.id"), index=True)
    audience: Mapped[str] = mapped_column(String(12), default="referent", server_default="referent")
    # No structure of the lane's type covers the person's commune: the pilot's queue has it.
    unassigned: Mapped[bool] = mapped_column(default=False, server_default=false())
    version: Mapped[int] = mapped_column(default=1)
    # Read only where a query joins it (contains_eager): a task checked for access keeps its case at hand.
    case: Mapped[Case] = relationship(lazy="raise", viewonly=True)

    __mapper_args__ = {"version_id_col": version}


class Timer(Base):
    """A waiting BPMN timer of a case, with its due time."""

    __tablename__ = "timer"
    __table_args__ = (
        UniqueConstraint("case_id", "task_uuid"),  # also the index by case (the only way timer rows are read)
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"))
    task_uuid: Mapped[str] = mapped_column(String(36))
    bpmn_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(12))  # date, duration, cycle
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(12), default="waiting")  # waiting, fired, cancelled
    fired_count: Mapped[int] = mapped_column(default=0)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CaseEvent(Base):
    """Append-only timeline and audit trail of a case."""

    __tablename__ = "case_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(40))
    bpmn_id: Mapped[str | None] = mapped_column(String(255))
    task_uuid: Mapped[str | None] = mapped_column(String(36))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SimulatedClock(Base):
    """The single row holding simulated time when SPIE_SIMULATION=1."""

    __tablename__ = "simulated_clock"

    id: Mapped[int] = mapped_column(primary_key=True)
    now: Mapped[datetime] = mapped_column(UTCDateTime)


# Tables the ones above refer to by foreign key; importing them here registers them with Base.
from engine import access, accounts, admin_log, directory, offers, people, prescriptions  # noqa: E402,F401
