"""Scenario: a young person leaves Aide sociale à l'enfance for the Mission Locale (jeune-sortant-ase).

Simulated months and years on the seeded Essonne directory: the interview for
autonomy is due at 17 (deadlines computed from the birth date: the ASE's
supervisors are asked at 17, the SPIE pilot at 18), the exit is prepared, the
Mission Locale takes over with an overlap before the ASE closes its
accompaniment, and the ASE sees the young person again six months after the exit.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from engine import simulation
from engine.directory import pilot_structure
from engine.models import Case, Timer
from tests.spie_support import (EVRY, complete, events, open_rows, seed_and_deploy, spie_context, staff, start_for,
                                structure, team)

# 16 on 5 January 2026: 17 on 10 March 2026, of age on 10 March 2027.
LINA = {"first_name": "Lina", "last_name": "Benali", "birth_date": "2009-03-10", "commune_insee": EVRY}
SEVENTEEN = datetime(2026, 3, 10, tzinfo=timezone.utc)
MAJORITY = datetime(2027, 3, 10, tzinfo=timezone.utc)
# Already 17 when the pathway starts, of age on 20 February 2026.
YANIS = {"first_name": "Yanis", "last_name": "Traoré", "birth_date": "2008-02-20", "commune_insee": EVRY}

INTERVIEW = {"modalite": "presentiel", "notes": "Projet : CAP petite enfance ; logement en FJT à chercher."}
PREPARATION = {"situation_sortie": "sans-solution", "droits_a_ouvrir": ["accompagnement-jeune-majeur", "css"],
               "synthese": "Sortie à 18 ans sans solution de logement ni de formation ; Mission Locale à saisir."}
JOINT_MEETING = {"presence_personne": True, "presence_referent_origine": True, "presence_referent_accueil": True,
                 "compte_rendu": "Présentation de la conseillère Mission Locale ; entrée en CEJ envisagée."}
ESCALATION = {"action": "relance-effectuee", "commentaire": "Entretien fixé avec l'éducatrice."}


@pytest.fixture
def ctx():
    return spie_context()


def clock(session_factory, ctx) -> datetime:
    with session_factory() as session:
        return ctx.clock.now(session)


def today(session_factory, ctx) -> str:
    return clock(session_factory, ctx).date().isoformat()


def advance_to_day(session_factory, ctx, day: date) -> None:
    """Advance simulated time by whole days until ``day`` (same time of day)."""
    days = (day - clock(session_factory, ctx).date()).days
    assert days > 0
    simulation.advance(session_factory, ctx, f"P{days}D")


def timers(session_factory, case_id: int) -> dict[str, Timer]:
    with session_factory() as session:
        return {t.bpmn_id: t for t in session.scalars(select(Timer).where(Timer.case_id == case_id).order_by(Timer.id))}


def case_row(session_factory, case_id: int) -> Case:
    with session_factory() as session:
        return session.get(Case, case_id)


def test_young_person_leaves_child_welfare_for_the_mission_locale(session_factory, ctx):
    seed_and_deploy(session_factory, ctx)
    ase, ml = structure(session_factory, "ase", EVRY), structure(session_factory, "mission-locale", EVRY)
    educator, ase_head = staff(session_factory, ase.id), staff(session_factory, ase.id, "supervisor")
    ml_referent = staff(session_factory, ml.id)

    case_id = start_for(session_factory, ctx, "jeune-sortant-ase", LINA, educator)
    interview = open_rows(session_factory, case_id)["entretien-autonomie"]
    assert (interview.structure_id, interview.assignee, interview.state) == (ase.id, educator.email, "claimed")
    assert interview.due_at == SEVENTEEN  # the deadline is the 17th birthday
    deadlines = timers(session_factory, case_id)
    assert {k: (t.kind, t.due_at, t.state) for k, t in deadlines.items()} == {
        "echeance-17-ans": ("date", SEVENTEEN, "waiting"),
        "echeance-majorite": ("date", MAJORITY, "waiting"),
    }
    assert team(session_factory, case_id) == [("ase", educator.email)]

    # The day before her 17th birthday nothing happens; on it, the ASE's supervisors are asked.
    advance_to_day(session_factory, ctx, date(2026, 3, 9))
    assert set(open_rows(session_factory, case_id)) == {"entretien-autonomie"}
    simulation.advance(session_factory, ctx, "P1D")
    rows = open_rows(session_factory, case_id)
    assert set(rows) == {"entretien-autonomie", "relancer-entretien-autonomie"}
    relance = rows["relancer-entretien-autonomie"]
    assert (relance.structure_id, relance.assignee, relance.audience) == (ase.id, None, "supervisor")
    assert rows["entretien-autonomie"].escalation_level == 1
    complete(session_factory, ctx, relance, ase_head, {**ESCALATION, "date_action": today(session_factory, ctx)})

    # The interview is held ten days late; the alert at 18 will not be needed.
    simulation.advance(session_factory, ctx, "P10D")
    complete(session_factory, ctx, interview, educator, {**INTERVIEW, "date_entretien": today(session_factory, ctx)})
    assert timers(session_factory, case_id)["echeance-majorite"].state == "cancelled"
    prepare = open_rows(session_factory, case_id)["preparer-sortie-ase"]
    assert (prepare.structure_id, prepare.assignee) == (ase.id, educator.email)

    # The exit is prepared; the Mission Locale covering Évry accepts and names its référent.
    simulation.advance(session_factory, ctx, "P14D")
    complete(session_factory, ctx, prepare, educator,
             {**PREPARATION, "date_sortie_prevue": MAJORITY.date().isoformat()})
    designate = open_rows(session_factory, case_id)["designer-referent"]
    assert (designate.structure_id, designate.assignee, designate.state) == (ml.id, None, "open")
    simulation.advance(session_factory, ctx, "P7D")
    complete(session_factory, ctx, designate, ml_referent,
             {"referent_email": ml_referent.email, "date_designation": today(session_factory, ctx)})
    assert sorted(team(session_factory, case_id)) == [("ase", educator.email), ("mission-locale", ml_referent.email)]

    # The joint meeting is the ASE's task; then both accompany her until she comes of age.
    simulation.advance(session_factory, ctx, "P10D")
    meeting = open_rows(session_factory, case_id)["rendez-vous-tripartite"]
    assert (meeting.structure_id, meeting.assignee) == (ase.id, educator.email)
    complete(session_factory, ctx, meeting, educator,
             {**JOINT_MEETING, "date_rendez_vous": today(session_factory, ctx)})
    exit_task = open_rows(session_factory, case_id)["sortie-structure-origine"]
    assert (exit_task.structure_id, exit_task.assignee) == (ase.id, educator.email)

    advance_to_day(session_factory, ctx, MAJORITY.date())
    assert set(open_rows(session_factory, case_id)) == {"sortie-structure-origine"}  # no alert at 18: interview held
    complete(session_factory, ctx, exit_task, educator,
             {"exit_reason": "relais-autre-structure", "exit_date": today(session_factory, ctx)})
    exited_at = clock(session_factory, ctx)

    # Only the Mission Locale remains; the ML référent joined long before the ASE left.
    assert team(session_factory, case_id) == [("mission-locale", ml_referent.email)]
    moves = [e for e in events(session_factory, case_id) if e.kind in ("referent_joined", "referent_left")]
    assert [(e.kind, e.summary["user"]) for e in moves] == [
        ("referent_joined", educator.email),
        ("referent_joined", ml_referent.email),
        ("referent_left", educator.email),
    ]
    joined, left = moves[1], moves[2]
    assert joined.at < left.at and joined.id < left.id
    assert left.at - joined.at > timedelta(days=300)
    assert left.summary["reason"] == "relais-autre-structure"
    assert case_row(session_factory, case_id).status == "active"

    # The follow-up interview is due six months after the exit, not before.
    assert open_rows(session_factory, case_id) == {}
    simulation.advance(session_factory, ctx, "P5M")
    assert open_rows(session_factory, case_id) == {}
    simulation.advance(session_factory, ctx, "P1M")
    follow_up = open_rows(session_factory, case_id)["entretien-six-mois"]
    assert follow_up.created_at - exited_at >= timedelta(days=183)  # 10 March to 10 September 2027
    assert follow_up.created_at.date() == date(2027, 9, 10)
    assert (follow_up.structure_id, follow_up.assignee, follow_up.state) == (ase.id, None, "open")
    complete(session_factory, ctx, follow_up, educator,
             {**INTERVIEW, "notes": "En CEJ à la Mission Locale, logée en FJT.",
              "date_entretien": today(session_factory, ctx)})
    assert case_row(session_factory, case_id).status == "closed"


def test_interview_missed_at_17_and_18_alerts_the_ase_then_the_pilot(session_factory, ctx):
    seed_and_deploy(session_factory, ctx)
    ase = structure(session_factory, "ase", EVRY)
    educator = staff(session_factory, ase.id)
    with session_factory() as session:
        pilot = pilot_structure(session)

    # Already past 17 when the pathway starts: the ASE's supervisors are asked at once.
    case_id = start_for(session_factory, ctx, "jeune-sortant-ase", YANIS, educator)
    rows = open_rows(session_factory, case_id)
    assert set(rows) == {"entretien-autonomie", "relancer-entretien-autonomie"}
    assert (rows["relancer-entretien-autonomie"].structure_id, rows["relancer-entretien-autonomie"].audience) == (
        ase.id, "supervisor")

    # Of age on 20 February 2026 without the interview: the SPIE pilot is alerted, not before.
    advance_to_day(session_factory, ctx, date(2026, 2, 19))
    assert "alerter-majorite-sans-entretien" not in open_rows(session_factory, case_id)
    simulation.advance(session_factory, ctx, "P1D")
    rows = open_rows(session_factory, case_id)
    alert = rows["alerter-majorite-sans-entretien"]
    assert (alert.structure_id, alert.assignee, alert.audience) == (pilot.id, None, "pilot")
    assert rows["entretien-autonomie"].escalation_level == 2
    assert events(session_factory, case_id, "task_unassigned") == []
