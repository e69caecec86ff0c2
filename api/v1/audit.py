"""The access log, for administrators (who read or changed which case, when, from where)."""
from __future__ import annotations

from sqlalchemy import select

from api.auth import roles_required
from api.schemas import AuditOut, AuditQuery
from api.v1.common import AUDIT_CASE_ID_MAX, TOTAL_COUNT, Blueprint, paginate
from engine.access import AccessLog

bp = Blueprint("audit", __name__, url_prefix="/api/v1/audit", description="Access log (admin)")


@bp.get("")
@roles_required("admin")
@bp.arguments(AuditQuery, location="query")
@bp.response(200, AuditOut(many=True), headers=TOTAL_COUNT)
@bp.problems(401, 403, 422)
def list_accesses(args):
    query = select(AccessLog).order_by(AccessLog.id.desc())
    if args.get("case"):
        # A case id above the column's range was logged without case_id (see log_access): nothing to match.
        query = query.where(AccessLog.case_id == args["case"] if args["case"] <= AUDIT_CASE_ID_MAX else False)
    if args.get("user"):
        query = query.where(AccessLog.user_id == args["user"])
    rows, headers = paginate(query, args)
    return [{"at": r.at, "user_id": r.user_id, "case_id": r.case_id, "action": r.action, "outcome": r.outcome,
             "address": r.address, "detail": r.detail} for r in rows], 200, headers
