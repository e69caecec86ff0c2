"""The directory (annuaire): communes, structures CSV import/export, check, demo seed and CLI.

Database tests run on SQLite and PostgreSQL (the ``database_url`` fixture).
"""
from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import func, select

from api.app import create_app
from api.cli_directory import directory
from engine.db import transaction
from engine.directory import (
    CORE_STRUCTURE_TYPES,
    Commune,
    Structure,
    StructureCoverage,
    User,
    pilot_structure,
    structures_covering,
)
from engine.directory_io import (
    STRUCTURE_COLUMNS,
    check_directory,
    export_structures,
    import_structures,
    load_communes,
    seed_demo,
    siret_is_valid,
)

EVRY = "91228"
GPS_SIREN = "200059228"  # CA Grand Paris Sud Seine Essonne Sénart (15 Essonne communes)
VALID_SIRET = "73282932000074"
HEADER = ",".join(STRUCTURE_COLUMNS)


@pytest.fixture
def communes(session):
    with transaction(session):
        load_communes(session)
    return session


@pytest.fixture
def demo(session):
    with transaction(session):
        seed_demo(session)
    return session


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def structure_named(session, name: str) -> Structure:
    return session.scalar(select(Structure).where(Structure.name == name))


# --------------------------------------------------------------------------- communes

def test_communes_load_the_194_essonne_communes_with_epci(session):
    with transaction(session):
        assert load_communes(session) == 194
    evry = session.get(Commune, EVRY)
    assert evry.name == "Évry-Courcouronnes"
    assert evry.postcodes == ["91000", "91080"]
    assert evry.epci_siren == GPS_SIREN and evry.epci_name.startswith("CA Grand Paris Sud")
    assert evry.population > 50_000
    assert count(session, Commune) == 194
    assert session.scalar(select(func.count()).where(Commune.epci_siren.is_(None))) == 0

    with transaction(session):  # idempotent, and repairs edited rows
        evry.name = "Evry"
        assert load_communes(session) == 194
    assert count(session, Commune) == 194 and session.get(Commune, EVRY).name == "Évry-Courcouronnes"


# --------------------------------------------------------------------------- demo seed

def test_demo_seed_covers_every_commune_once_per_core_type(demo):
    report = check_directory(demo)
    assert report.communes == 194
    assert report.types == CORE_STRUCTURE_TYPES
    assert all(not missing for missing in report.gaps.values()), report.lines()
    assert report.overlaps == [] and report.ok


def test_demo_seed_resolves_evry_courcouronnes(demo):
    assert [s.name for s in structures_covering(demo, "mission-locale", EVRY)] == ["Mission Locale Centre Essonne"]
    assert [s.name for s in structures_covering(demo, "departement", EVRY)] == ["Département de l'Essonne — MDS Centre"]


def test_demo_seed_has_the_launch_actors_pilot_and_users(demo):
    structures = list(demo.scalars(select(Structure)))
    assert all(s.demo for s in structures) and not any("démo" in s.name.lower() for s in structures)
    names = {s.name for s in structures}
    for ccas in ("Corbeil-Essonnes", "Draveil", "Morangis", "Ris-Orangis", "Saint-Michel-sur-Orge"):
        assert f"CCAS de {ccas}" in names
    assert {"PLIE Ensemble vers l'Emploi", "PLIE Nord Essonne", "MEIF Paris-Saclay", "MDEF Grand Paris Sud",
            "CAF de l'Essonne", "Cap Emploi 91"} <= names
    # Each CCAS covers only its own commune.
    draveil = structure_named(demo, "CCAS de Draveil")
    assert [c.commune_insee for c in draveil.coverage] == ["91201"]

    pilot = pilot_structure(demo)
    assert pilot.name == "Département de l'Essonne — Mission SPIE" and pilot.type == "departement"
    assert pilot.coverage == []  # never shadows the territorial services

    users = list(demo.scalars(select(User)))
    assert all(u.email.endswith("@example.org") and u.password_hash is None for u in users)
    roles_by_structure: dict[int, set[str]] = {}
    for user in users:
        roles_by_structure.setdefault(user.structure_id, set()).add(user.role)
    for structure in structures:
        assert {"referent", "supervisor"} <= roles_by_structure.get(structure.id, set()), structure.name
    assert {"admin", "designer"} <= roles_by_structure[pilot.id]


def test_demo_seed_is_idempotent(demo):
    before = (count(demo, Commune), count(demo, Structure), count(demo, StructureCoverage), count(demo, User))
    with transaction(demo):
        report = seed_demo(demo)
    assert report.structures.created == [] and report.structures.updated == []
    assert report.users_created == [] and report.users_updated == []
    assert (count(demo, Commune), count(demo, Structure), count(demo, StructureCoverage), count(demo, User)) == before


