"""Prescriptions: a référent (or the person) asks the provider of an offer to take the person in.

States follow DORA's orientations: ``ouverte`` → ``validee`` or ``refusee`` (with one of
DORA's refusal reasons) → or ``expiree`` after 30 days without an answer; the provider is
reminded at 10 days. The lifecycle runs as an engine case of ``bpmn/prescription-offre.bpmn``,
so the reminder and the expiry are engine timers (fired by ``spie worker``, ``spie serve`` or
simulated time) and the prescription row follows that case:

- the provider's answer (:func:`accept`, :func:`refuse`) is delivered to it as the message
  ``reponse-prescription``, and to the prescribing case too when that case waits for it
  (the ``prescrire-offre`` task of ``demandeur-emploi-freins``);
- the reminder and expiry timers fire in the timer worker; :func:`_follow_lifecycle`, a
  listener of :mod:`engine.row_hooks`, sees their ``timer_fired`` events in the same transaction and moves
  the row (reminders, state ``expiree``), gives the reminder task to the provider's structure,
  and writes each step on the prescribing case's timeline.

A user task marked ``spie:action="prescribe"`` (``prescrire-offre``) makes its prescription as it
completes, in the same transaction (:func:`prescribe_from_task`, called by :mod:`engine.task_effects`).

Self-requests (:func:`request_offer`) come from the public page, without an account, for
offers mobilisable by the persons themselves: minimal contact data, explicit consent, a
rate limit per client address kept as a hash with a salt that changes every day (the salt
of the day before is deleted, so nobody can tell later who asked), and a daily cap per offer.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import unicodedata
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, String, Text, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship
from sqlalchemy.sql import Select
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from engine import access
from engine.accounts import TooManyAttempts
from engine.db import Base, BigId, UTCDateTime
from engine.directory import Structure, User, user_by_email
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import Case, CaseEvent, HumanTask, PathwayVersion
from engine.offers import BARRIERS, Offer, offer_by_di_id, offer_covers
from engine.paths import BPMN_DIR, FORMS_DIR
from engine.row_hooks import before_rows_written
from engine.people import Person
from engine.timeutil import add_iso_duration

if TYPE_CHECKING:
    from engine.context import EngineContext

# engine.cases, engine.runtime and engine.pathways are imported where used: this module is imported by
# engine.models (to register its tables), before the runtime can be.

STATES = {"ouverte": "Ouverte", "validee": "Validée", "refusee": "Refusée", "expiree": "Expirée"}
OPEN = "ouverte"

# DORA's refusal reasons (front/src/lib/utils/orientation-templates.ts), without accents in the codes.
REFUSAL_REASONS = {
    "beneficiaire-non-joignable": "La personne n'est pas joignable",
    "beneficiaire-absent": "La personne ne s'est pas présentée",
    "beneficiaire-en-emploi": "La personne a trouvé un emploi",
    "beneficiaire-en-formation": "La personne est en formation",
    "beneficiaire-non-eligible": "La personne n'est pas éligible à l'offre",
    "beneficiaire-non-mobile": "La personne ne peut pas se déplacer jusqu'au lieu de l'offre",
    "beneficiaire-non-interesse": "La personne n'est pas intéressée",
    "freins-peripheriques": "D'autres freins empêchent d'entrer dans l'offre pour l'instant",
    "session-complete": "La session est complète",
    "orientation-en-doublon": "Prescription en doublon",
    "autre": "Autre motif",
}

ORIGINS = ("referent", "self")
LIFECYCLE_KEY = "prescription-offre"
LIFECYCLE_FILE = BPMN_DIR / "prescription-offre.bpmn"
LIFECYCLE_FORMS = ("relance-prescription",)
RESPONSE_MESSAGE = "reponse-prescription"
PRESCRIPTION_FORM = "prescription"
EXPIRY = "P30D"  # as in the diagram: what the API shows as expires_at
# Element ids of bpmn/prescription-offre.bpmn that the row follows.
WAIT_TASK = "prescription-attendre-reponse"
REMINDER_TIMER = "prescription-relance"
EXPIRY_TIMER = "prescription-expiration"
REMINDER_TASK = "prescription-traiter-relance"

# Public requests: per client address (hashed with the salt of the day) and per offer.
PUBLIC_REQUESTS_PER_HOUR = 5
PUBLIC_REQUESTS_PER_DAY = 20
PUBLIC_REQUESTS_PER_OFFER_PER_DAY = 50
MAX_MESSAGE = 2000


class Prescription(Base):
    """An orientation of a person towards an offer, and the provider's answer."""

    __tablename__ = "prescription"
    __table_args__ = (
        Index("ix_prescription_queue", "structure_id", "state", "created_at"),
        Index("ix_prescription_offer_origin", "offer_id", "origin", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offer.id"), index=True)
    structure_id: Mapped[int] = mapped_column(ForeignKey("structure.id"))  # the provider, when prescribed
    origin: Mapped[str] = mapped_column(String(12))  # referent, self
    # The prescribing case (none for a self-request) and whether it waits for the answer as a message.
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), index=True)
    case_waits: Mapped[bool] = mapped_column(Boolean, default=False)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("human_task.id"))
    # The engine case of prescription-offre that carries the reminder and the expiry.
    workflow_case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), unique=True)
    prescriber_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), index=True)
    prescriber_structure_id: Mapped[int | None] = mapped_column(ForeignKey("structure.id"), index=True)
    frein: Mapped[str | None] = mapped_column(String(40))
    message: Mapped[str | None] = mapped_column(Text)
    # Self-requests: who to contact (first name, last name, email, phone, commune) and their consent.
    person_contact: Mapped[dict | None] = mapped_column(JSON)
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(12), default=OPEN)
    refusal_reason: Mapped[str | None] = mapped_column(String(40))
    answer_message: Mapped[str | None] = mapped_column(Text)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminders: Mapped[int] = mapped_column(default=0)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(default=1)

    offer: Mapped[Offer] = relationship(lazy="joined")
    provider: Mapped[Structure] = relationship(foreign_keys=[structure_id], lazy="joined")
    prescriber: Mapped[User | None] = relationship(foreign_keys=[prescriber_id], lazy="select")

    __mapper_args__ = {"version_id_col": version}


