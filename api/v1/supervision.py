"""The overdue board: tasks and hand-offs past due, with age and escalation level.

A supervisor sees their structure's; the Département pilot (a supervisor of
the pilot structure) sees the whole territory, with initials only. The query
is engine.supervision's, shared with the supervision pages.
"""
from __future__ import annotations

from api.auth import current_user, roles_required
from api.extensions import db
from api.schemas import OverdueOut, OverdueQuery
from api.v1.common import CAPPED_TOTAL_COUNT, COUNT_CAP, Blueprint, engine_context, total_count_headers
from engine import supervision

bp = Blueprint("supervision", __name__, url_prefix="/api/v1/supervision", description="Supervision")


@bp.get("/overdue")
@roles_required("supervisor")
@bp.arguments(OverdueQuery, location="query")
@bp.response(200, OverdueOut(many=True), headers=CAPPED_TOTAL_COUNT)
@bp.problems(401, 403, 422)
def overdue(args):
    user = current_user()
    now = engine_context().clock.now(db.session)
    filters = supervision.BoardFilters(
        structure_id=args.get("structure"), pathway=args.get("pathway"), min_age_days=args["min_age_days"],
        escalation_level=args.get("escalation_level"), hand_offs_only=args["hand_offs"])
    total = supervision.count_overdue(db.session, user, now, filters, cap=COUNT_CAP)
    rows = supervision.overdue_page(db.session, user, now, filters, page=args["page"], per_page=args["per_page"])
    return [_out(row) for row in rows], 200, total_count_headers(total, COUNT_CAP)


def _out(row: supervision.BoardRow) -> dict:
    structure = None if row.structure_id is None else {
        "id": row.structure_id, "name": row.structure_name, "type": row.structure_type}
    return {"task_id": row.task_id, "case_id": row.case_id, "name": row.name, "pathway": row.pathway,
            "structure": structure, "due_at": row.due_at, "age_days": row.age_days,
            "escalation_level": row.escalation_level, "audience": row.audience, "initials": row.initials}
