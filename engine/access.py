"""Who may see and act on what, and the access log (RGPD art. 9 data).

A case is visible to the users of the structures on its active care team, to
users of a structure holding an open task on it (référents for référent
tasks, supervisors for escalations, the pilot for its escalations), and to the
supervisors of those structures. A case with a sensitive structure (addiction
care, justice) on its care team is visible to its care team only. Nobody
else; a refusal looks like "not found". Every read and write is logged.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, ForeignKey, Index, String, and_, bindparam, exists, false, or_, select
from sqlalchemy.orm import Mapped, Session, aliased, contains_eager, defer, mapped_column
from sqlalchemy.sql import Select

from engine.db import BigId, Base, UTCDateTime
from engine.directory import Structure, User
from engine.errors import NotFound
from engine.models import Case, HumanTask
from engine.people import CareTeamMember

CASE_ROLES = ("referent", "supervisor")
OPEN = ("open", "claimed")


class AccessLog(Base):
    """Append-only record of every read and write of a case (who, when, what, from where)."""

    __tablename__ = "access_log"
    __table_args__ = (Index("ix_access_log_case_at", "case_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(BigId, index=True)
    action: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(12))  # allowed, denied
    address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(255))


def record(session: Session, *, user: User | None, case_ids: list[int | None], action: str, outcome: str,
           at: datetime, address: str | None = None, detail: str | None = None) -> None:
    """Append one access per case, in one statement (a list of cases is one read of each)."""
    session.execute(_INSERT_ACCESS, [
        {"at": at, "user_id": user.id if user else None, "case_id": case_id, "action": action, "outcome": outcome,
         "address": address, "detail": detail} for case_id in case_ids])


def visible_cases(user: User) -> Select:
    """SELECT of the cases ``user`` may see (use as a filter or a subquery)."""
    query = select(Case)
    if not _works_cases(user):
        return query.where(False)
    return query.where(_visible(user.structure_id, audiences(user)))


def case_for(session: Session, user: User, case_id: int) -> Case:
    """The case if ``user`` may see it; otherwise NotFound, exactly as if it did not exist."""
    case = session.scalar(_CASE_IF_VISIBLE, {"case_id": case_id, **_viewer(user)}) if _works_cases(user) else None
    if case is None:
        raise NotFound(f"case {case_id} does not exist")
    return case


def task_and_visibility(session: Session, user: User, task_id: int, *,
                        with_state: bool = False) -> tuple[HumanTask | None, bool]:
    """The task (None when there is none) and whether ``user`` may see its case, in one query.

    The case comes with it (``task.case``); ``with_state`` for a completion or a read of the
    task's form, which run or read the workflow: its state then comes in the same query.
    """
    statement = _TASK_AND_VISIBILITY if with_state else _TASK_AND_VISIBILITY_NO_STATE
    found = session.execute(statement, {"task_id": task_id, **_viewer(user)}).first()
    if found is None:
        return None, False
    return found[0], bool(found[1]) and _works_cases(user)


def queue(user: User) -> ColumnElement[bool]:
    """Condition on ``HumanTask``: the open tasks of ``user``'s structure that ``user`` works, of visible cases.

    The rule of :func:`visible_cases`, simplified for these rows: such a task is itself the open task that
    makes its case visible to the structure, so only the sensitive clause is left to test: hidden when a
    sensitive structure is on the care team and the user's structure is not. Written as one ``NOT EXISTS``
    (an anti-join against the few members of sensitive structures) rather than three ``EXISTS`` per case of
    the queue: see docs/operations.md, "Indexes and query plans".
    """
    if not _works_cases(user):
        return false()
    hidden = exists().where(CareTeamMember.case_id == HumanTask.case_id, CareTeamMember.ended_at.is_(None),
                            CareTeamMember.structure_id == Structure.id, Structure.sensitive.is_(True),
                            ~_on_team(user.structure_id, CareTeamMember.case_id))
    return and_(HumanTask.structure_id == user.structure_id, HumanTask.state.in_(OPEN),
                HumanTask.audience.in_(audiences(user)), ~hidden)


def audiences(user: User) -> tuple[str, ...]:
    """Whose open tasks a user's structure holds for them: référents work référent tasks, supervisors all."""
    return ("referent",) if user.role == "referent" else ("referent", "supervisor", "pilot")


def _works_cases(user: User) -> bool:
    return user.role in CASE_ROLES and user.structure_id is not None


# Made once: the first use of a new alias's columns costs more than the rest of the rule together.
_TEAM_MEMBER = aliased(CareTeamMember, name="viewer_team_member")
_HELD_TASK = aliased(HumanTask, name="viewer_held_task")  # not correlated with a query's own human_task


def _visible(structure_id, task_audiences) -> ColumnElement[bool]:
    """The rule of :func:`visible_cases`, on ``Case``, for a viewer of this structure working these audiences."""
    holds_task = exists().where(_HELD_TASK.case_id == Case.id, _HELD_TASK.structure_id == structure_id,
                                _HELD_TASK.state.in_(OPEN), _HELD_TASK.audience.in_(task_audiences))
    return or_(_on_team(structure_id, Case.id), and_(holds_task, ~_sensitive_team(Case.id)))


def _on_team(structure_id, case_id) -> ColumnElement[bool]:
    return exists().where(_TEAM_MEMBER.case_id == case_id, _TEAM_MEMBER.ended_at.is_(None),
                          _TEAM_MEMBER.structure_id == structure_id)


def _sensitive_team(case_id) -> ColumnElement[bool]:
    return exists().where(CareTeamMember.case_id == case_id, CareTeamMember.ended_at.is_(None),
                          CareTeamMember.structure_id == Structure.id, Structure.sensitive.is_(True))


def may_work_task(user: User, task: HumanTask) -> bool:
    """Référents work référent tasks of their structure; supervisors also escalations and reassignments."""
    if user.role not in CASE_ROLES or task.structure_id != user.structure_id:
        return False
    return task.audience == "referent" or user.role == "supervisor"


# Core, not the ORM: nothing reads these rows back in the request, and a flush would ask each id back.
_INSERT_ACCESS = AccessLog.__table__.insert()


def _viewer(user: User) -> dict:
    return {"viewer_structure_id": user.structure_id, "viewer_audiences": list(audiences(user))}


# The rule for one case or one task, the viewer bound at execution: built once, as every request asks it
# (building the rule's expression costs more than running the query).
_VIEWER_RULE = _visible(bindparam("viewer_structure_id"), bindparam("viewer_audiences", expanding=True))
_CASE_IF_VISIBLE = select(Case).options(defer(Case.state)).where(Case.id == bindparam("case_id"), _VIEWER_RULE)
_TASK_AND_VISIBILITY = (select(HumanTask, _VIEWER_RULE.label("visible")).join(HumanTask.case)
                        .options(contains_eager(HumanTask.case)).where(HumanTask.id == bindparam("task_id")))
_TASK_AND_VISIBILITY_NO_STATE = _TASK_AND_VISIBILITY.options(contains_eager(HumanTask.case).defer(Case.state))