# --------------------------------------------------------------------------- import

def test_import_refuses_the_whole_file_and_reports_each_bad_row(communes):
    text = "\n".join([
        HEADER,
        ",mission-locale,ML valide,,ml@example.org,,,false,false,false,91228,",
        ",agence-spatiale,Type inconnu,,,,,false,false,false,91228,",
        ",caf,INSEE inconnu,,,,,false,false,false,91228 99999,",
        f",caf,SIRET faux,{VALID_SIRET[:-1]}5,,,,false,false,false,,{GPS_SIREN}",
        ",caf,,,,,,false,false,false,91228,",
        ",caf,EPCI inconnu,,,,,false,false,false,,123456789",
        ",caf,Drapeau faux,,,,,peut-être,false,false,,",
    ]) + "\n"
    with transaction(communes):
        report = import_structures(communes, text)
    assert not report.ok and report.created == []
    assert [(e.line, e.column) for e in report.errors] == [
        (3, "type"), (4, "communes"), (5, "siret"), (6, "name"), (7, "epci"), (8, "sensitive"),
    ]
    assert "agence-spatiale" in report.errors[0].message
    assert "99999" in report.errors[1].message
    assert "line 6 (name): the name is missing" == str(report.errors[3])
    assert count(communes, Structure) == 0 and count(communes, StructureCoverage) == 0


def test_import_creates_structures_with_coverage_and_accepts_dora_codes(communes):
    text = "\n".join([
        "type,name,siret,communes,epci",
        f"ML,Mission Locale test,{VALID_SIRET},91228 91174,",
        f"CD,Solidarités test,,,{GPS_SIREN}",
        "FT,Agence test,,91228,",
        "CAP_EMPLOI,Cap Emploi test,,91228,",
    ])
    with transaction(communes):
        report = import_structures(communes, text.encode("utf-8"))
    assert report.ok and len(report.created) == 4
    types = {s.name: s.type for s in communes.scalars(select(Structure))}
    assert types == {"Mission Locale test": "mission-locale", "Solidarités test": "departement",
                     "Agence test": "france-travail", "Cap Emploi test": "cap-emploi"}
    ml = structure_named(communes, "Mission Locale test")
    assert ml.siret == VALID_SIRET and sorted(c.commune_insee for c in ml.coverage) == ["91174", "91228"]
    cd = structure_named(communes, "Solidarités test")
    assert len(cd.coverage) == 15 and {c.via_epci for c in cd.coverage} == {GPS_SIREN}


def test_import_rejects_unknown_columns_missing_ids_and_duplicates(communes):
    report = import_structures(communes, "type,name,commune\ncaf,CAF,91228\n")
    assert [(e.line, "commune" in e.message) for e in report.errors] == [(1, True)]
    report = import_structures(communes, "id,type,name\n999,caf,CAF\n")
    assert [(e.line, e.column) for e in report.errors] == [(2, "id")]
    report = import_structures(communes, "type,name\ncaf,CAF\nCAF,CAF\n")
    assert [(e.line, e.column) for e in report.errors] == [(3, "name")]
    assert count(communes, Structure) == 0


def test_import_accepts_a_semicolon_separated_spreadsheet_export(communes):
    with transaction(communes):
        report = import_structures(communes, "\ufefftype;name;communes\nccas;CCAS d'Évry;91228\n")
    assert report.ok and report.created == ["CCAS d'Évry"]


def test_import_matches_on_type_and_name_then_updates(communes):
    with transaction(communes):
        import_structures(communes, "type,name,email,communes\ncaf,CAF,a@example.org,91228\n")
    with transaction(communes):
        report = import_structures(communes, "type,name,email,communes\ncaf,CAF,b@example.org,91174\n")
    assert report.updated == ["CAF"] and count(communes, Structure) == 1
    caf = structure_named(communes, "CAF")
    assert caf.email == "b@example.org" and [c.commune_insee for c in caf.coverage] == ["91174"]
    with transaction(communes):  # a file without coverage columns leaves coverage alone
        report = import_structures(communes, "type,name,phone\ncaf,CAF,01 02 03 04 05\n")
    assert report.updated == ["CAF"] and [c.commune_insee for c in caf.coverage] == ["91174"]


def test_siret_check_digit():
    assert siret_is_valid(VALID_SIRET)
    assert not siret_is_valid("73282932000075")
    assert not siret_is_valid("7328293200007")
    assert not siret_is_valid("7328293200007A")
    assert siret_is_valid("35600000049837")  # La Poste: digit sum multiple of 5


# --------------------------------------------------------------------------- export

