"""Cases: start one for a person, list and read those the caller may see, deliver a message."""
from __future__ import annotations

from flask import abort
from sqlalchemy.orm import defer

from api.auth import current_user, roles_required
from api.extensions import db
from api.presenters import case_summaries
from api.schemas import CaseCreate, CaseOut, CaseQuery, CaseSummary, MessageIn
from api.v1.common import TOTAL_COUNT, Blueprint, case_answer, engine_context, log_access, log_accesses, paginate
from engine import access, cases, pathways
from engine.db import transaction
from engine.errors import InvalidInput, NotFound
from engine.models import Case

bp = Blueprint("cases", __name__, url_prefix="/api/v1/cases", description="Cases (parcours)")


@bp.post("")
@roles_required("referent", "supervisor")
@bp.arguments(CaseCreate, example={"pathway_key": "jeune-sortant-mission-locale", "person": {
    "first_name": "Inès", "last_name": "Martin", "birth_date": "2001-01-02", "commune_insee": "91228"}})
@bp.response(201, CaseOut)
@bp.problems(400, 401, 403, 413, 422)
def start_case(body):
    user = current_user()
    ctx = engine_context()
    try:
        pathways.get_version(db.session, body["pathway_key"])
    except NotFound as exc:  # a field of the body names nothing: the request is invalid, not the URL
        raise InvalidInput(str(exc), [{"field": "pathway_key", "message": "no pathway deployed with this key"}])
    identity = {**body["person"], "birth_date": body["person"]["birth_date"].isoformat()}
    with transaction(db.session):
        person = cases.find_or_create_person(db.session, ctx, identity)
        case = cases.start_case(db.session, ctx, body["pathway_key"], actor=user.email, data=body["data"],
                                person=person, referent=user)
        log_access(user, case.id, "case.create")
        return case_answer(case)


@bp.get("")
@bp.arguments(CaseQuery, location="query")
@bp.response(200, CaseSummary(many=True), headers=TOTAL_COUNT)
@bp.problems(401, 422)
def list_cases(args):
    user = current_user()
    query = access.visible_cases(user).options(defer(Case.state)).order_by(Case.updated_at.desc(), Case.id.desc())
    if args.get("status"):
        query = query.where(Case.status == args["status"])
    found, headers = paginate(query, args)
    summaries = case_summaries(db.session, engine_context().specs, found)
    with transaction(db.session):  # a list shows who is accompanied: each case listed is a read
        log_accesses(user, [summary["id"] for summary in summaries], "case.list")
    return summaries, 200, headers


@bp.get("/<id:case_id>")
@bp.response(200, CaseOut)
@bp.problems(401, 404)
def get_case(case_id: int):
    user = current_user()
    case = _visible_case(user, case_id, "case.read")
    with transaction(db.session):
        log_access(user, case_id, "case.read")
        return case_answer(case)


@bp.post("/<id:case_id>/messages/<name:name>")
@bp.arguments(MessageIn)
@bp.response(200, CaseOut)
@bp.problems(400, 401, 403, 404, 409, 413, 422)
def deliver_message(body, case_id: int, name: str):
    user = current_user()
    if user.role not in ("referent", "supervisor"):
        abort(403, description="only référents, supervisors and integrations deliver messages")
    _visible_case(user, case_id, f"message.{name}")
    ctx = engine_context()
    with transaction(db.session):
        case = cases.deliver_message(db.session, ctx, case_id, name, body["payload"], actor=user.email)
        log_access(user, case_id, f"message.{name}")
        return case_answer(case)


def _visible_case(user, case_id: int, action: str) -> Case:
    """The case, or 404 — logged as a denied access either way it is refused."""
    try:
        return access.case_for(db.session, user, case_id)
    except NotFound:
        with transaction(db.session):
            log_access(user, case_id, action, outcome="denied")
        raise
