"""The overdue board: tasks and hand-offs past due, with age and escalation level.

A supervisor sees their structure's; the Département pilot (a supervisor of
the pilot structure) sees the whole territory, with initials only.
"""
from __future__ import annotations

from sqlalchemy import select

from api.auth import current_user, roles_required
from api.extensions import db
from api.presenters import structures_by_id
from api.schemas import OverdueOut, OverdueQuery
from api.v1.common import TOTAL_COUNT, Blueprint, engine_context, paginate
from engine.models import Case, HumanTask, PathwayVersion
from engine.people import Person

bp = Blueprint("supervision", __name__, url_prefix="/api/v1/supervision", description="Supervision")


@bp.get("/overdue")
@roles_required("supervisor")
@bp.arguments(OverdueQuery, location="query")
@bp.response(200, OverdueOut(many=True), headers=TOTAL_COUNT)
@bp.problems(401, 403, 422)
def overdue(args):
    user = current_user()
    now = engine_context().clock.now(db.session)
    query = (select(HumanTask)
             .where(HumanTask.state.in_(("open", "claimed")), HumanTask.due_at < now)
             .order_by(HumanTask.due_at, HumanTask.id))
    if not (user.structure is not None and user.structure.is_pilot):
        query = query.where(HumanTask.structure_id == user.structure_id)
    if args.get("structure"):
        query = query.where(HumanTask.structure_id == args["structure"])
    if args.get("pathway"):
        query = query.join(Case, Case.id == HumanTask.case_id).join(
            PathwayVersion, PathwayVersion.id == Case.pathway_version_id).where(PathwayVersion.key == args["pathway"])
    tasks, headers = paginate(query, args)
    structures = structures_by_id(db.session, [t.structure_id for t in tasks])
    return [_row(t, structures, now) for t in tasks], 200, headers


def _row(task: HumanTask, structures, now) -> dict:
    case = db.session.get(Case, task.case_id)
    person = db.session.get(Person, case.person_id) if case.person_id else None
    key = db.session.scalar(select(PathwayVersion.key).where(PathwayVersion.id == case.pathway_version_id))
    structure = structures.get(task.structure_id)
    return {
        "task_id": task.id, "case_id": task.case_id, "name": task.name, "pathway": key,
        "structure": None if structure is None else {"id": structure.id, "name": structure.name,
                                                     "type": structure.type},
        "due_at": task.due_at, "age_days": round((now - task.due_at).total_seconds() / 86400, 1),
        "escalation_level": task.escalation_level, "audience": task.audience,
        "initials": f"{person.first_name[:1]}. {person.last_name[:1]}." if person else "",
    }
