"""Prescriptions over simulated time: reminder at 10 days, expiry at 30, acceptance, refusal, self-requests.

The lifecycle is an engine case of bpmn/prescription-offre.bpmn; the prescribing case is a
job seeker with a childcare barrier (demandeur-emploi-freins) at Évry-Courcouronnes, whose
social référent is the Département (MDS Centre); the childcare scheme is the CAF's.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from engine import cases, prescriptions, runtime, simulation
from engine.accounts import TooManyAttempts
from engine.db import transaction
from engine.directory import User, user_by_email
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import Case, CaseEvent, HumanTask, Timer
from engine.offers import seed_demo_offers
from engine.prescriptions import Prescription, PublicRequestHit, PublicRequestSalt
from engine.timeutil import add_iso_duration
from tests.spie_support import (EVRY, complete, events, open_rows, seed_and_deploy, spie_context, staff, start_for,
                                structure)

KEVIN = {"first_name": "Kévin", "last_name": "Lambert", "birth_date": "1987-12-01", "commune_insee": EVRY}
CHILDCARE = "demo--garde-enfants-essonne"
DRIVING = "demo--auto-ecole-sociale-grand-paris-sud"
BUDGET = "demo--point-conseil-budget-draveil"
CAF_REFERENT, CAF_SUPERVISOR = "referent.caf@example.org", "superviseur.caf@example.org"
CD_REFERENT = "referent.mds-centre@example.org"
ML_REFERENT = "referent.ml-centre-essonne@example.org"
VISITOR = {"first_name": "Awa", "email": "awa@example.org", "commune_insee": EVRY}


@pytest.fixture
def ctx():
    return spie_context()


@pytest.fixture
def world(session_factory, ctx):
    seed_and_deploy(session_factory, ctx)
    with session_factory() as session, transaction(session):
        seed_demo_offers(session, datetime(2026, 11, 1, tzinfo=timezone.utc))


def user(session_factory, email: str) -> User:
    with session_factory() as session:
        return user_by_email(session, email)


def now(session_factory, ctx) -> datetime:
    with session_factory() as session:
        return ctx.clock.now(session)


def today(session_factory, ctx) -> str:
    return now(session_factory, ctx).date().isoformat()


def job_seeker_at_prescription(session_factory, ctx) -> int:
    """A demandeur-emploi-freins case whose social référent has the task "Prescrire une offre"."""
    france_travail = structure(session_factory, "france-travail", EVRY)
    counsellor = staff(session_factory, france_travail.id)
    social = user(session_factory, CD_REFERENT)
    case_id = start_for(session_factory, ctx, "demandeur-emploi-freins", KEVIN, counsellor)
    rows = open_rows(session_factory, case_id)
    complete(session_factory, ctx, rows["designer-conseiller"], counsellor,
             {"referent_email": counsellor.email, "date_designation": today(session_factory, ctx)})
    complete(session_factory, ctx, rows["designer-referent-social"], social,
             {"referent_email": social.email, "date_designation": today(session_factory, ctx)})
    assert "prescrire-offre" in open_rows(session_factory, case_id)
    return case_id


def prescribe(session_factory, ctx, case_id: int, offer_id: str = CHILDCARE, email: str = CD_REFERENT,
              **options) -> int:
    with session_factory() as session, transaction(session):
        return prescriptions.prescribe(session, ctx, session.merge(user(session_factory, email)), case_id=case_id,
                                       offer_id=offer_id, **options).id


def answer(session_factory, ctx, prescription_id: int, email: str = CAF_REFERENT, reason: str | None = None,
           message: str | None = None) -> Prescription:
    with session_factory() as session, transaction(session):
        who = session.merge(user(session_factory, email))
        if reason is None:
            return prescriptions.accept(session, ctx, who, prescription_id, message)
        return prescriptions.refuse(session, ctx, who, prescription_id, reason, message)


def row(session_factory, prescription_id: int) -> Prescription:
    with session_factory() as session:
        return session.get(Prescription, prescription_id)


def kinds(session_factory, case_id: int, prefix: str = "prescription_") -> list[str]:
    return [e.kind for e in events(session_factory, case_id) if e.kind.startswith(prefix)]


def case_data(session_factory, ctx, case_id: int, bpmn_id: str) -> dict:
    with session_factory() as session:
        loaded = runtime.load_case(session, ctx, case_id)
        [task] = [t for t in loaded.workflow.get_tasks() if t.task_spec.bpmn_id == bpmn_id]
        return dict(task.data)


def workflow(session_factory, prescription_id: int) -> tuple[Case, dict[str, Timer], dict[str, HumanTask]]:
    with session_factory() as session:
        case_id = session.get(Prescription, prescription_id).workflow_case_id
        timers = {t.bpmn_id: t for t in session.scalars(select(Timer).where(Timer.case_id == case_id))}
        tasks = {t.bpmn_id: t for t in session.scalars(select(HumanTask).where(HumanTask.case_id == case_id))}
        return session.get(Case, case_id), timers, tasks


def test_unanswered_prescription_is_reminded_at_10_days_then_expires_at_30(session_factory, ctx, world):
    case_id = job_seeker_at_prescription(session_factory, ctx)
    sent_at = now(session_factory, ctx)
    prescription_id = prescribe(session_factory, ctx, case_id, frein="contraintes_familiales",
                                message="Deux enfants de 1 et 3 ans, reprise d'emploi au printemps.")

    # The case's task was the prescription: the case now waits for the provider's answer.
    rows = open_rows(session_factory, case_id)
    assert "prescrire-offre" not in rows
    assert case_data(session_factory, ctx, case_id, "prescrire-offre")["offer_id"] == CHILDCARE
    sent = row(session_factory, prescription_id)
    assert (sent.state, sent.case_waits, sent.origin, sent.frein) == ("ouverte", True, "referent",
                                                                       "contraintes_familiales")
    assert sent.expires_at == add_iso_duration(sent_at, "P30D")
    lifecycle, timers, _ = workflow(session_factory, prescription_id)
    assert lifecycle.status == "active" and lifecycle.person_id is None
    assert {k: (t.due_at, t.state) for k, t in timers.items()} == {
        "prescription-relance": (add_iso_duration(sent_at, "P10D"), "waiting"),
        "prescription-expiration": (add_iso_duration(sent_at, "P30D"), "waiting")}
    assert kinds(session_factory, case_id) == ["prescription_sent"]
    [sent_event] = events(session_factory, case_id, "prescription_sent")
    assert sent_event.summary["offer"] == "Solution garde d'enfants pour la reprise d'emploi"
    assert sent_event.summary["provider"] == "CAF de l'Essonne" and sent_event.actor == CD_REFERENT

    simulation.advance(session_factory, ctx, "P9D")
    assert row(session_factory, prescription_id).reminders == 0
    simulation.advance(session_factory, ctx, "P1D")
    reminded = row(session_factory, prescription_id)
    assert (reminded.state, reminded.reminders) == ("ouverte", 1)
    assert reminded.reminded_at == add_iso_duration(sent_at, "P10D") + timedelta(microseconds=1)
    assert kinds(session_factory, case_id) == ["prescription_sent", "prescription_reminded"]
    # The reminder is a task of the provider itself (not of any structure of its type).
    caf = structure(session_factory, "caf", EVRY)
    _, _, tasks = workflow(session_factory, prescription_id)
    reminder = tasks["prescription-traiter-relance"]
    assert (reminder.structure_id, reminder.state, reminder.form_key) == (caf.id, "open", "relance-prescription")
    assert reminder.due_at == add_iso_duration(sent_at, "P30D") + timedelta(microseconds=1)
    with session_factory() as session:
        [created] = [e for e in session.scalars(select(CaseEvent).where(CaseEvent.case_id == reminder.case_id,
                                                                        CaseEvent.kind == "task_created"))]
        assert created.summary["structure_id"] == caf.id
    # The CAF says where it stands; the prescription stays open.
    with session_factory() as session, transaction(session):
        cases.complete_task(session, ctx, reminder.id, {"point_demande": "etude-en-cours",
                                                        "date_reponse_prevue": "2026-02-10"}, user=CAF_REFERENT)
    assert row(session_factory, prescription_id).state == "ouverte"

    simulation.advance(session_factory, ctx, "P19D")
    assert row(session_factory, prescription_id).state == "ouverte"
    simulation.advance(session_factory, ctx, "P1D")
    expired = row(session_factory, prescription_id)
    assert (expired.state, expired.answered_at) == ("expiree", None)
    assert expired.expired_at == add_iso_duration(sent_at, "P30D") + timedelta(microseconds=1)
    assert kinds(session_factory, case_id) == ["prescription_sent", "prescription_reminded", "prescription_expired"]
    lifecycle, timers, _ = workflow(session_factory, prescription_id)
    assert lifecycle.status == "closed" and {t.state for t in timers.values()} == {"fired"}
    # The pathway's own 30-day expiry took the case on: the référent takes stock with the person.
    assert "faire-le-point" in open_rows(session_factory, case_id)
    assert case_data(session_factory, ctx, case_id, "faire-le-point")["reponse_prescription"] == {
        "statut": "expiree"}
    with pytest.raises(Conflict, match="already expirée"):
        answer(session_factory, ctx, prescription_id)


def test_provider_accepts_and_the_waiting_case_receives_the_answer(session_factory, ctx, world):
    case_id = job_seeker_at_prescription(session_factory, ctx)
    prescription_id = prescribe(session_factory, ctx, case_id, frein="contraintes_familiales")
    simulation.advance(session_factory, ctx, "P4D")
    accepted = answer(session_factory, ctx, prescription_id, email=CAF_SUPERVISOR, message="Place en crèche le 2/02.")
    assert (accepted.state, accepted.answer_message) == ("validee", "Place en crèche le 2/02.")
    assert accepted.answered_at == now(session_factory, ctx)
    assert accepted.answered_by_id == user(session_factory, CAF_SUPERVISOR).id

    lifecycle, timers, _ = workflow(session_factory, prescription_id)
    assert lifecycle.status == "closed" and {t.state for t in timers.values()} == {"cancelled"}
    assert case_data(session_factory, ctx, lifecycle.id, "prescription-fin-validee")["statut"] == "validee"
    # The job seeker's case got the answer as its message, and the référent takes stock.
    assert "faire-le-point" in open_rows(session_factory, case_id)
    response = case_data(session_factory, ctx, case_id, "faire-le-point")["reponse_prescription"]
    assert (response["statut"], response["prescription_id"], response["motif"]) == ("acceptee", prescription_id, None)
    assert kinds(session_factory, case_id) == ["prescription_sent", "prescription_accepted"]
    [delivered] = events(session_factory, case_id, "message_delivered")
    assert (delivered.summary["message"], delivered.actor) == ("reponse-prescription", CAF_SUPERVISOR)

    simulation.advance(session_factory, ctx, "P40D")  # no reminder, no expiry after the answer
    assert row(session_factory, prescription_id).state == "validee"
    assert kinds(session_factory, case_id) == ["prescription_sent", "prescription_accepted"]
    with pytest.raises(Conflict, match="already validée"):
        answer(session_factory, ctx, prescription_id, reason="session-complete")


def test_provider_refuses_with_a_dora_reason_after_the_reminder(session_factory, ctx, world):
    case_id = job_seeker_at_prescription(session_factory, ctx)
    prescription_id = prescribe(session_factory, ctx, case_id)
    simulation.advance(session_factory, ctx, "P12D")
    _, _, tasks = workflow(session_factory, prescription_id)
    assert tasks["prescription-traiter-relance"].state == "open"

    with pytest.raises(InvalidInput) as unknown:
        answer(session_factory, ctx, prescription_id, reason="pas-envie")
    assert unknown.value.errors[0]["field"] == "reason"
    with pytest.raises(InvalidInput) as unexplained:
        answer(session_factory, ctx, prescription_id, reason="autre")
    assert unexplained.value.errors[0]["field"] == "message"

    refused = answer(session_factory, ctx, prescription_id, reason="session-complète")  # DORA's spelling
    assert (refused.state, refused.refusal_reason) == ("refusee", "session-complete")
    lifecycle, _, tasks = workflow(session_factory, prescription_id)
    assert lifecycle.status == "closed"
    assert tasks["prescription-traiter-relance"].state == "cancelled"  # the answer ends the reminder too
    assert case_data(session_factory, ctx, lifecycle.id, "prescription-fin-refusee")["motif"] == "session-complete"
    response = case_data(session_factory, ctx, case_id, "faire-le-point")["reponse_prescription"]
    assert (response["statut"], response["motif"], response["motif_code"]) == (
        "refusee", "La session est complète", "session-complete")
    assert kinds(session_factory, case_id) == ["prescription_sent", "prescription_reminded", "prescription_refused"]
    [refusal] = events(session_factory, case_id, "prescription_refused")
    assert refusal.summary["reason"] == "session-complete" and refusal.summary["state"] == "refusee"


def test_prescription_from_the_case_page_leaves_the_case_tasks_alone(session_factory, ctx, world):
    ml = structure(session_factory, "mission-locale", EVRY)
    referent = staff(session_factory, ml.id)
    case_id = start_for(session_factory, ctx, "jeune-sortant-mission-locale",
                        {**KEVIN, "birth_date": "2000-09-30"}, referent)
    before = set(open_rows(session_factory, case_id))
    prescription_id = prescribe(session_factory, ctx, case_id, offer_id=DRIVING, email=referent.email,
                                frein="mobilite")
    assert set(open_rows(session_factory, case_id)) == before
    assert row(session_factory, prescription_id).case_waits is False
    with pytest.raises(Conflict, match="still open"):
        prescribe(session_factory, ctx, case_id, offer_id=DRIVING, email=referent.email)

    mdef = row(session_factory, prescription_id).structure_id
    provider = staff(session_factory, mdef)
    assert answer(session_factory, ctx, prescription_id, email=provider.email).state == "validee"
    assert set(open_rows(session_factory, case_id)) == before  # no message for a case that does not wait
    assert kinds(session_factory, case_id) == ["prescription_sent", "prescription_accepted"]


def test_who_sees_prescribes_and_answers(session_factory, ctx, world):
    case_id = job_seeker_at_prescription(session_factory, ctx)
    outsider = ML_REFERENT  # not on this case's care team
    with pytest.raises(NotFound):
        prescribe(session_factory, ctx, case_id, email=outsider)
    with pytest.raises(InvalidInput) as unknown:
        prescribe(session_factory, ctx, case_id, offer_id="demo--inconnue")
    assert unknown.value.errors[0]["field"] == "offer_id"
    prescription_id = prescribe(session_factory, ctx, case_id)

    with session_factory() as session:
        def visible(email):
            return [p.id for p in session.scalars(prescriptions.visible_prescriptions(user_by_email(session, email)))]

        assert visible(CAF_REFERENT) == [prescription_id]  # the provider's queue
        assert visible(CD_REFERENT) == [prescription_id]  # the prescriber sees the case
        assert visible(outsider) == []
        prescription = session.get(Prescription, prescription_id)
        assert prescriptions.may_answer(user_by_email(session, CAF_REFERENT), prescription)
        assert not prescriptions.may_answer(user_by_email(session, CD_REFERENT), prescription)
        shown = prescriptions.prescription_out(session, prescription)
        assert shown["person"] == {"first_name": "Kévin", "last_name": "Lambert", "commune_insee": EVRY}
        assert shown["prescriber"]["email"] == CD_REFERENT and shown["provider"]["name"] == "CAF de l'Essonne"
    with pytest.raises(NotFound):
        answer(session_factory, ctx, prescription_id, email=CD_REFERENT)
    with pytest.raises(NotFound):
        answer(session_factory, ctx, prescription_id, email=outsider)

    # The answer only goes through the prescription: a message sent straight to its case is refused.
    lifecycle, _, _ = workflow(session_factory, prescription_id)
    with pytest.raises(Conflict, match="accept or /refuse"):
        with session_factory() as session, transaction(session):
            cases.deliver_message(session, ctx, lifecycle.id, "reponse-prescription", {"statut": "acceptee"},
                                  actor=CAF_REFERENT)
    assert row(session_factory, prescription_id).state == "ouverte"
    assert workflow(session_factory, prescription_id)[0].status == "active"


# --- Self-requests ---------------------------------------------------------------------------------


def request(session_factory, ctx, offer_id: str = CHILDCARE, consent: bool = True, **person) -> int:
    with session_factory() as session, transaction(session):
        return prescriptions.request_offer(session, ctx, offer_id=offer_id, person={**VISITOR, **person},
                                           message="Je reprends un travail en mars.", consent=consent).id


def test_a_self_request_reaches_the_provider_queue_and_follows_the_same_lifecycle(session_factory, ctx, world):
    request_id = request(session_factory, ctx)
    sent = row(session_factory, request_id)
    assert (sent.origin, sent.case_id, sent.prescriber_id, sent.consent, sent.state) == (
        "self", None, None, True, "ouverte")
    assert sent.person_contact == VISITOR and sent.consent_at == now(session_factory, ctx)
    with session_factory() as session:
        queue = session.scalars(prescriptions.visible_prescriptions(user_by_email(session, CAF_REFERENT))).all()
        assert [p.id for p in queue] == [request_id]
        assert session.scalars(prescriptions.visible_prescriptions(user_by_email(session, CD_REFERENT))).all() == []
        assert prescriptions.person_of(session, queue[0]) == VISITOR

    simulation.advance(session_factory, ctx, "P10D")
    assert row(session_factory, request_id).reminders == 1
    simulation.advance(session_factory, ctx, "P20D")
    assert row(session_factory, request_id).state == "expiree"

    second = request(session_factory, ctx, phone="06 12 34 56 78", email=None)
    assert answer(session_factory, ctx, second, reason="beneficiaire-non-eligible").state == "refusee"


@pytest.mark.parametrize("change, field", [
    ({"consent": False}, "consent"),
    ({"offer_id": DRIVING}, "offer_id"),  # référents only
    ({"offer_id": BUDGET}, "commune_insee"),  # Draveil only
    ({"email": None}, "email"),  # no way to answer
])
def test_a_self_request_needs_consent_contact_and_an_offer_open_to_persons_here(session_factory, ctx, world,
                                                                                change, field):
    with pytest.raises(InvalidInput) as refused:
        request(session_factory, ctx, **change)
    assert field in {e["field"] for e in refused.value.errors}
    with session_factory() as session:
        assert session.scalars(select(Prescription)).all() == []


def test_public_requests_are_rate_limited_by_a_daily_salted_hash_of_the_address(session_factory):
    start = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)

    def hit(address: str, at: datetime) -> None:
        with session_factory() as session, transaction(session):
            prescriptions.throttle_public_request(session, address, at)

    for minute in range(prescriptions.PUBLIC_REQUESTS_PER_HOUR):
        hit("203.0.113.7", start + timedelta(minutes=minute))
    with pytest.raises(TooManyAttempts):
        hit("203.0.113.7", start + timedelta(minutes=10))
    hit("198.51.100.1", start + timedelta(minutes=10))  # another address is not limited
    hit("203.0.113.7", start + timedelta(hours=1, minutes=5))  # an hour later
    with session_factory() as session:
        stored = session.scalars(select(PublicRequestHit.address_hash)).all()
        assert len(stored) == 7 and len(set(stored)) == 2
        assert all("203.0.113.7" not in h and len(h) == 64 for h in stored)
        assert [s.day for s in session.scalars(select(PublicRequestSalt))] == [start.date()]

    # Next day: a new salt, the old one deleted (yesterday's hashes can no longer be linked to anyone),
    # yesterday's hits deleted after a day.
    tomorrow = start + timedelta(days=1, hours=2)
    hit("203.0.113.7", tomorrow)
    with session_factory() as session:
        assert [s.day for s in session.scalars(select(PublicRequestSalt))] == [tomorrow.date()]
        assert len(session.scalars(select(PublicRequestHit)).all()) == 1
