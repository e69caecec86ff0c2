"""Scenario: one entry, one diagnostic, whatever the door (entree-diagnostic).

The same person profile comes in through three doors: the CCAS of
Ris-Orangis, the Mission Locale, France Travail. Each door's référent gets
the same diagnostic form; the same answers give the same proposal of the
orientation table; the Département covering the commune validates it; then
the matching pathway starts in the same case, its tasks going to the
structures that cover the person's commune.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from engine import runtime, simulation
from engine.directory import Structure
from engine.models import Case, HumanTask
from engine.timeutil import add_iso_duration
from tests.spie_support import (EVRY, complete, events, open_rows, seed_and_deploy, spie_context, staff, start_for,
                                structure, team)

RIS_ORANGIS, CORBEIL = "91521", "91174"


@dataclass(frozen=True)
class Door:
    structure_type: str
    commune: str  # where the person lives, covered by the door's structure
    first_name: str


DOORS = {
    "ccas-ris-orangis": Door("ccas", RIS_ORANGIS, "Samira"),
    "mission-locale": Door("mission-locale", EVRY, "Julie"),
    "france-travail": Door("france-travail", CORBEIL, "Fatoumata"),
}
BIRTH_DATE = "1986-09-14"  # 39 at the diagnostic


def answers(situation: str, barriers: set[str]) -> dict:
    freins = {key: {"valeur": "OUI" if key in barriers else "NON"}
              for key in ("mobilite", "contraintes_familiales", "sante", "maitrise_langue", "logement",
                          "difficulte_financiere", "difficulte_administrative")}
    return {"situation_professionnelle": situation, "niveau_formation": "NV4", "rqth": False, "freins": freins,
            "besoins": ["trouver_un_emploi"], "synthese": "Diagnostic d'entrée.", "consentement_partage": True}


# Same answers → same proposal → same pathway, with the structure types its first tasks go to.
PROFILES = {
    "social": {
        "answers": answers("au_foyer", {"contraintes_familiales", "logement", "difficulte_financiere"}),
        "proposal": {"orientation": "social", "target_structure_type": "departement", "nb_freins": 3, "age": 39},
        "first_tasks": {"premier-rendez-vous": "ccas|departement"},
    },
    "sociopro": {
        "answers": answers("recherche_emploi", {"contraintes_familiales"}),
        "proposal": {"orientation": "sociopro", "target_structure_type": "france-travail", "nb_freins": 1, "age": 39},
        "first_tasks": {"designer-conseiller": "france-travail", "designer-referent-social": "ccas|departement"},
    },
}


@pytest.fixture
def ctx():
    return spie_context()


def today(session_factory, ctx) -> str:
    with session_factory() as session:
        return ctx.clock.now(session).date().isoformat()


def task_data(session_factory, ctx, row: HumanTask) -> dict:
    with session_factory() as session:
        loaded = runtime.load_case(session, ctx, row.case_id)
        return dict(runtime.find_task(loaded, row.task_uuid).data)


def pathway_version_of(session_factory, case_id: int) -> int:
    with session_factory() as session:
        return session.get(Case, case_id).pathway_version_id


def covering(session_factory, structure_types: str, commune: str) -> Structure:
    """The first structure type of ``a|b`` that covers the commune, as the engine resolves lanes."""
    for structure_type in structure_types.split("|"):
        try:
            return structure(session_factory, structure_type, commune)
        except ValueError:  # no structure of this type covers the commune
            continue
    raise AssertionError(f"nothing of {structure_types} covers {commune}")


def person(door: Door) -> dict:
    return {"first_name": door.first_name, "last_name": "Kone", "birth_date": BIRTH_DATE, "commune_insee": door.commune}


def walk_through_the_door(session_factory, ctx, door: Door, profile: dict) -> dict:
    """Start at the door, do the diagnostic, validate the orientation; return what each step looked like."""
    entry = structure(session_factory, door.structure_type, door.commune)
    entry_referent = staff(session_factory, entry.id)
    departement = structure(session_factory, "departement", door.commune)
    orienter = staff(session_factory, departement.id)

    case_id = start_for(session_factory, ctx, "entree-diagnostic", person(door), entry_referent)
    started = events(session_factory, case_id, "case_started")[0].at
    diagnostic = open_rows(session_factory, case_id)["diagnostic"]
    assert (diagnostic.structure_id, diagnostic.assignee, diagnostic.state) == (
        entry.id, entry_referent.email, "claimed")
    assert diagnostic.due_at == add_iso_duration(started, "P30D")
    assert task_data(session_factory, ctx, diagnostic)["entry_structure_type"] == door.structure_type

    simulation.advance(session_factory, ctx, "P8D")
    complete(session_factory, ctx, diagnostic, entry_referent,
             {**profile["answers"], "date_diagnostic": today(session_factory, ctx)})

    # The Département covering the commune validates the proposal of the orientation table.
    decision = open_rows(session_factory, case_id)["valider-orientation"]
    assert (decision.structure_id, decision.assignee, decision.state) == (departement.id, None, "open")
    proposed = task_data(session_factory, ctx, decision)
    proposal = {key: proposed[key] for key in ("orientation", "target_structure_type", "nb_freins", "age")}
    simulation.advance(session_factory, ctx, "P5D")
    complete(session_factory, ctx, decision, orienter,
             {"orientation": proposal["orientation"], "target_structure_type": proposal["target_structure_type"],
              "date_decision": today(session_factory, ctx), "motif": "Proposition confirmée."})
    [decided] = events(session_factory, case_id, "orientation_decided")
    assert decided.summary["orientation"] == proposal["orientation"]

    # The matching pathway has started in the same case: its first tasks, for the commune's structures.
    rows = open_rows(session_factory, case_id)
    assert all(row.case_id == case_id for row in rows.values())
    placed = {}
    for bpmn_id, lane_types in profile["first_tasks"].items():
        expected = covering(session_factory, lane_types, door.commune)
        row = rows[bpmn_id]
        assert row.structure_id == expected.id, bpmn_id
        # the entry référent keeps the tasks of their own structure; the others wait in the structure's queue
        assert row.assignee == (entry_referent.email if expected.id == entry.id else None), bpmn_id
        placed[bpmn_id] = expected.type
    assert team(session_factory, case_id) == [(door.structure_type, entry_referent.email)]
    with session_factory() as session:
        assert session.get(Case, case_id).status == "active"

    return {"form": diagnostic.form_key, "version": pathway_version_of(session_factory, case_id),
            "decision_task": (decision.bpmn_id, decision.form_key, "departement"), "proposal": proposal,
            "open_tasks": sorted(rows), "case_id": case_id, "placed": placed}


@pytest.mark.parametrize("profile_name", sorted(PROFILES))
def test_three_entry_doors_get_the_same_diagnostic_and_orientation(session_factory, ctx, profile_name):
    seed_and_deploy(session_factory, ctx)
    profile = PROFILES[profile_name]
    seen = {name: walk_through_the_door(session_factory, ctx, door, profile) for name, door in DOORS.items()}

    assert len({s["case_id"] for s in seen.values()}) == 3
    for name, result in seen.items():
        assert result["form"] == "diagnostic-socio-professionnel", name
        assert result["proposal"] == profile["proposal"], name
        assert result["decision_task"] == ("valider-orientation", "decision-orientation", "departement"), name
        assert result["open_tasks"] == sorted(profile["first_tasks"]), name
    assert len({s["version"] for s in seen.values()}) == 1  # one pathway version, one form, whatever the door

    # Where the commune has a CCAS, it is the social référent; elsewhere the Département.
    social_task = "premier-rendez-vous" if profile_name == "social" else "designer-referent-social"
    assert {name: s["placed"][social_task] for name, s in seen.items()} == {
        "ccas-ris-orangis": "ccas", "mission-locale": "departement", "france-travail": "ccas"}


def test_orientation_to_the_mission_locale_starts_an_accompaniment_by_the_mission_locale(session_factory, ctx):
    """§5: the table decides the orientation *and the target structure*; the pathway that starts follows both.

    A 23-year-old with a childcare barrier, at the Mission Locale's door: the table proposes the Mission
    Locale's global accompaniment (sociopro, mission-locale), the Département confirms it, so the
    référent's tasks of the pathway that starts go to the Mission Locale, not to France Travail.
    """
    seed_and_deploy(session_factory, ctx)
    ml, ft = structure(session_factory, "mission-locale", EVRY), structure(session_factory, "france-travail", EVRY)
    ml_referent = staff(session_factory, ml.id)
    orienter = staff(session_factory, structure(session_factory, "departement", EVRY).id)
    young = {"first_name": "Océane", "last_name": "Petit", "birth_date": "2002-11-05", "commune_insee": EVRY}

    case_id = start_for(session_factory, ctx, "entree-diagnostic", young, ml_referent)
    complete(session_factory, ctx, open_rows(session_factory, case_id)["diagnostic"], ml_referent,
             {**PROFILES["sociopro"]["answers"], "date_diagnostic": today(session_factory, ctx)})
    decision = open_rows(session_factory, case_id)["valider-orientation"]
    proposed = task_data(session_factory, ctx, decision)
    assert (proposed["orientation"], proposed["target_structure_type"], proposed["age"]) == (
        "sociopro", "mission-locale", 23)
    complete(session_factory, ctx, decision, orienter,
             {"orientation": "sociopro", "target_structure_type": "mission-locale",
              "date_decision": today(session_factory, ctx)})

    rows = open_rows(session_factory, case_id)
    assert rows, "the matching pathway has started"
    places = {bpmn_id: row.structure_id for bpmn_id, row in rows.items()}
    assert ml.id in places.values(), places
    assert ft.id not in places.values(), places
