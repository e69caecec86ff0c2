"""The hand-off invariant enforced by the engine itself, SPIE lint at deploy, and tasks nobody covers."""
from __future__ import annotations

import pytest

from engine import pathways
from engine.db import transaction
from engine.directory import pilot_structure
from engine.errors import Conflict, DeployError
from tests.conftest import fixture_bytes
from tests.spie_support import (EVRY, complete, events, open_rows, seed_and_deploy, spie_context, staff, start_for,
                                structure, team)

PERSON = {"first_name": "Léo", "last_name": "Petit", "birth_date": "2000-06-01", "commune_insee": EVRY}


@pytest.fixture
def ctx():
    return spie_context()


def _deploy(session_factory, ctx, xml: bytes):
    with session_factory() as session, transaction(session):
        return pathways.deploy(session, ctx, xml, deployed_by="designer").version


def test_engine_refuses_an_exit_without_joint_meeting_whatever_the_diagram(session_factory, ctx):
    """A hand-off stub with no meeting passes lint; the engine still refuses the exit at run time."""
    seed_and_deploy(session_factory, ctx)
    _deploy(session_factory, ctx, fixture_bytes("engine/relais-sans-rdv.bpmn"))  # shadows passage-de-relais
    _deploy(session_factory, ctx, fixture_bytes("engine/sortie-apres-relais.bpmn"))
    ml, cd = structure(session_factory, "mission-locale", EVRY), structure(session_factory, "departement", EVRY)
    ml_referent, cd_referent = staff(session_factory, ml.id), staff(session_factory, cd.id)
    case_id = start_for(session_factory, ctx, "sortie-apres-relais", PERSON, ml_referent)
    exit_data = {"exit_reason": "relais-autre-structure", "exit_date": "2026-02-01"}

    complete(session_factory, ctx, open_rows(session_factory, case_id)["designer"], cd_referent,
             {"referent_email": cd_referent.email, "date_designation": "2026-01-20"})
    with pytest.raises(Conflict, match="joint meeting"):
        complete(session_factory, ctx, open_rows(session_factory, case_id)["sortie"], ml_referent, exit_data)
    assert sorted(team(session_factory, case_id)) == [("departement", cd_referent.email),
                                                       ("mission-locale", ml_referent.email)]
    assert "sortie" in open_rows(session_factory, case_id)  # nothing was lost


def test_exit_refused_without_receiving_referent_then_positive_exit_accepted(session_factory, ctx):
    seed_and_deploy(session_factory, ctx)
    _deploy(session_factory, ctx, fixture_bytes("engine/relais-sans-rdv.bpmn"))
    _deploy(session_factory, ctx, fixture_bytes("engine/sortie-apres-relais.bpmn"))
    ml = structure(session_factory, "mission-locale", EVRY)
    ml_referent = staff(session_factory, ml.id)
    case_id = start_for(session_factory, ctx, "sortie-apres-relais", PERSON, ml_referent)
    designate = open_rows(session_factory, case_id)["designer"]
    # The Département designates... the ML référent's colleague? refused: wrong structure.
    with pytest.raises(Exception, match="another structure"):
        complete(session_factory, ctx, designate, ml_referent,
                 {"referent_email": ml_referent.email, "date_designation": "2026-01-20"})
    cd_referent = staff(session_factory, structure(session_factory, "departement", EVRY).id)
    complete(session_factory, ctx, designate, cd_referent,
             {"referent_email": cd_referent.email, "date_designation": "2026-01-20"})
    # A positive exit needs no hand-off: employment.
    complete(session_factory, ctx, open_rows(session_factory, case_id)["sortie"], ml_referent,
             {"exit_reason": "emploi-durable", "exit_date": "2026-02-01"})
    assert team(session_factory, case_id) == [("departement", cd_referent.email)]


