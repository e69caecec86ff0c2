"""Prescriptions: référents prescribe, providers answer, persons ask for an offer themselves.

- ``POST /api/v1/prescriptions``: a référent or supervisor who may see the case prescribes an
  offer (from the case's ``prescrire-offre`` task when it has one);
- ``GET /api/v1/prescriptions?scope=received``: the provider's queue; ``scope=sent``: those of
  the caller's structure; ``case_id=``: those of a case;
- ``POST /api/v1/prescriptions/{id}/accept`` and ``/refuse`` (DORA's reasons): the provider's
  référents and supervisors;
- ``POST /api/v1/public/requests``: without an account, for offers mobilisable by persons;
  minimal data and consent, a small body, a rate limit per address (salted hash, kept one
  day). No cookie, no access-log entry with the address.
"""
from __future__ import annotations

from functools import wraps

from flask import abort, request
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from api.auth import client_address, current_user, login_required, now_utc
from api.extensions import db
from api.schemas import INSEE_CODE, Pagination, StructureRef, UserRef, ident, text
from api.v1.common import TOTAL_COUNT, Blueprint, engine_context, log_access, paginate
from engine import access, prescriptions
from engine.db import transaction
from engine.errors import NotFound
from engine.offers import BARRIERS
from engine.prescriptions import REFUSAL_REASONS, STATES, Prescription

bp = Blueprint("prescriptions", __name__, url_prefix="/api/v1", description="Prescriptions (orientations)",
               public=True)

PUBLIC_MAX_BYTES = 16 * 1024
PUBLIC_MAX_MESSAGE = 1000
PHONE = r"^\+?[0-9][0-9 .()-]{5,24}$"


class PrescriptionCreate(Schema):
    case_id = ident(required=True)
    offer_id = text(required=True, min=1, max=200, metadata={"description": "data·inclusion id of the offer"})
    message = text(max=prescriptions.MAX_MESSAGE, metadata={"description": "message to the provider"})
    frein = fields.Str(validate=validate.OneOf(list(BARRIERS)), metadata={"description": "barrier aimed at"})
    task_id = ident(metadata={"description": "the case's prescription task (found by itself when there is one)"})


class PrescriptionQuery(Pagination):
    scope = fields.Str(load_default="received", validate=validate.OneOf(("received", "sent")), metadata={
        "description": "received: the queue of the caller's structure as provider; sent: its prescriptions"})
    state = fields.Str(validate=validate.OneOf(list(STATES)))
    case_id = ident(metadata={"description": "only this case's prescriptions (any scope)"})


class AcceptIn(Schema):
    message = text(max=prescriptions.MAX_MESSAGE)


class RefuseIn(Schema):
    reason = fields.Str(required=True, validate=validate.OneOf(list(REFUSAL_REASONS)),
                        metadata={"description": "DORA's refusal reasons"})
    message = text(max=prescriptions.MAX_MESSAGE, metadata={"description": "required with the reason autre"})


class OfferRef(Schema):
    id = fields.Str()
    nom = fields.Str()


class PersonContact(Schema):
    first_name = fields.Str()
    last_name = fields.Str()
    commune_insee = fields.Str()
    email = fields.Str()
    phone = fields.Str()


class PrescriptionOut(Schema):
    id = fields.Int()
    state = fields.Str(metadata={"enum": list(STATES)})
    state_label = fields.Str()
    origin = fields.Str(metadata={"enum": list(prescriptions.ORIGINS)})
    offer = fields.Nested(OfferRef)
    provider = fields.Nested(StructureRef)
    case_id = fields.Int(allow_none=True)
    prescriber = fields.Nested(UserRef, allow_none=True)
    prescriber_structure = fields.Nested(StructureRef, allow_none=True)
    person = fields.Nested(PersonContact, allow_none=True)
    frein = fields.Str(allow_none=True)
    message = fields.Str(allow_none=True)
    consent = fields.Bool()
    refusal_reason = fields.Str(allow_none=True)
    refusal_reason_label = fields.Str(allow_none=True)
    answer_message = fields.Str(allow_none=True)
    created_at = fields.DateTime()
    expires_at = fields.DateTime()
    answered_at = fields.DateTime(allow_none=True)
    expired_at = fields.DateTime(allow_none=True)
    reminders = fields.Int()
    reminded_at = fields.DateTime(allow_none=True)


class PublicRequestIn(Schema):
    offer_id = text(required=True, min=1, max=200)
    first_name = text(required=True, min=1, max=120)
    last_name = text(max=120)
    email = fields.Email(validate=validate.Length(max=255))
    phone = fields.Str(validate=validate.Regexp(PHONE))
    commune_insee = fields.Str(required=True, validate=validate.Regexp(INSEE_CODE))
    message = text(max=PUBLIC_MAX_MESSAGE)
    consent = fields.Bool(required=True, metadata={
        "description": "the person agrees that the provider receives these data to answer the request"})


class PublicRequestOut(Schema):
    reference = fields.Int()
    state = fields.Str()
    offer = fields.Nested(OfferRef)
    provider = fields.Str()
    expires_at = fields.DateTime()
    message = fields.Str()


# --- Référents and providers ----------------------------------------------------------------------


@bp.post("/prescriptions")
@login_required
@bp.arguments(PrescriptionCreate)
@bp.response(201, PrescriptionOut)
@bp.problems(400, 401, 403, 404, 409, 413, 422)
def create(body):
    user = _professional()
    ctx = engine_context()
    with transaction(db.session):
        prescription = prescriptions.prescribe(db.session, ctx, user, case_id=body["case_id"],
                                               offer_id=body["offer_id"], message=body.get("message"),
                                               frein=body.get("frein"), task_id=body.get("task_id"))
        log_access(user, prescription.case_id, "prescription.create", detail=f"prescription {prescription.id}")
    return prescriptions.prescription_out(db.session, prescription)


