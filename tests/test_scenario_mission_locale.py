"""Scenario: a young person of Évry-Courcouronnes turns 25 at the Mission Locale (simulated months)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from engine import simulation
from engine.directory import pilot_structure
from tests.conftest import SIMULATION_START
from tests.spie_support import (EVRY, complete, events, open_rows, seed_and_deploy, spie_context, staff, start_for,
                                structure, team)

INES = {"first_name": "Inès", "last_name": "Martin", "birth_date": "2001-01-02", "commune_insee": EVRY}
MEETING = {"date_rendez_vous": "2026-02-20", "presence_personne": True, "presence_referent_origine": True,
           "presence_referent_accueil": True}


@pytest.fixture
def ctx():
    return spie_context()


def test_mission_locale_exit_with_overlapping_hand_off(session_factory, ctx):
    seed_and_deploy(session_factory, ctx)
    ml, cd = structure(session_factory, "mission-locale", EVRY), structure(session_factory, "departement", EVRY)
    ml_referent, cd_referent = staff(session_factory, ml.id), staff(session_factory, cd.id)
    with session_factory() as session:
        pilot = pilot_structure(session)

    case_id = start_for(session_factory, ctx, "jeune-sortant-mission-locale", INES, ml_referent)
    prepare = open_rows(session_factory, case_id)["preparer-sortie"]
    assert (prepare.structure_id, prepare.assignee, prepare.state) == (ml.id, ml_referent.email, "claimed")
    assert team(session_factory, case_id) == [("mission-locale", ml_referent.email)]

    complete(session_factory, ctx, prepare, ml_referent,
             {"date_sortie_prevue": "2026-03-01", "situation_sortie": "sans-solution", "synthese": "RSA à ouvrir"})
    designate = open_rows(session_factory, case_id)["designer-referent"]
    assert (designate.structure_id, designate.assignee, designate.state) == (cd.id, None, "open")

    # No designation after 15 days: the Département's supervisor is asked; after 30 days, the pilot.
    simulation.advance(session_factory, ctx, "P15D")
    rows = open_rows(session_factory, case_id)
    [supervisor_task] = [r for r in rows.values() if r.audience == "supervisor"]
    assert supervisor_task.structure_id == cd.id and rows["designer-referent"].escalation_level == 1
    simulation.advance(session_factory, ctx, "P15D")
    rows = open_rows(session_factory, case_id)
    [pilot_task] = [r for r in rows.values() if r.audience == "pilot"]
    assert pilot_task.structure_id == pilot.id and rows["designer-referent"].escalation_level == 2

    # Designating someone of another structure is refused; the right référent joins the care team.
    other = staff(session_factory, ml.id, "supervisor")
    with pytest.raises(Exception, match="référent of another structure"):
        complete(session_factory, ctx, rows["designer-referent"], cd_referent,
                 {"referent_email": other.email, "date_designation": "2026-02-05"})
    complete(session_factory, ctx, rows["designer-referent"], cd_referent,
             {"referent_email": cd_referent.email, "date_designation": "2026-02-05"})
    assert sorted(team(session_factory, case_id)) == [("departement", cd_referent.email),
                                                       ("mission-locale", ml_referent.email)]

    simulation.advance(session_factory, ctx, "P10D")

    # A meeting without the person does not count: another one is planned, no exit yet.
    meeting = open_rows(session_factory, case_id)["rendez-vous-tripartite"]
    assert meeting.assignee == ml_referent.email
    complete(session_factory, ctx, meeting, ml_referent, {**MEETING, "presence_personne": False})
    rows = open_rows(session_factory, case_id)
    assert "sortie-structure-origine" not in rows
    simulation.advance(session_factory, ctx, "P5D")
    complete(session_factory, ctx, rows["rendez-vous-tripartite"], ml_referent, MEETING)

    exit_task = open_rows(session_factory, case_id)["sortie-structure-origine"]
    assert (exit_task.structure_id, exit_task.assignee) == (ml.id, ml_referent.email)
    complete(session_factory, ctx, exit_task, ml_referent,
             {"exit_reason": "relais-autre-structure", "exit_date": "2026-02-21"})

    # Exactly one référent remains, the RSA one, who now runs the diagnostic in the same case.
    assert team(session_factory, case_id) == [("departement", cd_referent.email)]
    diagnostic = open_rows(session_factory, case_id)["diagnostic"]
    assert (diagnostic.structure_id, diagnostic.assignee) == (cd.id, cd_referent.email)
    joined = [e for e in events(session_factory, case_id) if e.kind in ("referent_joined", "referent_left")]
    assert [(e.kind, e.summary["user"]) for e in joined] == [
        ("referent_joined", ml_referent.email),
        ("referent_joined", cd_referent.email),
        ("referent_left", ml_referent.email),
    ]
    overlap = joined[2].at - joined[1].at
    assert overlap >= timedelta(days=15)  # both référents were active together before the exit
    assert joined[1].at >= SIMULATION_START + timedelta(days=30)

