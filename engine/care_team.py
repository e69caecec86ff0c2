"""The care team (groupe de suivi) and the hand-off invariant.

The engine enforces, whatever a diagram says: an active case keeps at least
one active référent, and a structure's exit (``spie:exit``) completes only
when a référent of the receiving structure is active on the case and the
joint meeting (rendez-vous tripartite) was recorded after they joined — or
when the exit is positive (employment, training...) or a move away.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.directory import User
from engine.errors import Conflict
from engine.models import CaseEvent
from engine.people import EXITS_WITHOUT_HAND_OFF, CareTeamMember

JOINT_MEETING = "joint_meeting_recorded"


def active_members(session: Session, case_id: int) -> list[CareTeamMember]:
    query = (
        select(CareTeamMember)
        .where(CareTeamMember.case_id == case_id, CareTeamMember.ended_at.is_(None))
        .order_by(CareTeamMember.started_at, CareTeamMember.id)
    )
    return list(session.scalars(query))


def join(session: Session, case_id: int, user: User, now: datetime, actor: str) -> CareTeamMember:
    """Make ``user`` an active référent of the case for their structure (idempotent)."""
    for member in active_members(session, case_id):
        if member.user_id == user.id and member.structure_id == user.structure_id:
            return member
    member = CareTeamMember(case_id=case_id, structure_id=user.structure_id, user_id=user.id, role="referent",
                            started_at=now)
    session.add(member)
    session.add(CaseEvent(case_id=case_id, at=now, actor=actor, kind="referent_joined",
                          summary={"user": user.email, "structure_id": user.structure_id}))
    return member


def leave_structure(session: Session, case_id: int, structure_id: int | None, now: datetime, reason: str,
                    actor: str) -> list[CareTeamMember]:
    """End the accompaniment of one structure (or of all, with ``None``)."""
    ended = [m for m in active_members(session, case_id) if structure_id is None or m.structure_id == structure_id]
    for member in ended:
        member.ended_at, member.end_reason = now, reason
        session.add(CaseEvent(case_id=case_id, at=now, actor=actor, kind="referent_left",
                              summary={"user": member.user.email if member.user else None,
                                       "structure_id": member.structure_id, "reason": reason}))
    return ended


def record_joint_meeting(session: Session, case_id: int, now: datetime, actor: str, data: dict) -> bool:
    """Record the tripartite meeting when the person and both référents attended."""
    attended = all(data.get(k) is True for k in
                   ("presence_personne", "presence_referent_origine", "presence_referent_accueil"))
    session.add(CaseEvent(case_id=case_id, at=now, actor=actor,
                          kind=JOINT_MEETING if attended else "joint_meeting_incomplete",
                          summary={"date": data.get("date_rendez_vous")}))
    return attended


def check_exit(session: Session, case_id: int, sending_structure_id: int | None, receiving_type: str | None,
               exit_reason: str | None) -> None:
    """Refuse an exit that would leave a gap in the accompaniment; say what is missing."""
    if exit_reason in EXITS_WITHOUT_HAND_OFF:
        return
    receivers = [
        m for m in active_members(session, case_id)
        if m.user_id is not None and m.structure_id != sending_structure_id
        and (not receiving_type or m.structure.type in receiving_type.split("|"))
    ]
    missing = []
    if not receivers:
        missing.append(f"an active référent of the receiving structure ({receiving_type or 'any other structure'})")
    joined = max((m.started_at for m in receivers), default=None)
    if joined is None or not _joint_meeting_since(session, case_id, joined):
        missing.append("the joint meeting (rendez-vous tripartite) with both référents and the person")
    if missing:
        raise Conflict(
            "this exit would leave the person without a référent: missing " + " and ".join(missing)
            + "; or choose a positive exit reason (" + ", ".join(sorted(EXITS_WITHOUT_HAND_OFF)) + ")"
        )


def check_someone_remains(session: Session, case_id: int) -> None:
    if session.scalar(_ANY_ACTIVE_REFERENT, {"case_id": case_id}) is None:
        raise Conflict("an active case must keep at least one active référent")


# Asked after every completion on a person's case: one id, no objects loaded.
_ANY_ACTIVE_REFERENT = select(CareTeamMember.id).where(
    CareTeamMember.case_id == bindparam("case_id"), CareTeamMember.ended_at.is_(None),
    CareTeamMember.user_id.is_not(None)).limit(1)


def _joint_meeting_since(session: Session, case_id: int, since: datetime) -> bool:
    return session.scalar(
        select(CaseEvent.id).where(CaseEvent.case_id == case_id, CaseEvent.kind == JOINT_MEETING,
                                   CaseEvent.at >= since).limit(1)
    ) is not None