class PublicRequestHit(Base):
    """One public request, counted for the rate limit: a salted hash of the address and a time, kept one day."""

    __tablename__ = "public_request_hit"
    __table_args__ = (Index("ix_public_request_hit_address_at", "address_hash", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class PublicRequestSalt(Base):
    """The salt of the day for hashing client addresses; older salts are deleted."""

    __tablename__ = "public_request_salt"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    salt: Mapped[str] = mapped_column(String(64))


# --- Who sees and answers -------------------------------------------------------------------------


def visible_prescriptions(user: User) -> Select:
    """Prescriptions ``user`` may see: those received by their structure, and those of cases they may see."""
    query = select(Prescription)
    if user.role not in access.CASE_ROLES or user.structure_id is None:
        return query.where(False)
    case_ids = access.visible_cases(user).with_only_columns(Case.id)
    return query.where(or_(Prescription.structure_id == user.structure_id, Prescription.case_id.in_(case_ids)))


def prescription_for(session: Session, user: User, prescription_id: int) -> Prescription:
    found = session.scalar(visible_prescriptions(user).where(Prescription.id == prescription_id))
    if found is None:
        raise NotFound(f"prescription {prescription_id} does not exist")
    return found


def may_answer(user: User, prescription: Prescription) -> bool:
    """The provider's référents and supervisors answer."""
    return user.role in access.CASE_ROLES and user.structure_id == prescription.structure_id


# --- Prescribing ----------------------------------------------------------------------------------


def ensure_lifecycle(session: Session, ctx: EngineContext) -> PathwayVersion:
    """The deployed prescription-offre pathway, deployed from bpmn/ on first use."""
    from engine.pathways import deploy, get_version

    try:
        return get_version(session, LIFECYCLE_KEY)
    except NotFound:
        forms = {key: json.loads((FORMS_DIR / f"{key}.json").read_text(encoding="utf-8")) for key in LIFECYCLE_FORMS}
        return deploy(session, ctx, LIFECYCLE_FILE.read_bytes(), forms=forms,
                      deployed_by="system:prescriptions").version


def prescribe(session: Session, ctx: EngineContext, user: User, *, case_id: int, offer_id: str,
              message: str | None = None, frein: str | None = None, task_id: int | None = None) -> Prescription:
    """A référent of the case prescribes an offer; from the case's ``prescription`` task if it has one.

    With ``task_id`` (or, without it, when the case has exactly one open task with the
    ``prescription`` form that ``user`` may work), the task is completed with the offer, so the
    case goes on to wait for the provider's answer, which it will receive as a message. A task
    marked ``spie:action="prescribe"`` makes the prescription itself as it completes
    (:func:`prescribe_from_task`); for a task without it (a pathway version deployed before the
    action existed) the prescription is made here.
    """
    from engine import cases

    case = access.case_for(session, user, case_id)
    if case.status != "active":
        raise Conflict(f"case {case_id} is {case.status}: no new prescription")
    offer = check_prescription(session, case_id, offer_id, frein, message)
    task = _prescription_task(session, user, case_id, task_id)
    if task is not None:
        data = {"offer_id": offer.di_id}
        data.update({k: v for k, v in (("frein", frein), ("message", message)) if v})
        cases.complete_task(session, ctx, task.id, data, user=user.email)
        made = session.scalar(select(Prescription).where(Prescription.task_id == task.id))
        if made is not None:
            return made
    return _create(session, ctx, user, case_id, offer, frein=frein, message=message, task=task,
                   now=ctx.clock.now(session), actor=user.email)


def check_prescription(session: Session, case_id: int, offer_id: str | None, frein: str | None,
                       message: str | None) -> Offer:
    """The offer, if it may be prescribed for the case now; else :class:`InvalidInput` or :class:`Conflict`."""
    offer = _offer_for(session, str(offer_id or ""))
    errors = []
    if not offer.prescribable:
        errors.append({"field": "offer_id", "message": "this offer is requested by the person themself "
                                                       "(mobilisable par les usagers only)"})
    if frein is not None and frein not in BARRIERS:
        errors.append({"field": "frein", "message": f"one of {', '.join(BARRIERS)}"})
    if message is not None and len(message) > MAX_MESSAGE:
        errors.append({"field": "message", "message": f"at most {MAX_MESSAGE} characters"})
    if errors:
        raise InvalidInput("the prescription cannot be made", errors)
    duplicate = session.scalar(select(Prescription.id).where(
        Prescription.case_id == case_id, Prescription.offer_id == offer.id, Prescription.state == OPEN))
    if duplicate is not None:
        raise Conflict(f"prescription {duplicate} of this offer is still open for this case")
    return offer


def prescribe_from_task(session: Session, ctx: EngineContext, row: HumanTask, data: dict[str, Any], now: datetime,
                        actor: str) -> Prescription:
    """A ``spie:action="prescribe"`` task completed: its form's offer becomes a prescription, in the same
    transaction; the case waits for the answer (checked first by :func:`check_prescription`)."""
    frein, message = data.get("frein"), data.get("message")
    offer = check_prescription(session, row.case_id, data.get("offer_id"), frein, message)
    return _create(session, ctx, user_by_email(session, actor), row.case_id, offer, frein=frein, message=message,
                   task=row, now=now, actor=actor)


def _create(session: Session, ctx: EngineContext, user: User | None, case_id: int, offer: Offer, *,
            frein: str | None, message: str | None, task: HumanTask | None, now: datetime,
            actor: str) -> Prescription:
    prescription = Prescription(
        offer=offer, structure_id=offer.structure_id, origin="referent", case_id=case_id,
        case_waits=task is not None, task_id=task.id if task is not None else None,
        prescriber_id=user.id if user is not None else None,
        prescriber_structure_id=user.structure_id if user is not None else None, frein=frein,
        message=message or None, state=OPEN, created_at=now, expires_at=add_iso_duration(now, EXPIRY))
    session.add(prescription)
    session.flush()
    _start_lifecycle(session, ctx, prescription, actor=actor)
    _on_timeline(session, prescription, "prescription_sent", now, actor)
    return prescription


def _offer_for(session: Session, offer_id: str) -> Offer:
    offer = offer_by_di_id(session, offer_id)
    if offer is None:
        raise InvalidInput("unknown offer",
                           [{"field": "offer_id", "message": f"no offer {offer_id!r} in the catalogue"}])
    return offer


def _prescription_task(session: Session, user: User, case_id: int, task_id: int | None) -> HumanTask | None:
    if task_id is not None:
        task = session.get(HumanTask, task_id)
        if task is None or task.case_id != case_id or task.form_key != PRESCRIPTION_FORM:
            raise InvalidInput("not a prescription task of this case", [
                {"field": "task_id", "message": f"task {task_id} is not an open prescription task of case {case_id}"}])
        if task.state not in ("open", "claimed"):
            raise Conflict(f"task {task_id} is already {task.state}")
        if not (access.may_work_task(user, task) or task.assignee == user.email):
            raise InvalidInput("not your task", [{"field": "task_id", "message": "this task belongs to another "
                                                                                 "structure"}])
        return task
    candidates = [
        t for t in session.scalars(select(HumanTask).where(
            HumanTask.case_id == case_id, HumanTask.form_key == PRESCRIPTION_FORM,
            HumanTask.state.in_(("open", "claimed"))))
        if (t.state == "open" and access.may_work_task(user, t)) or t.assignee == user.email
    ]
    return candidates[0] if len(candidates) == 1 else None


def _start_lifecycle(session: Session, ctx: EngineContext, prescription: Prescription, *, actor: str) -> None:
    from engine import cases

    ensure_lifecycle(session, ctx)
    provider = session.get(Structure, prescription.structure_id)
    workflow = cases.start_case(session, ctx, LIFECYCLE_KEY, actor=actor, data={
        "prescription_id": prescription.id, "offre": prescription.offer.di_id,
        "prestataire_structure_id": provider.id, "prestataire_type": provider.type,
    })
    prescription.workflow_case_id = workflow.id


# --- Answering ------------------------------------------------------------------------------------


def accept(session: Session, ctx: EngineContext, user: User, prescription_id: int,
           message: str | None = None) -> Prescription:
    return _answer(session, ctx, user, prescription_id, "validee", None, message)


def refuse(session: Session, ctx: EngineContext, user: User, prescription_id: int, reason: str,
           message: str | None = None) -> Prescription:
    code = normalize_reason(reason)
    if code is None:
        raise InvalidInput("unknown refusal reason", [{"field": "reason",
                                                        "message": f"one of {', '.join(REFUSAL_REASONS)}"}])
    if code == "autre" and not (message or "").strip():
        raise InvalidInput("say why", [{"field": "message", "message": "required with the reason 'autre'"}])
    return _answer(session, ctx, user, prescription_id, "refusee", code, message)


def normalize_reason(reason: str | None) -> str | None:
    """A DORA refusal reason code, with or without accents ("session-complète" → "session-complete")."""
    if not reason:
        return None
    plain = "".join(c for c in unicodedata.normalize("NFKD", reason.strip().lower()) if not unicodedata.combining(c))
    return plain if plain in REFUSAL_REASONS else None


def _answer(session: Session, ctx: EngineContext, user: User, prescription_id: int, state: str,
            reason: str | None, message: str | None) -> Prescription:
    from engine import cases

    prescription = prescription_for(session, user, prescription_id)
    if not may_answer(user, prescription):
        raise NotFound(f"prescription {prescription_id} does not exist")  # the API says 403 before this
    if prescription.state != OPEN:
        raise Conflict(f"prescription {prescription_id} is already {STATES[prescription.state].lower()}")
    if message is not None and len(message) > MAX_MESSAGE:
        raise InvalidInput("message too long", [{"field": "message", "message": f"at most {MAX_MESSAGE} characters"}])
    now = ctx.clock.now(session)
    status = "acceptee" if state == "validee" else "refusee"
    payload = {"statut": status, "motif": reason}
    answering = session.info.setdefault(_ANSWERING, set())
    answering.add(prescription.workflow_case_id)
    try:
        workflow = cases.deliver_message(session, ctx, prescription.workflow_case_id, RESPONSE_MESSAGE, payload,
                                         actor=user.email)
    finally:
        answering.discard(prescription.workflow_case_id)
    if workflow.status != "closed":
        raise Conflict(f"the lifecycle of prescription {prescription_id} did not end ({workflow.status}); "
                       "see its case's incident")
    prescription.state, prescription.answered_at, prescription.answered_by_id = state, now, user.id
    prescription.refusal_reason, prescription.answer_message = reason, (message or None)
    kind = "prescription_accepted" if state == "validee" else "prescription_refused"
    _on_timeline(session, prescription, kind, now, user.email)
    if prescription.case_id is not None and prescription.case_waits and _waits_for_answer(
            session, ctx, prescription.case_id):
        cases.deliver_message(session, ctx, prescription.case_id, RESPONSE_MESSAGE, {
            "statut": status, "motif": REFUSAL_REASONS[reason] if reason else None, "motif_code": reason,
            "commentaire": message or None, "prescription_id": prescription.id,
        }, actor=user.email)
    session.flush()
    return prescription


def _waits_for_answer(session: Session, ctx: EngineContext, case_id: int) -> bool:
    from engine import runtime

    case = session.get(Case, case_id)
    if case is None or case.status != "active":
        return False
    with runtime.reading(session, ctx, case_id) as loaded:
        return any(isinstance(getattr(t.task_spec, "event_definition", None), MessageEventDefinition)
                   and t.task_spec.event_definition.name == RESPONSE_MESSAGE
                   for t in loaded.workflow.get_tasks(state=TaskState.WAITING))


# --- Self-requests (public, without account) ------------------------------------------------------


def throttle_public_request(session: Session, address: str, now: datetime) -> None:
    """Count one public request from ``address``; raise :class:`TooManyAttempts` over the limits.

    Only a keyed hash of the address is stored, with the salt of the day, for one day.
    """
    digest = _address_digest(session, address, now)
    session.execute(delete(PublicRequestHit).where(PublicRequestHit.at < now - timedelta(days=1)))
    recent = select(func.count()).select_from(PublicRequestHit).where(PublicRequestHit.address_hash == digest)
    last_hour = session.scalar(recent.where(PublicRequestHit.at >= now - timedelta(hours=1)))
    last_day = session.scalar(recent.where(PublicRequestHit.at >= now - timedelta(days=1)))
    if last_hour >= PUBLIC_REQUESTS_PER_HOUR or last_day >= PUBLIC_REQUESTS_PER_DAY:
        raise TooManyAttempts("too many requests from this connection; try again later")
    session.add(PublicRequestHit(address_hash=digest, at=now))


def _address_digest(session: Session, address: str, now: datetime) -> str:
    day = now.date()
    salt = session.scalar(select(PublicRequestSalt.salt).where(PublicRequestSalt.day == day))
    if salt is None:
        session.execute(delete(PublicRequestSalt).where(PublicRequestSalt.day < day))
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(dialect.insert(PublicRequestSalt).values(day=day, salt=secrets.token_hex(32))
                        .on_conflict_do_nothing())
        salt = session.scalar(select(PublicRequestSalt.salt).where(PublicRequestSalt.day == day))
    return hmac.new(bytes.fromhex(salt), address.encode("utf-8"), hashlib.sha256).hexdigest()


def request_errors(session: Session, *, offer_id: str | None, person: dict[str, Any], message: str | None,
                   consent: bool | None) -> list[dict[str, str]]:
    """Why a self-request cannot be sent (field errors; none when it can)."""
    errors = []
    if consent is not True:
        errors.append({"field": "consent", "message": "the person must agree that the provider receives "
                                                      "these data to answer the request"})
    offer = offer_by_di_id(session, offer_id)
    commune = str(person.get("commune_insee") or "")
    if offer is None or not offer.self_requestable:
        errors.append({"field": "offer_id", "message": "no offer that persons may request themselves has this id"})
    elif commune and not offer_covers(session, offer, commune):
        errors.append({"field": "commune_insee", "message": "this offer is not available in this commune"})
    if not (person.get("email") or person.get("phone")):
        errors.append({"field": "email", "message": "give an email address or a phone number to be contacted"})
    if message is not None and len(message) > MAX_MESSAGE:
        errors.append({"field": "message", "message": f"at most {MAX_MESSAGE} characters"})
    return errors


def request_offer(session: Session, ctx: EngineContext, *, offer_id: str, person: dict[str, Any],
                  message: str | None, consent: bool) -> Prescription:
    """A person asks for an offer themself: it reaches the provider's queue like a prescription."""
    errors = request_errors(session, offer_id=offer_id, person=person, message=message, consent=consent)
    if errors:
        raise InvalidInput("the request cannot be sent", errors)
    offer = offer_by_di_id(session, offer_id)
    now = ctx.clock.now(session)
    today = session.scalar(select(func.count()).select_from(Prescription).where(
        Prescription.offer_id == offer.id, Prescription.origin == "self",
        Prescription.created_at >= now - timedelta(days=1)))
    if today >= PUBLIC_REQUESTS_PER_OFFER_PER_DAY:
        raise TooManyAttempts("this offer has received many requests today; try again tomorrow "
                              "or ask a professional to send it")
    contact = {k: person[k] for k in ("first_name", "last_name", "email", "phone", "commune_insee") if person.get(k)}
    prescription = Prescription(
        offer=offer, structure_id=offer.structure_id, origin="self", person_contact=contact, consent=True,
        consent_at=now, message=message or None, state=OPEN, created_at=now,
        expires_at=add_iso_duration(now, EXPIRY))
    session.add(prescription)
    session.flush()
    _start_lifecycle(session, ctx, prescription, actor="public")
    return prescription


# --- The row and the timeline follow the lifecycle case -------------------------------------------

_ANSWERING = "spie.prescriptions.answering"
_WATCHED_EVENTS = {("timer_fired", REMINDER_TIMER), ("timer_fired", EXPIRY_TIMER),
                   ("message_delivered", WAIT_TASK), ("task_created", REMINDER_TASK)}


@before_rows_written
def _follow_lifecycle(session: Session, tasks: list[dict], events: list[dict]) -> None:
    """Move prescription rows as their lifecycle cases fire timers, in the same transaction (see module doc)."""
    watched = ([e for e in events if (e["kind"], e["bpmn_id"]) in _WATCHED_EVENTS]
               + [t for t in tasks if t["bpmn_id"] == REMINDER_TASK])
    if not watched:
        return
    rows = {p.workflow_case_id: p for p in session.scalars(
        select(Prescription).where(Prescription.workflow_case_id.in_({o["case_id"] for o in watched})))}
    for item in watched:
        prescription = rows.get(item["case_id"])
        if prescription is None:
            continue
        if "kind" not in item:  # the reminder task goes to the provider itself, not a structure of its type
            item["structure_id"] = prescription.structure_id
        elif item["kind"] == "task_created":
            item["summary"] = {**item["summary"], "structure_id": prescription.structure_id}
        elif item["kind"] == "message_delivered":
            if item["case_id"] not in session.info.get(_ANSWERING, ()):
                raise Conflict(f"answer prescription {prescription.id} with POST /api/v1/prescriptions/"
                               f"{prescription.id}/accept or /refuse")
        elif item["bpmn_id"] == REMINDER_TIMER and prescription.state == OPEN:
            prescription.reminders += 1
            prescription.reminded_at = item["at"]
            _on_timeline(session, prescription, "prescription_reminded", item["at"], item["actor"])
        elif item["bpmn_id"] == EXPIRY_TIMER and prescription.state == OPEN:
            prescription.state, prescription.expired_at = "expiree", item["at"]
            _on_timeline(session, prescription, "prescription_expired", item["at"], item["actor"])


def _on_timeline(session: Session, prescription: Prescription, kind: str, at: datetime, actor: str) -> None:
    if prescription.case_id is None:
        return
    offer = prescription.offer
    summary = {"prescription_id": prescription.id, "offer_id": offer.di_id, "offer": offer.name,
               "structure_id": prescription.structure_id, "provider": offer.provider.name,
               "state": prescription.state}
    if prescription.frein:
        summary["frein"] = prescription.frein
    if prescription.refusal_reason:
        summary.update(reason=prescription.refusal_reason, reason_label=REFUSAL_REASONS[prescription.refusal_reason])
    session.add(CaseEvent(case_id=prescription.case_id, at=at, actor=actor, kind=kind, summary=summary))


# --- Reading --------------------------------------------------------------------------------------


def person_of(session: Session, prescription: Prescription) -> dict[str, Any] | None:
    """Who the provider should take in: the case's person (names, commune, contact) or the self-request's."""
    if prescription.origin == "self":
        return dict(prescription.person_contact or {})
    case = session.get(Case, prescription.case_id) if prescription.case_id else None
    person = session.get(Person, case.person_id) if case is not None and case.person_id else None
    if person is None:
        return None
    out = {"first_name": person.first_name, "last_name": person.last_name, "commune_insee": person.commune_insee}
    out.update({k: v for k, v in (person.contact or {}).items() if k in ("email", "phone") and v})
    return out


def prescription_out(session: Session, prescription: Prescription) -> dict[str, Any]:
    offer = prescription.offer
    prescriber = prescription.prescriber
    prescriber_structure = (session.get(Structure, prescription.prescriber_structure_id)
                            if prescription.prescriber_structure_id else None)
    return {
        "id": prescription.id,
        "state": prescription.state,
        "state_label": STATES[prescription.state],
        "origin": prescription.origin,
        "offer": {"id": offer.di_id, "nom": offer.name},
        "provider": _structure_ref(prescription.provider),
        "case_id": prescription.case_id,
        "prescriber": None if prescriber is None else {"id": prescriber.id, "name": prescriber.name,
                                                        "email": prescriber.email},
        "prescriber_structure": _structure_ref(prescriber_structure),
        "person": person_of(session, prescription),
        "frein": prescription.frein,
        "message": prescription.message,
        "consent": prescription.consent,
        "refusal_reason": prescription.refusal_reason,
        "refusal_reason_label": REFUSAL_REASONS.get(prescription.refusal_reason or ""),
        "answer_message": prescription.answer_message,
        "created_at": prescription.created_at,
        "expires_at": prescription.expires_at,
        "answered_at": prescription.answered_at,
        "expired_at": prescription.expired_at,
        "reminders": prescription.reminders,
        "reminded_at": prescription.reminded_at,
    }


def _structure_ref(structure: Structure | None) -> dict | None:
    return None if structure is None else {"id": structure.id, "name": structure.name, "type": structure.type}