def test_export_then_import_is_idempotent(demo):
    exported = export_structures(demo)
    with transaction(demo):
        report = import_structures(demo, exported)
    assert report.ok and report.created == [] and report.updated == []
    assert len(report.unchanged) == count(demo, Structure)
    assert export_structures(demo) == exported

    rows = list(csv.DictReader(io.StringIO(exported)))
    by_name = {row["name"]: row for row in rows}
    assert by_name["CAF de l'Essonne"]["epci"].count(" ") == 12 and by_name["CAF de l'Essonne"]["communes"] == ""
    assert by_name["CCAS de Draveil"]["communes"] == "91201" and by_name["CCAS de Draveil"]["epci"] == ""
    # Mixed coverage: part of Cœur d'Essonne listed, three whole EPCI.
    ml3v = by_name["Mission Locale des 3 Vallées"]
    assert len(ml3v["communes"].split()) == 12 and len(ml3v["epci"].split()) == 3


def test_export_lists_communes_when_an_epci_is_no_longer_covered_whole(communes):
    with transaction(communes):
        import_structures(communes, f"type,name,epci\nmission-locale,ML GPS,{GPS_SIREN}\n")
        ml = structure_named(communes, "ML GPS")
        ml.coverage.remove(next(c for c in ml.coverage if c.commune_insee == EVRY))
    row = next(csv.DictReader(io.StringIO(export_structures(communes))))
    assert row["epci"] == "" and len(row["communes"].split()) == 14 and EVRY not in row["communes"]
    exported = export_structures(communes)
    with transaction(communes):  # importing it only records the 14 communes as listed ones
        import_structures(communes, exported)
    assert export_structures(communes) == exported
    assert {c.via_epci for c in ml.coverage} == {None}
    with transaction(communes):
        assert import_structures(communes, exported).unchanged == ["ML GPS"]


# --------------------------------------------------------------------------- check

def test_check_reports_gaps_and_same_type_overlaps(demo):
    ml = structure_named(demo, "Mission Locale Centre Essonne")
    with transaction(demo):
        ml.coverage.remove(next(c for c in ml.coverage if c.commune_insee == EVRY))
        import_structures(demo, "type,name,communes\nccas,CCAS bis de Draveil,91201\n")
    report = check_directory(demo)
    assert not report.ok
    assert report.gaps["mission-locale"] == [(EVRY, "Évry-Courcouronnes")]
    assert [(o.type, o.commune_insee) for o in report.overlaps] == [("ccas", "91201")]
    assert any("91228 Évry-Courcouronnes" in line for line in report.lines())
    # A CCAS and the Département's service on the same commune are not an overlap.
    assert structures_covering(demo, "departement", "91201")


def test_check_on_an_empty_directory_is_not_ok(session):
    report = check_directory(session)
    assert not report.ok and "no commune" in report.lines()[0]


# --------------------------------------------------------------------------- CLI

@pytest.fixture
def run(database_url, db_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SPIE_INSTANCE_PATH", str(tmp_path))
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(directory, list(args), obj=ScriptInfo(create_app=create_app), input=input,
                             catch_exceptions=False)

    return invoke


def test_cli_seed_check_export_import(run, session_factory, tmp_path):
    result = run("check")
    assert result.exit_code == 1 and "no commune" in result.output

    result = run("seed-demo")
    assert result.exit_code == 0 and "communes: 194" in result.output and "33 created" in result.output
    result = run("check")
    assert result.exit_code == 0, result.output
    assert "overlaps: none" in result.output and "mission-locale: every commune covered" in result.output

    exported = tmp_path / "structures.csv"
    assert run("export", str(exported)).exit_code == 0
    result = run("import", str(exported))
    assert result.exit_code == 0 and "0 created, 0 updated, 33 unchanged" in result.output

    bad = tmp_path / "bad.csv"
    bad.write_text("type,name,communes\nML,ML nouvelle,99999\n", encoding="utf-8")
    result = run("import", str(bad))
    assert result.exit_code == 1 and "line 2 (communes)" in result.output

    with session_factory() as session, transaction(session):
        cap = structure_named(session, "Cap Emploi 91")
        cap.coverage.remove(next(c for c in cap.coverage if c.commune_insee == EVRY))
    result = run("check")
    assert result.exit_code == 1 and "cap-emploi: 1 commune(s) without a structure: 91228" in result.output
    result = run("check", "--type", "ccas")
    assert result.exit_code == 1 and "ccas: 188 commune(s)" in result.output


def test_cli_import_from_stdin_and_export_to_stdout(run):
    with_communes = run("seed-demo")
    assert with_communes.exit_code == 0
    result = run("import", "-", input="type,name,communes\nassociation,Asso test,91228\n")
    assert result.exit_code == 0 and "1 created" in result.output
    result = run("export")
    assert result.exit_code == 0 and ",association,Asso test," in result.output