@bp.get("/prescriptions")
@login_required
@bp.arguments(PrescriptionQuery, location="query")
@bp.response(200, PrescriptionOut(many=True), headers=TOTAL_COUNT)
@bp.problems(401, 404, 422)
def list_prescriptions(args):
    user = current_user()
    query = prescriptions.visible_prescriptions(user)
    if args.get("case_id"):
        _visible_case(user, args["case_id"])
        query = query.where(Prescription.case_id == args["case_id"])
    elif args["scope"] == "received":
        query = query.where(Prescription.structure_id == user.structure_id)
    else:
        query = query.where(Prescription.prescriber_structure_id == user.structure_id)
    if args.get("state"):
        query = query.where(Prescription.state == args["state"])
    query = query.order_by(Prescription.created_at.desc(), Prescription.id.desc())
    found, headers = paginate(query, args)
    if args.get("case_id"):
        with transaction(db.session):
            log_access(user, args["case_id"], "prescription.list")
    return [prescriptions.prescription_out(db.session, p) for p in found], 200, headers


@bp.get("/prescriptions/<id:prescription_id>")
@login_required
@bp.response(200, PrescriptionOut)
@bp.problems(401, 404)
def get_prescription(prescription_id: int):
    user = current_user()
    prescription = visible_prescription(user, prescription_id, "prescription.read")
    with transaction(db.session):
        log_access(user, prescription.case_id, "prescription.read", detail=f"prescription {prescription_id}")
    return prescriptions.prescription_out(db.session, prescription)


@bp.post("/prescriptions/<id:prescription_id>/accept")
@login_required
@bp.arguments(AcceptIn)
@bp.response(200, PrescriptionOut)
@bp.problems(400, 401, 403, 404, 409, 413, 422)
def accept(body, prescription_id: int):
    return _answer(prescription_id, "prescription.accept", lambda user: prescriptions.accept(
        db.session, engine_context(), user, prescription_id, body.get("message")))


@bp.post("/prescriptions/<id:prescription_id>/refuse")
@login_required
@bp.arguments(RefuseIn)
@bp.response(200, PrescriptionOut)
@bp.problems(400, 401, 403, 404, 409, 413, 422)
def refuse(body, prescription_id: int):
    return _answer(prescription_id, "prescription.refuse", lambda user: prescriptions.refuse(
        db.session, engine_context(), user, prescription_id, body["reason"], body.get("message")))


def _answer(prescription_id: int, action: str, command) -> dict:
    user = current_user()
    prescription = visible_prescription(user, prescription_id, action)
    if not prescriptions.may_answer(user, prescription):
        abort(403, description="only the provider's référents and supervisors answer a prescription")
    with transaction(db.session):
        prescription = command(user)
        log_access(user, prescription.case_id, action, detail=f"prescription {prescription_id}")
    return prescriptions.prescription_out(db.session, prescription)


def _professional():
    user = current_user()
    if user.role not in access.CASE_ROLES:
        abort(403, description="only référents and supervisors prescribe")
    return user


def visible_prescription(user, prescription_id: int, action: str) -> Prescription:
    """The prescription, or 404 (logged as denied) when the caller may not see it; the web pages use it too."""
    try:
        return prescriptions.prescription_for(db.session, user, prescription_id)
    except NotFound:
        case_id = db.session.scalar(select(Prescription.case_id).where(Prescription.id == prescription_id))
        with transaction(db.session):
            log_access(user, case_id, action, outcome="denied", detail=f"prescription {prescription_id}")
        raise


def _visible_case(user, case_id: int) -> None:
    try:
        access.case_for(db.session, user, case_id)
    except NotFound:
        with transaction(db.session):
            log_access(user, case_id, "prescription.list", outcome="denied")
        raise


# --- Persons, without an account ------------------------------------------------------------------


def guard_public_request() -> None:
    """Before anything is parsed: refuse big bodies (413) and count the request for the rate limit.

    Raises :class:`~engine.accounts.TooManyAttempts` over the limit (429 here; the public web
    page shows it in French).
    """
    if request.content_length is not None and request.content_length > PUBLIC_MAX_BYTES:
        abort(413, description=f"a request is at most {PUBLIC_MAX_BYTES // 1024} KB")
    request.max_content_length = PUBLIC_MAX_BYTES  # also bounds a body sent without Content-Length
    with transaction(db.session):
        prescriptions.throttle_public_request(db.session, client_address(), now_utc())


def _guarded(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        guard_public_request()
        return view(*args, **kwargs)
    return wrapped


@bp.post("/public/requests")
@_guarded
@bp.doc(security=[])
@bp.arguments(PublicRequestIn)
@bp.response(201, PublicRequestOut)
@bp.problems(400, 413, 422, 429)
def public_request(body):
    """A person asks for an offer themself (no account): it reaches the provider's queue."""
    ctx = engine_context()
    person = {k: body.get(k) for k in ("first_name", "last_name", "email", "phone", "commune_insee")}
    with transaction(db.session):
        prescription = prescriptions.request_offer(db.session, ctx, offer_id=body["offer_id"], person=person,
                                                   message=body.get("message"), consent=body["consent"])
    provider = prescription.provider.name
    return {
        "reference": prescription.id, "state": prescription.state,
        "offer": {"id": prescription.offer.di_id, "nom": prescription.offer.name}, "provider": provider,
        "expires_at": prescription.expires_at,
        "message": f"Votre demande a été transmise à {provider}. Sans réponse de sa part sous 30 jours, "
                   "elle expire : vous pourrez alors la renouveler ou demander conseil à un professionnel.",
    }
