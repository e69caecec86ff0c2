"""Model objects → the plain dicts the response schemas dump (no logic, no queries beyond what is shown)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.directory import Structure, User
from engine.models import Case, CaseEvent, HumanTask, PathwayVersion
from engine.people import CareTeamMember, Person
from engine.spec_cache import SpecCache


def structure_ref(structure: Structure | None) -> dict | None:
    return None if structure is None else {"id": structure.id, "name": structure.name, "type": structure.type}


def user_out(user: User) -> dict:
    return {"id": user.id, "email": user.email, "name": user.name, "role": user.role,
            "structure": structure_ref(user.structure), "active": user.active}


def task_out(task: HumanTask, structures: dict[int, Structure], now: datetime) -> dict:
    return {
        "id": task.id, "case_id": task.case_id, "bpmn_id": task.bpmn_id, "name": task.name, "lane": task.lane,
        "structure": structure_ref(structures.get(task.structure_id)), "assignee": task.assignee,
        "state": task.state, "audience": task.audience, "unassigned": task.unassigned,
        "form_key": task.form_key, "created_at": task.created_at, "due_at": task.due_at,
        "ended_at": task.ended_at, "escalation_level": task.escalation_level,
        "overdue": bool(task.due_at and task.state in ("open", "claimed") and task.due_at < now),
    }


def structures_by_id(session: Session, ids) -> dict[int, Structure]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {s.id: s for s in session.scalars(select(Structure).where(Structure.id.in_(wanted)))}


def person_out(person: Person | None) -> dict | None:
    if person is None:
        return None
    return {"id": person.id, "first_name": person.first_name, "last_name": person.last_name,
            "birth_date": person.birth_date, "commune_insee": person.commune_insee}


def care_team_out(member: CareTeamMember) -> dict:
    user = member.user
    return {"structure": structure_ref(member.structure),
            "user": None if user is None else {"id": user.id, "name": user.name, "email": user.email},
            "role": member.role, "started_at": member.started_at, "ended_at": member.ended_at,
            "end_reason": member.end_reason}


def pathway_ref(session: Session, specs: SpecCache, case: Case) -> dict:
    parsed = specs.peek(case.pathway_version_id)  # a command on the case has just used it: no query then
    if parsed is not None:
        return {"key": parsed.key, "version": parsed.version}
    key, version = session.execute(_PATHWAY_REF, {"version_id": case.pathway_version_id}).one()
    return {"key": key, "version": version}


def case_summary(session: Session, specs: SpecCache, case: Case, person: Person | None) -> dict:
    return {"id": case.id, "status": case.status, "pathway": pathway_ref(session, specs, case),
            "person": person_out(person), "updated_at": case.updated_at}


def case_summaries(session: Session, specs: SpecCache, cases: list[Case]) -> list[dict]:
    """Summaries of a page of cases, their persons read in one query (not one per case)."""
    person_ids = {case.person_id for case in cases if case.person_id is not None}
    persons = session.scalars(select(Person).where(Person.id.in_(person_ids))).all() if person_ids else []
    by_id = {person.id: person for person in persons}
    return [case_summary(session, specs, case, by_id.get(case.person_id)) for case in cases]


def case_out(session: Session, specs: SpecCache, case: Case, now: datetime) -> dict:
    """The case with its care team, open tasks and whole timeline (what a command or a read answers)."""
    members = session.scalars(_CARE_TEAM, {"case_id": case.id}).all()
    tasks = session.execute(_OPEN_TASKS_AND_STRUCTURES, {"case_id": case.id}).all()
    events = session.scalars(_TIMELINE, {"case_id": case.id}).all()
    structures = {structure.id: structure for _, structure in tasks if structure is not None}
    return {
        **case_summary(session, specs, case, session.get(Person, case.person_id) if case.person_id else None),
        "commune_insee": case.commune_insee, "exit_reason": case.exit_reason, "incident": case.incident,
        "created_at": case.created_at, "ended_at": case.ended_at,
        "care_team": [care_team_out(m) for m in members],
        "open_tasks": [task_out(t, structures, now) for t, _ in tasks],
        "timeline": [{"at": e.at, "actor": e.actor, "kind": e.kind, "bpmn_id": e.bpmn_id, "summary": e.summary}
                     for e in events],
    }


# Built once: a command's answer runs them on every request, and building them costs as much as running them.
_PATHWAY_REF = select(PathwayVersion.key, PathwayVersion.version).where(PathwayVersion.id == bindparam("version_id"))
_CARE_TEAM = (select(CareTeamMember).where(CareTeamMember.case_id == bindparam("case_id"))
              .order_by(CareTeamMember.started_at, CareTeamMember.id))
_OPEN_TASKS_AND_STRUCTURES = (select(HumanTask, Structure).outerjoin(Structure, Structure.id == HumanTask.structure_id)
                              .where(HumanTask.case_id == bindparam("case_id"),
                                     HumanTask.state.in_(("open", "claimed"))).order_by(HumanTask.id))
_TIMELINE = select(CaseEvent).where(CaseEvent.case_id == bindparam("case_id")).order_by(CaseEvent.id)
