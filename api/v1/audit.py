"""The access log, for administrators (who read or changed which case, when, from where)."""
from __future__ import annotations

from flask_smorest import Blueprint
from sqlalchemy import select

from api.auth import roles_required
from api.schemas import AuditOut, AuditQuery
from api.v1.common import paginate
from engine.access import AccessLog

bp = Blueprint("audit", __name__, url_prefix="/api/v1/audit", description="Access log (admin)")


@bp.get("")
@roles_required("admin")
@bp.arguments(AuditQuery, location="query")
@bp.response(200, AuditOut(many=True))
def list_accesses(args):
    query = select(AccessLog).order_by(AccessLog.id.desc())
    if args.get("case"):
        query = query.where(AccessLog.case_id == args["case"])
    if args.get("user"):
        query = query.where(AccessLog.user_id == args["user"])
    rows, headers = paginate(query, args)
    return [{"at": r.at, "user_id": r.user_id, "case_id": r.case_id, "action": r.action, "outcome": r.outcome,
             "address": r.address, "detail": r.detail} for r in rows], 200, headers
