"""What completing a SPIE task does to the case beyond the workflow (``spie:action``, ``spie:exit``).

- ``designate-referent``: the professional named in ``referent_email`` joins the care team
  for the task's structure;
- ``joint-meeting``: the tripartite meeting is recorded when all three attended;
- ``orientation``: the decision goes to the timeline;
- ``prescribe``: the offer chosen in the form (``offer_id``, ``frein``, ``message``) becomes a
  prescription to its provider (:mod:`engine.prescriptions`), checked before the task runs;
- ``spie:exit``: checked against the hand-off invariant before the task runs, then the
  structure's accompaniment ends.
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent

from engine import assignment, care_team, prescriptions
from engine.directory import User, user_by_email
from engine.errors import InvalidInput
from engine.models import CaseEvent, HumanTask

if TYPE_CHECKING:
    from engine.context import EngineContext


def before_completion(session: Session, loaded, row: HumanTask, task, data: dict) -> User | None:
    """Refuse what cannot happen (unknown référent, exit without hand-off); return a designated user."""
    info = loaded.pathway.task_info(task)
    designated = None
    if info.get("action") == "designate-referent":
        designated = _designated_user(session, row, data)
    if info.get("action") == "prescribe":
        prescriptions.check_prescription(session, loaded.case.id, data.get("offer_id"), data.get("frein"),
                                         data.get("message"))
    if info.get("exit"):
        care_team.check_exit(session, loaded.case.id, row.structure_id,
                             task.data.get("receiving_structure_type"), data.get("exit_reason"))
    return designated


def after_completion(session: Session, loaded, row: HumanTask, task, data: dict, designated: User | None,
                     now: datetime, actor: str, *, ctx: EngineContext) -> bool:
    """The completed task's effects on the case; True when members left its care team (an exit)."""
    info = loaded.pathway.task_info(task)
    case_id = loaded.case.id
    if designated is not None:
        care_team.join(session, case_id, designated, now, actor)
    if info.get("action") == "joint-meeting":
        care_team.record_joint_meeting(session, case_id, now, actor, data)
    if info.get("action") == "orientation":
        session.add(CaseEvent(case_id=case_id, at=now, actor=actor, kind="orientation_decided",
                              bpmn_id=row.bpmn_id, summary={k: data.get(k) for k in
                                                            ("orientation", "target_structure_type", "motif")}))
    if info.get("action") == "prescribe":
        prescriptions.prescribe_from_task(session, ctx, row, data, now, actor)
    if info.get("exit"):
        reason = data.get("exit_reason") or "autre"
        loaded.case.exit_reason = reason
        return bool(care_team.leave_structure(session, case_id, row.structure_id, now, reason, actor))
    return False


def guard_exit_events(session: Session, loaded):
    """A ``will_complete_task`` callback checking end events marked ``spie:exit``."""
    exits = {bpmn_id for meta in loaded.pathway.process_meta.values() for bpmn_id in meta.get("exits", [])}

    def guard(task) -> None:
        if not isinstance(task.task_spec, EndEvent) or task.task_spec.bpmn_id not in exits:
            return
        lane_types = assignment.lane_structure_types(loaded.pathway.lane_info(task), task.data, task.task_spec.lane)
        sending = assignment.resolve_structure_id(session, loaded.case, lane_types)
        care_team.check_exit(session, loaded.case.id, sending,
                             task.data.get("receiving_structure_type"), task.data.get("exit_reason"))

    return guard if exits else None


def _designated_user(session: Session, row: HumanTask, data: dict) -> User:
    email = str(data.get("referent_email") or "")
    user = user_by_email(session, email) if email else None
    if user is None or not user.active:
        raise InvalidInput("unknown référent", [{"field": "referent_email", "message": f"no active user {email!r}"}])
    if row.structure_id is not None and user.structure_id != row.structure_id:
        raise InvalidInput("référent of another structure", [{
            "field": "referent_email",
            "message": f"{email} does not belong to the structure that receives the person",
        }])
    return user
