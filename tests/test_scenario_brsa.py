"""Scenario: an RSA beneficiary oriented social, over simulated months (brsa-oriente-social).

The social référent is the CCAS of the commune when it has the Département's
delegation (Corbeil-Essonnes), else the Département's service covering the
commune (Évry-Courcouronnes has no CCAS: MDS Centre). One month after the
orientation without a first meeting, the structure's supervisors are asked;
the contract follows; the review comes six months after the contract. The
review then either reorients the person to France Travail through an
overlapping hand-off, or closes on the "Sortie positive" branch, where only a
positive exit reason is accepted.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import simulation
from engine.directory import Structure, User
from engine.errors import Conflict
from engine.models import Case
from engine.people import CareTeamMember
from engine.timeutil import add_iso_duration
from tests.conftest import SIMULATION_START
from tests.spie_support import (EVRY, complete, events, open_rows, seed_and_deploy, spie_context, staff, start_for,
                                structure, team)

CORBEIL = "91174"

# Who the social référent is, by commune: the delegated CCAS, else the Département's MDS.
SOCIAL_REFERENT = {
    CORBEIL: ("ccas", "CCAS de Corbeil-Essonnes"),
    EVRY: ("departement", "Département de l'Essonne — MDS Centre"),
}
PEOPLE = {
    CORBEIL: {"first_name": "Nadia", "last_name": "Haddad", "birth_date": "1984-06-11", "commune_insee": CORBEIL},
    EVRY: {"first_name": "Sylvie", "last_name": "Morel", "birth_date": "1979-10-03", "commune_insee": EVRY},
}

FIRST_MEETING = {"modalite": "presentiel", "notes": "Hébergée chez sa sœur, deux enfants, pas de mode de garde."}
CONTRACT = {
    "type_contrat": "CER",
    "heures_activite_hebdomadaires": 15,
    "objectifs": [
        {"libelle": "Trouver une place en crèche pour le plus jeune", "theme": "contraintes_familiales"},
        {"libelle": "Déposer une demande de logement social", "theme": "logement"},
    ],
}
ESCALATION = {"action": "relance-effectuee", "commentaire": "Référente relancée, rendez-vous fixé."}
REORIENTATION = {"decision": "reorientation", "orientation_proposee": "pro", "diagnostic_conjoint": True,
                 "freins_leves": ["contraintes_familiales", "logement"], "motif": "Freins levés, projet d'emploi."}
EXIT_DECISION = {"decision": "sortie", "diagnostic_conjoint": True, "motif": "CDI d'aide à domicile signé."}
JOINT_MEETING = {"presence_personne": True, "presence_referent_origine": True, "presence_referent_accueil": True,
                 "compte_rendu": "Présentation de la conseillère France Travail, reprise du plan d'action."}


@dataclass
class Actors:
    social: Structure  # the social référent's structure (CCAS or Département)
    referent: User
    supervisor: User
    france_travail: Structure
    counsellor: User


@pytest.fixture
def ctx():
    return spie_context()


def actors(session_factory, commune: str) -> Actors:
    social_type, _ = SOCIAL_REFERENT[commune]
    social = structure(session_factory, social_type, commune)
    france_travail = structure(session_factory, "france-travail", commune)
    return Actors(social, staff(session_factory, social.id), staff(session_factory, social.id, "supervisor"),
                  france_travail, staff(session_factory, france_travail.id))


def today(session_factory, ctx) -> str:
    with session_factory() as session:
        return ctx.clock.now(session).date().isoformat()


def now(session_factory, ctx):
    with session_factory() as session:
        return ctx.clock.now(session)


def case_row(session_factory, case_id: int) -> Case:
    with session_factory() as session:
        return session.get(Case, case_id)


def members(session_factory, case_id: int) -> list[CareTeamMember]:
    with session_factory() as session:
        return list(session.scalars(select(CareTeamMember).where(CareTeamMember.case_id == case_id)
                                    .order_by(CareTeamMember.id)))


def hand_over_events(session_factory, case_id: int) -> list:
    return [e for e in events(session_factory, case_id) if e.kind in ("referent_joined", "referent_left")]


def start_to_review(session_factory, ctx, commune: str) -> tuple[int, Actors]:
    """Orientation, escalation at one month, first meeting, contract, then six months to the review."""
    seed_and_deploy(session_factory, ctx)
    who = actors(session_factory, commune)
    assert (who.social.type, who.social.name) == SOCIAL_REFERENT[commune]

    case_id = start_for(session_factory, ctx, "brsa-oriente-social", PEOPLE[commune], who.referent)
    first = open_rows(session_factory, case_id)["premier-rendez-vous"]
    assert (first.structure_id, first.assignee, first.state) == (who.social.id, who.referent.email, "claimed")
    assert first.due_at == add_iso_duration(SIMULATION_START, "P1M")
    assert team(session_factory, case_id) == [(who.social.type, who.referent.email)]

    # No first meeting after 30 days: nothing yet; at one month, the structure's supervisors are asked.
    simulation.advance(session_factory, ctx, "P30D")
    assert set(open_rows(session_factory, case_id)) == {"premier-rendez-vous"}
    simulation.advance(session_factory, ctx, "P1D")
    rows = open_rows(session_factory, case_id)
    assert set(rows) == {"premier-rendez-vous", "relancer-entree-accompagnement"}
    relance = rows["relancer-entree-accompagnement"]
    assert (relance.structure_id, relance.assignee, relance.state, relance.audience) == (
        who.social.id, None, "open", "supervisor")
    assert rows["premier-rendez-vous"].escalation_level == 1
    [fired] = events(session_factory, case_id, "timer_fired")
    assert fired.bpmn_id == "delai-un-mois"
    complete(session_factory, ctx, relance, who.supervisor, {**ESCALATION, "date_action": today(session_factory, ctx)})

    # The first meeting, then the contract, a few days later.
    simulation.advance(session_factory, ctx, "P2D")
    complete(session_factory, ctx, rows["premier-rendez-vous"], who.referent,
             {**FIRST_MEETING, "date_entretien": today(session_factory, ctx)})
    contract = open_rows(session_factory, case_id)["signer-contrat"]
    assert (contract.structure_id, contract.assignee) == (who.social.id, who.referent.email)
    simulation.advance(session_factory, ctx, "P5D")
    complete(session_factory, ctx, contract, who.referent, {**CONTRACT, "date_signature": today(session_factory, ctx)})
    signed_at = now(session_factory, ctx)
    assert open_rows(session_factory, case_id) == {}

    # The review comes six months after the contract, not before.
    simulation.advance(session_factory, ctx, "P5M")
    assert open_rows(session_factory, case_id) == {}
    simulation.advance(session_factory, ctx, "P1M")
    review = open_rows(session_factory, case_id)["revoir-parcours"]
    assert (review.structure_id, review.assignee) == (who.social.id, who.referent.email)
    assert review.created_at >= add_iso_duration(signed_at, "P6M")
    assert review.created_at - add_iso_duration(signed_at, "P6M") < timedelta(seconds=1)
    assert case_row(session_factory, case_id).status == "active"
    return case_id, who


@pytest.mark.parametrize("commune", [CORBEIL, EVRY], ids=["corbeil-ccas", "evry-departement"])
def test_review_reorients_to_france_travail_through_an_overlapping_hand_off(session_factory, ctx, commune):
    case_id, who = start_to_review(session_factory, ctx, commune)
    review = open_rows(session_factory, case_id)["revoir-parcours"]
    complete(session_factory, ctx, review, who.referent, {**REORIENTATION, "date_revue": today(session_factory, ctx)})

    # France Travail (covering the commune) accepts and names its conseiller, who joins the care team.
    designate = open_rows(session_factory, case_id)["designer-referent"]
    assert (designate.structure_id, designate.assignee, designate.state) == (who.france_travail.id, None, "open")
    simulation.advance(session_factory, ctx, "P6D")
    complete(session_factory, ctx, designate, who.counsellor,
             {"referent_email": who.counsellor.email, "date_designation": today(session_factory, ctx)})
    assert sorted(team(session_factory, case_id)) == sorted([(who.social.type, who.referent.email),
                                                             ("france-travail", who.counsellor.email)])

    # The joint meeting and the social référent's exit are the sending structure's tasks.
    simulation.advance(session_factory, ctx, "P8D")
    meeting = open_rows(session_factory, case_id)["rendez-vous-tripartite"]
    assert (meeting.structure_id, meeting.assignee) == (who.social.id, who.referent.email)
    complete(session_factory, ctx, meeting, who.referent,
             {**JOINT_MEETING, "date_rendez_vous": today(session_factory, ctx)})
    exit_task = open_rows(session_factory, case_id)["sortie-structure-origine"]
    assert (exit_task.structure_id, exit_task.assignee) == (who.social.id, who.referent.email)
    complete(session_factory, ctx, exit_task, who.referent,
             {"exit_reason": "relais-autre-structure", "exit_date": today(session_factory, ctx)})

    # The social référent left after France Travail joined: both were active together for two weeks.
    moves = hand_over_events(session_factory, case_id)
    assert [(e.kind, e.summary["user"]) for e in moves[:3]] == [
        ("referent_joined", who.referent.email),
        ("referent_joined", who.counsellor.email),
        ("referent_left", who.referent.email),
    ]
    assert moves[2].summary["reason"] == "relais-autre-structure"
    assert moves[2].at - moves[1].at >= timedelta(days=8)
    assert [e.kind for e in events(session_factory, case_id, "joint_meeting_recorded")] == ["joint_meeting_recorded"]
    social_member = next(m for m in members(session_factory, case_id) if m.structure_id == who.social.id)
    counsellor_member = next(m for m in members(session_factory, case_id) if m.structure_id == who.france_travail.id)
    assert counsellor_member.started_at < social_member.ended_at  # overlap

    # Reoriented: the social pathway is over.
    case = case_row(session_factory, case_id)
    assert case.status == "closed" and open_rows(session_factory, case_id) == {}
    assert events(session_factory, case_id)[-1].kind == "case_closed"


@pytest.mark.parametrize("commune", [CORBEIL, EVRY], ids=["corbeil-ccas", "evry-departement"])
def test_positive_exit_branch_refuses_a_non_positive_reason(session_factory, ctx, commune):
    case_id, who = start_to_review(session_factory, ctx, commune)
    review = open_rows(session_factory, case_id)["revoir-parcours"]
    complete(session_factory, ctx, review, who.referent, {**EXIT_DECISION, "date_revue": today(session_factory, ctx)})
    exit_task = open_rows(session_factory, case_id)["sortie-accompagnement-social"]
    assert (exit_task.structure_id, exit_task.assignee) == (who.social.id, who.referent.email)

    # "Abandon" is not a positive exit and nobody takes over: refused, and the conflict says what is missing.
    with pytest.raises(Conflict) as refused:
        complete(session_factory, ctx, exit_task, who.referent,
                 {"exit_reason": "abandon", "exit_date": today(session_factory, ctx)})
    message = str(refused.value)
    assert "active référent of the receiving structure" in message
    assert "joint meeting" in message
    assert "emploi-durable" in message  # the positive reasons are offered
    assert team(session_factory, case_id) == [(who.social.type, who.referent.email)]
    assert case_row(session_factory, case_id).status == "active"
    still_open = open_rows(session_factory, case_id)["sortie-accompagnement-social"]
    assert (still_open.id, still_open.state) == (exit_task.id, "claimed")

    # A sustainable job is a positive exit: accepted, and the case closes with nobody left on it.
    simulation.advance(session_factory, ctx, "P1D")
    complete(session_factory, ctx, exit_task, who.referent,
             {"exit_reason": "emploi-durable", "exit_date": today(session_factory, ctx)})
    case = case_row(session_factory, case_id)
    assert (case.status, case.exit_reason) == ("closed", "emploi-durable")
    assert team(session_factory, case_id) == []
    assert all(m.ended_at is not None and m.ended_at <= case.ended_at for m in members(session_factory, case_id))
    moves = hand_over_events(session_factory, case_id)
    assert [(e.kind, e.summary["user"]) for e in moves] == [("referent_joined", who.referent.email),
                                                             ("referent_left", who.referent.email)]
    assert moves[-1].summary["reason"] == "emploi-durable"
    assert open_rows(session_factory, case_id) == {}
    assert events(session_factory, case_id)[-1].kind == "case_closed"
    assert events(session_factory, case_id, "case_closed")[0].summary["exit_reason"] == "emploi-durable"


def test_contract_is_due_one_month_after_the_orientation(session_factory, ctx):
    """The contract, like the first meeting, is due within one month of the orientation (§5)."""
    seed_and_deploy(session_factory, ctx)
    who = actors(session_factory, EVRY)
    case_id = start_for(session_factory, ctx, "brsa-oriente-social", PEOPLE[EVRY], who.referent)
    simulation.advance(session_factory, ctx, "P20D")
    complete(session_factory, ctx, open_rows(session_factory, case_id)["premier-rendez-vous"], who.referent,
             {**FIRST_MEETING, "date_entretien": today(session_factory, ctx)})
    contract = open_rows(session_factory, case_id)["signer-contrat"]
    assert contract.due_at == add_iso_duration(SIMULATION_START, "P1M")