def test_an_exit_that_leaves_an_active_case_without_referent_is_refused(session_factory, ctx):
    """A positive exit needs no hand-off, but the case goes on after it: someone must still follow it."""
    seed_and_deploy(session_factory, ctx)
    xml = (fixture_bytes("engine/sortie-apres-relais.bpmn")
           .replace(b"<bpmn:flowNodeRef>relais</bpmn:flowNodeRef>", b"")
           .replace(b'<bpmn:callActivity id="relais" calledElement="passage-de-relais" '
                    b'spie:receivingStructureType="departement"/>', b"")
           .replace(b'<bpmn:sequenceFlow id="f2" sourceRef="relais" targetRef="sortie"/>', b"")
           .replace(b'<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="relais"/>',
                    b'<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="sortie" spie:positiveExit="true"/>'))
    _deploy(session_factory, ctx, xml)
    ml_referent = staff(session_factory, structure(session_factory, "mission-locale", EVRY).id)
    case_id = start_for(session_factory, ctx, "sortie-apres-relais", PERSON, ml_referent)

    with pytest.raises(Conflict, match="at least one active référent"):
        complete(session_factory, ctx, open_rows(session_factory, case_id)["sortie"], ml_referent,
                 {"exit_reason": "emploi-durable", "exit_date": "2026-02-01"})
    assert team(session_factory, case_id) == [("mission-locale", ml_referent.email)]  # nothing was written
    assert "sortie" in open_rows(session_factory, case_id)


def test_deploy_refuses_a_closing_path_that_skips_the_hand_off(session_factory, ctx):
    seed_and_deploy(session_factory, ctx)
    careless = fixture_bytes("engine/sortie-apres-relais.bpmn").replace(
        b'<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="relais"/>',
        b'<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="sortie"/>',
    )
    with pytest.raises(DeployError) as refused:
        _deploy(session_factory, ctx, careless)
    [problem] = [p for p in refused.value.problems if p.rule == "spie-exit-without-hand-off"]
    assert problem.element_id == "sortie" and "start → sortie" in problem.message and problem.line


def test_deploy_refuses_unknown_lane_type_and_hand_off_without_receiver(session_factory, ctx):
    seed_and_deploy(session_factory, ctx)
    xml = (fixture_bytes("engine/sortie-apres-relais.bpmn")
           .replace(b'name="Mission Locale"', b'name="Bureau des licornes"')
           .replace(b' spie:receivingStructureType="departement"', b""))
    with pytest.raises(DeployError) as refused:
        _deploy(session_factory, ctx, xml)
    assert {p.rule for p in refused.value.problems} >= {"spie-lane-structure-type", "spie-hand-off-receiver"}


def test_person_outside_essonne_goes_to_the_pilot_queue_flagged(session_factory, ctx):
    seed_and_deploy(session_factory, ctx)
    ml_referent = staff(session_factory, structure(session_factory, "mission-locale", EVRY).id)
    paris = {**PERSON, "commune_insee": "75056"}
    case_id = start_for(session_factory, ctx, "jeune-sortant-mission-locale", paris, ml_referent)
    [row] = open_rows(session_factory, case_id).values()
    with session_factory() as session:
        pilot = pilot_structure(session)
    assert (row.structure_id, row.unassigned, row.state) == (pilot.id, True, "open")
    [flag] = events(session_factory, case_id, "task_unassigned")
    assert "75056" in flag.summary["reason"] and "mission-locale" in flag.summary["reason"]


def test_structure_type_nobody_covers_goes_to_the_pilot_queue(session_factory, ctx):
    seed_and_deploy(session_factory, ctx)
    lonely = fixture_bytes("engine/sortie-apres-relais.bpmn").replace(
        b'spie:receivingStructureType="departement"', b'spie:receivingStructureType="association"')
    _deploy(session_factory, ctx, lonely)
    ml_referent = staff(session_factory, structure(session_factory, "mission-locale", EVRY).id)
    case_id = start_for(session_factory, ctx, "sortie-apres-relais", PERSON, ml_referent)
    rows = open_rows(session_factory, case_id)
    [designate] = [r for r in rows.values() if r.bpmn_id == "designer-referent"]
    assert designate.unassigned
    assert "association" in events(session_factory, case_id, "task_unassigned")[0].summary["reason"]
