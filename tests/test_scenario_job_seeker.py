"""Scenario: a job seeker with a childcare barrier (demandeur-emploi-freins), over simulated weeks.

Global accompaniment: a France Travail conseiller and a social référent (the
CCAS where one covers the commune, else the Département) are on the care
team together. The social référent prescribes an offer from the catalogue; an
unanswered prescription is reminded at 10 days and expires at 30 days; on
another case the provider answers through the ``reponse-prescription`` message.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from engine import cases, runtime, simulation
from engine.db import transaction
from engine.directory import Structure, User
from engine.errors import Conflict
from engine.models import Case, HumanTask, Timer
from engine.offers import seed_demo_offers
from engine.people import CareTeamMember
from engine.prescriptions import Prescription
from engine.timeutil import add_iso_duration
from tests.spie_support import (EVRY, complete, events, open_rows, seed_and_deploy, spie_context, staff, start_for,
                                structure, team)

CORBEIL = "91174"

# Corbeil-Essonnes: the CCAS is the social référent; Évry-Courcouronnes has no CCAS: the Département.
AMINATA = {"first_name": "Aminata", "last_name": "Diallo", "birth_date": "1990-04-18", "commune_insee": CORBEIL}
KEVIN = {"first_name": "Kévin", "last_name": "Lambert", "birth_date": "1987-12-01", "commune_insee": EVRY}

CHILDCARE = {"offer_id": "demo--garde-enfants-essonne", "frein": "contraintes_familiales",
             "message": "Deux enfants de 1 et 3 ans, reprise d'emploi visée au printemps."}
DRIVING_SCHOOL = {"offer_id": "demo--auto-ecole-sociale-grand-paris-sud", "frein": "mobilite",
                  "message": "Permis B nécessaire pour les horaires décalés."}
REMINDER = {"moyen": "telephone", "commentaire": "Crèche relancée, dossier en commission."}


@dataclass
class Accompaniment:
    france_travail: Structure
    counsellor: User
    social: Structure
    social_referent: User


@pytest.fixture
def ctx():
    return spie_context()


def seed_with_catalogue(session_factory, ctx) -> None:
    """The demo directory and pathways, and the demo offer catalogue the référent prescribes from."""
    seed_and_deploy(session_factory, ctx)
    with session_factory() as session, transaction(session):
        seed_demo_offers(session, ctx.clock.now(session))


def accompaniment(session_factory, commune: str, social_type: str) -> Accompaniment:
    france_travail = structure(session_factory, "france-travail", commune)
    social = structure(session_factory, social_type, commune)
    return Accompaniment(france_travail, staff(session_factory, france_travail.id), social,
                         staff(session_factory, social.id))


def today(session_factory, ctx) -> str:
    with session_factory() as session:
        return ctx.clock.now(session).date().isoformat()


def task_data(session_factory, ctx, row: HumanTask) -> dict:
    with session_factory() as session:
        loaded = runtime.load_case(session, ctx, row.case_id)
        return dict(runtime.find_task(loaded, row.task_uuid).data)


def timers(session_factory, case_id: int) -> dict[str, Timer]:
    with session_factory() as session:
        return {t.bpmn_id: t for t in session.scalars(select(Timer).where(Timer.case_id == case_id).order_by(Timer.id))}


def active_members(session_factory, case_id: int) -> list[CareTeamMember]:
    with session_factory() as session:
        return list(session.scalars(select(CareTeamMember).where(
            CareTeamMember.case_id == case_id, CareTeamMember.ended_at.is_(None))))


def case_status(session_factory, case_id: int) -> str:
    with session_factory() as session:
        return session.get(Case, case_id).status


def deliver(session_factory, ctx, case_id: int, payload: dict, actor: str) -> None:
    with session_factory() as session, transaction(session):
        cases.deliver_message(session, ctx, case_id, "reponse-prescription", payload, actor=actor)


def set_up_global_accompaniment(session_factory, ctx, person: dict, who: Accompaniment) -> int:
    """France Travail opens the case; each structure names its référent; both are then on the care team."""
    case_id = start_for(session_factory, ctx, "demandeur-emploi-freins", person, who.counsellor)
    rows = open_rows(session_factory, case_id)
    assert set(rows) == {"designer-conseiller", "designer-referent-social"}
    conseiller, social = rows["designer-conseiller"], rows["designer-referent-social"]
    assert (conseiller.structure_id, conseiller.assignee, conseiller.state) == (
        who.france_travail.id, who.counsellor.email, "claimed")
    assert (social.structure_id, social.assignee, social.state) == (who.social.id, None, "open")

    complete(session_factory, ctx, conseiller, who.counsellor,
             {"referent_email": who.counsellor.email, "date_designation": today(session_factory, ctx)})
    assert team(session_factory, case_id) == [("france-travail", who.counsellor.email)]
    simulation.advance(session_factory, ctx, "P3D")
    complete(session_factory, ctx, social, who.social_referent,
             {"referent_email": who.social_referent.email, "date_designation": today(session_factory, ctx)})

    assert sorted(team(session_factory, case_id)) == sorted([("france-travail", who.counsellor.email),
                                                             (who.social.type, who.social_referent.email)])
    joined = [e.summary["user"] for e in events(session_factory, case_id, "referent_joined")]
    assert joined == [who.counsellor.email, who.social_referent.email]  # the conseiller joined once
    return case_id


def prescribe(session_factory, ctx, case_id: int, who: Accompaniment, offer: dict):
    prescription = open_rows(session_factory, case_id)["prescrire-offre"]
    assert (prescription.structure_id, prescription.assignee, prescription.form_key) == (
        who.social.id, who.social_referent.email, "prescription")
    complete(session_factory, ctx, prescription, who.social_referent, offer)
    with session_factory() as session:  # the task's offer went to its provider (spie:action="prescribe")
        sent = session.scalar(select(Prescription).where(Prescription.task_id == prescription.id))
        assert (sent.offer.di_id, sent.state, sent.case_waits) == (offer["offer_id"], "ouverte", True)
        return ctx.clock.now(session)


def test_unanswered_childcare_prescription_is_reminded_then_expires(session_factory, ctx):
    seed_with_catalogue(session_factory, ctx)
    who = accompaniment(session_factory, CORBEIL, "ccas")
    assert who.social.name == "CCAS de Corbeil-Essonnes"
    case_id = set_up_global_accompaniment(session_factory, ctx, AMINATA, who)

    simulation.advance(session_factory, ctx, "P2D")
    prescribed_at = prescribe(session_factory, ctx, case_id, who, CHILDCARE)
    waiting = timers(session_factory, case_id)
    assert {k: (t.due_at, t.state) for k, t in waiting.items()} == {
        "relance-10-jours": (add_iso_duration(prescribed_at, "P10D"), "waiting"),
        "expiration-30-jours": (add_iso_duration(prescribed_at, "P30D"), "waiting"),
    }

    # No answer: nothing at nine days, a reminder for the prescriber at ten.
    simulation.advance(session_factory, ctx, "P9D")
    assert open_rows(session_factory, case_id) == {}
    simulation.advance(session_factory, ctx, "P1D")
    reminder = open_rows(session_factory, case_id)["relancer-prestataire"]
    assert (reminder.structure_id, reminder.assignee) == (who.social.id, who.social_referent.email)
    complete(session_factory, ctx, reminder, who.social_referent,
             {**REMINDER, "date_relance": today(session_factory, ctx)})

    # Still no answer: the prescription expires at thirty days and the référent takes stock with the person.
    simulation.advance(session_factory, ctx, "P19D")
    assert open_rows(session_factory, case_id) == {}
    simulation.advance(session_factory, ctx, "P1D")
    review = open_rows(session_factory, case_id)["faire-le-point"]
    assert (review.structure_id, review.assignee) == (who.social.id, who.social_referent.email)
    assert task_data(session_factory, ctx, review)["reponse_prescription"] == {"statut": "expiree"}
    assert {k: t.state for k, t in timers(session_factory, case_id).items()} == {
        "relance-10-jours": "fired", "expiration-30-jours": "fired"}
    assert [e.bpmn_id for e in events(session_factory, case_id, "timer_fired")] == [
        "relance-10-jours", "expiration-30-jours"]

    # Both référents were on the care team together the whole time.
    assert {m.structure_id for m in active_members(session_factory, case_id)} == {who.france_travail.id, who.social.id}
    complete(session_factory, ctx, review, who.social_referent,
             {"date_bilan": today(session_factory, ctx), "personne_entree_dans_l_offre": False,
              "suite": "fin-prescriptions", "commentaire": "Assistante maternelle trouvée par la famille."})
    assert case_status(session_factory, case_id) == "closed"
    assert team(session_factory, case_id) == []


def test_provider_answers_through_the_reponse_prescription_message(session_factory, ctx):
    seed_with_catalogue(session_factory, ctx)
    who = accompaniment(session_factory, EVRY, "departement")
    assert who.social.name == "Département de l'Essonne — MDS Centre"
    case_id = set_up_global_accompaniment(session_factory, ctx, KEVIN, who)

    # The crèche accepts within four days: no reminder, no expiry.
    prescribe(session_factory, ctx, case_id, who, CHILDCARE)
    simulation.advance(session_factory, ctx, "P4D")
    deliver(session_factory, ctx, case_id, {"statut": "acceptee"}, actor="integration.dora")
    review = open_rows(session_factory, case_id)["faire-le-point"]
    assert (review.structure_id, review.assignee) == (who.social.id, who.social_referent.email)
    data = task_data(session_factory, ctx, review)
    assert (data["reponse_prescription"], data["prescriptions"]) == ({"statut": "acceptee"}, 1)
    assert {t.state for t in timers(session_factory, case_id).values()} == {"cancelled"}
    [delivered] = events(session_factory, case_id, "message_delivered")
    assert (delivered.summary["message"], delivered.actor) == ("reponse-prescription", "integration.dora")
    with pytest.raises(Conflict, match="not waiting for message"):
        deliver(session_factory, ctx, case_id, {"statut": "acceptee"}, actor="integration.dora")

    simulation.advance(session_factory, ctx, "P40D")
    assert set(open_rows(session_factory, case_id)) == {"faire-le-point"}  # no reminder ever came
    complete(session_factory, ctx, review, who.social_referent,
             {"date_bilan": today(session_factory, ctx), "personne_entree_dans_l_offre": True,
              "suite": "nouvelle-prescription"})

    # A second barrier: the driving school refuses; the référent takes stock again, then ends.
    prescribe(session_factory, ctx, case_id, who, DRIVING_SCHOOL)
    simulation.advance(session_factory, ctx, "P12D")
    reminder = open_rows(session_factory, case_id)["relancer-prestataire"]
    deliver(session_factory, ctx, case_id, {"statut": "refusee", "motif": "Session complète"}, actor="integration.dora")
    rows = open_rows(session_factory, case_id)
    assert set(rows) == {"faire-le-point", "relancer-prestataire"}  # the reminder was already given out
    assert rows["relancer-prestataire"].id == reminder.id
    data = task_data(session_factory, ctx, rows["faire-le-point"])
    assert data["reponse_prescription"] == {"statut": "refusee", "motif": "Session complète"}
    assert data["prescriptions"] == 2
    complete(session_factory, ctx, reminder, who.social_referent,
             {**REMINDER, "date_relance": today(session_factory, ctx)})
    assert sorted(team(session_factory, case_id)) == sorted([("france-travail", who.counsellor.email),
                                                             ("departement", who.social_referent.email)])
    complete(session_factory, ctx, rows["faire-le-point"], who.social_referent,
             {"date_bilan": today(session_factory, ctx), "suite": "fin-prescriptions"})
    assert case_status(session_factory, case_id) == "closed"
    assert [e.summary["user"] for e in events(session_factory, case_id, "referent_left")] == [
        who.counsellor.email, who.social_referent.email]
