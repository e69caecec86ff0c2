"""The offer catalogue: data·inclusion import (JSON and CSV, all rows or none), the demo seed, search."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from data_inclusion.schema.v1 import Thematique
from sqlalchemy import func, select

from api.cli import main
from engine import offers
from engine.db import transaction
from engine.directory import Structure, StructureCoverage
from engine.directory_io import seed_demo
from engine.errors import InvalidInput
from engine.forms import load_forms_dir
from engine.offers import BARRIER_THEMATIQUES, BARRIERS, Offer, OfferThematique, OfferZone
from engine.paths import FORMS_DIR

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
EVRY, CORBEIL, DRAVEIL, PALAISEAU = "91228", "91174", "91201", "91477"
GRAND_PARIS_SUD = "200059228"  # the EPCI of Évry-Courcouronnes and Corbeil-Essonnes


def service(ident: str, **fields) -> dict:
    """A valid data·inclusion v1 service of the test producer."""
    return {"source": "test", "id": f"test--{ident}", "structure_id": "test--asso-mobilite",
            "nom": f"Service {ident}", "description": "Un service de test assez bien décrit.",
            "date_maj": "2026-09-01", **fields}


STRUCTURE = {"source": "test", "id": "test--asso-mobilite", "nom": "Association Mobilité Solidaire 91",
             "date_maj": "2026-09-01", "reseaux_porteurs": ["mobin"], "courriel": "contact@mobilite.example.org",
             "code_postal": "91000", "commune": "Évry-Courcouronnes", "adresse": "1 rue de la Gare"}


@pytest.fixture
def directory(session_factory):
    with session_factory() as session, transaction(session):
        seed_demo(session)


def import_file(session_factory, path, **options) -> offers.ImportReport:
    with session_factory() as session, transaction(session):
        return offers.import_offers(session, offers.read_offer_file(path), now=NOW, **options)


def write_json(tmp_path, document, name="export.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def offer_ids(session_factory, **criteria) -> list[str]:
    with session_factory() as session:
        return [o.di_id for o in session.scalars(offers.search_offers(session, **criteria))]


def count(session_factory, model) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(model))


# --- Import ---------------------------------------------------------------------------------------


def test_json_import_validates_with_data_inclusion_and_adds_the_unknown_provider(session_factory, directory,
                                                                                 tmp_path):
    path = write_json(tmp_path, {"structures": [STRUCTURE], "services": [
        service("permis", thematiques=["mobilite--preparer-un-permis"], zone_eligibilite=[GRAND_PARIS_SUD],
                mobilisable_par=["professionnels"]),
        service("velos", thematiques=["mobilite--acceder-a-un-vehicule", "mobilite--financer-ma-mobilite"],
                mobilisable_par=["usagers", "professionnels"], publics=["tous-publics"]),
    ]})
    report = import_file(session_factory, path)
    assert report.ok and report.created == ["test--permis", "test--velos"]
    assert report.providers_created == ["Association Mobilité Solidaire 91"]
    with session_factory() as session:
        permis = offers.get_offer(session, "test--permis")
        velos = offers.get_offer(session, "test--velos")
        provider = permis.provider
        assert (provider.type, provider.email, provider.demo) == ("association", "contact@mobilite.example.org", False)
        assert velos.provider.id == provider.id
        assert (permis.prescribable, permis.self_requestable) == (True, False)
        assert (velos.prescribable, velos.self_requestable) == (True, True)
        assert velos.thematiques == ["mobilite--acceder-a-un-vehicule", "mobilite--financer-ma-mobilite"]
        shown = offers.offer_out(velos)
        assert shown["mobilisable_par"] == ["professionnels", "usagers"]  # sets come back sorted
        assert shown["freins"] == ["mobilite"] and shown["provider"]["name"] == provider.name

    # A second import of the same file changes nothing and finds the provider again.
    again = import_file(session_factory, path)
    assert (again.created, again.updated, again.unchanged) == ([], [], ["test--permis", "test--velos"])
    assert again.providers_created == []


def test_json_import_reports_every_rejected_row_and_imports_nothing(session_factory, directory, tmp_path):
    path = write_json(tmp_path, {"structures": [STRUCTURE, {**STRUCTURE, "id": "test--sans-nom", "nom": "X"}],
                                 "services": [
        service("valide", thematiques=["famille--garde-denfants"]),
        service("theme-inconnu", thematiques=["famille--garde-d-enfants"]),
        service("sans-nom", nom=None, courriel="pas-un-courriel"),
        service("valide"),
        service("orpheline", structure_id="test--inconnue"),
        service("tous-et-femmes", publics=["tous-publics", "femmes"]),
        "pas un objet",
    ]})
    report = import_file(session_factory, path)
    assert not report.ok and report.created == []
    by_row = {}
    for error in report.errors:
        by_row.setdefault(error.where, []).append(error)
    assert set(by_row) == {"structures[1]", "services[1]", "services[2]", "services[3]", "services[4]",
                           "services[5]", "services[6]"}
    assert report.rejected_rows == 7
    assert [e.field for e in by_row["structures[1]"]] == ["nom"]
    assert by_row["services[1]"][0].field.startswith("thematiques") and by_row["services[1]"][0].id == (
        "test--theme-inconnu")
    assert {e.field for e in by_row["services[2]"]} == {"nom", "courriel"}
    assert "already in the file" in by_row["services[3]"][0].message
    assert "test--inconnue" in by_row["services[4]"][0].message
    assert "tous-publics" in by_row["services[5]"][0].message
    assert "not a JSON object" in by_row["services[6]"][0].message
    assert str(by_row["services[4]"][0]).startswith("services[4] (test--orpheline): structure_id: ")
    # Nothing half-imported: not the valid service, nor its provider.
    assert count(session_factory, Offer) == 0
    with session_factory() as session:
        assert session.scalar(select(Structure).where(Structure.name == STRUCTURE["nom"])) is None


def test_csv_import_with_list_cells_and_line_numbers(session_factory, directory, tmp_path):
    structures = tmp_path / "structures.csv"
    structures.write_text("source;id;nom;date_maj;reseaux_porteurs\n"
                          "test;test--asso-mobilite;Association Mobilité Solidaire 91;2026-09-01;mobin\n",
                          encoding="utf-8")
    services = tmp_path / "services.csv"
    services.write_text(
        "source;id;structure_id;nom;description;date_maj;thematiques;zone_eligibilite;mobilisable_par\n"
        'test;test--permis;test--asso-mobilite;Permis solidaire;Préparer le permis B à tarif solidaire;'
        '2026-09-01;mobilite--preparer-un-permis|mobilite--financer-ma-mobilite;200059228;professionnels\n'
        'test;test--velos;test--asso-mobilite;Vélos à prêter;Prêt de vélos électriques pour aller au travail;'
        '2026-09-01;"[""mobilite--acceder-a-un-vehicule""]";91;professionnels, usagers\n',
        encoding="utf-8")
    with session_factory() as session, transaction(session):
        parsed = offers.read_offer_file(services, structures_path=structures)
        report = offers.import_offers(session, parsed, now=NOW)
    assert report.ok, report.errors
    with session_factory() as session:
        permis = offers.get_offer(session, "test--permis")
        assert permis.thematiques == ["mobilite--financer-ma-mobilite", "mobilite--preparer-un-permis"]
        assert [z.code for z in permis.zone_rows] == [GRAND_PARIS_SUD]
        assert offers.get_offer(session, "test--velos").self_requestable

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "source,id,structure_id,nom,description,date_maj,thematiques\n"
        "test,test--ok,test--asso-mobilite,Un service correct,Une description correcte,2026-09-01,"
        "sante--acces-aux-soins\n"
        "test,test--futur,test--asso-mobilite,Service du futur,Une description correcte,2999-01-01,\n"
        "test,test--court,test--asso-mobilite,Ab,Une description correcte,2026-09-01,sante--inexistant\n"
        "test,test--trop,test--asso-mobilite,Trop de cellules,Une description correcte,2026-09-01,,en trop\n",
        encoding="utf-8")
    report = import_file(session_factory, bad)
    assert not report.ok
    assert sorted({e.where for e in report.errors}) == ["line 3", "line 4", "line 5"]
    assert {e.field for e in report.errors if e.where == "line 4"} == {"nom", "thematiques.0"}
    assert any("futur" in e.message for e in report.errors if e.where == "line 3")
    with session_factory() as session:
        assert offers.offer_by_di_id(session, "test--ok") is None


def test_reimport_updates_an_offer_and_its_search_rows(session_factory, directory, tmp_path):
    first = write_json(tmp_path, {"structures": [STRUCTURE], "services": [
        service("atelier", thematiques=["sante--acces-aux-soins", "sante--sante-mentale"], zone_eligibilite=[EVRY])]})
    assert import_file(session_factory, first).ok
    second = write_json(tmp_path, [service("atelier", nom="Atelier santé renouvelé",
                                           thematiques=["sante--sante-mentale", "sante--addictions"],
                                           zone_eligibilite=[CORBEIL])], name="second.json")
    report = import_file(session_factory, second)  # services only: the provider is known from the first import
    assert report.ok and report.updated == ["test--atelier"]
    with session_factory() as session:
        offer = offers.get_offer(session, "test--atelier")
        assert offer.name == "Atelier santé renouvelé"
        assert offer.thematiques == ["sante--addictions", "sante--sante-mentale"]
        assert [z.code for z in offer.zone_rows] == [CORBEIL]
    assert count(session_factory, OfferThematique) == 2 and count(session_factory, OfferZone) == 1
    assert offer_ids(session_factory, commune=EVRY) == []
    assert offer_ids(session_factory, q="renouvele") == ["test--atelier"]


def test_data_inclusion_v0_descriptions_and_api_search_results_are_read(session_factory, directory, tmp_path):
    legacy = service("ancien", presentation_resume="Résumé du service.",
                     presentation_detail="Le détail de ce service ancien.")
    del legacy["description"]
    page = {"items": [{"service": {**legacy, "structure": STRUCTURE}, "distance": 3}], "total": 1}
    report = import_file(session_factory, write_json(tmp_path, page))
    assert report.ok, report.errors
    with session_factory() as session:
        assert offers.get_offer(session, "test--ancien").description == (
            "Résumé du service.\n\nLe détail de ce service ancien.")


def test_import_offers_command(session_factory, directory, tmp_path, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SPIE_INSTANCE_PATH", str(tmp_path))
    runner = CliRunner()
    bad = write_json(tmp_path, {"structures": [STRUCTURE], "services": [
        service("un"), service("deux", thematiques=["pas-une-thematique"])]}, name="bad.json")
    result = runner.invoke(main, ["import-offers", str(bad)], catch_exceptions=False)
    assert result.exit_code == 1
    assert "services[1] (test--deux): thematiques.0: " in result.output
    assert "1 row(s) rejected; nothing imported" in result.output
    assert count(session_factory, Offer) == 0

    good = write_json(tmp_path, {"structures": [STRUCTURE], "services": [service("un"), service("deux")]})
    result = runner.invoke(main, ["import-offers", "--dry-run", str(good)], catch_exceptions=False)
    assert result.exit_code == 0 and "2 service(s) valid" in result.output and count(session_factory, Offer) == 0
    result = runner.invoke(main, ["import-offers", "--demo", str(good)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "2 offer(s) created, 0 updated, 0 unchanged" in result.output
    assert "provider added to the directory: Association Mobilité Solidaire 91" in result.output
    with session_factory() as session:
        assert {o.demo for o in session.scalars(select(Offer))} == {True}

    not_json = tmp_path / "broken.json"
    not_json.write_text("[{", encoding="utf-8")
    result = runner.invoke(main, ["import-offers", str(not_json)], catch_exceptions=False)
    assert result.exit_code == 1 and "not a JSON document" in result.output


# --- The demo seed --------------------------------------------------------------------------------


def test_demo_catalogue_has_the_childcare_scheme_and_one_offer_per_kind_of_barrier(session_factory, directory):
    with session_factory() as session, transaction(session):
        report = offers.seed_demo_offers(session, NOW)
    assert len(report.created) == 8 and report.providers_created == []  # providers: demo directory structures
    with session_factory() as session, transaction(session):
        assert offers.seed_demo_offers(session, NOW).unchanged == report.created  # idempotent
    with session_factory() as session:
        catalogue = list(session.scalars(select(Offer)))
        assert all(o.demo and o.provider.demo for o in catalogue)
        assert all("démonstration" in o.description for o in catalogue)
        childcare = offers.get_offer(session, "demo--garde-enfants-essonne")
        assert childcare.thematiques == [Thematique.FAMILLE__GARDE_DENFANTS.value]
        assert childcare.provider.name == "CAF de l'Essonne" and childcare.self_requestable
        covered = {b for o in catalogue for b in offers.barriers_of(o.thematiques)}
    assert {"mobilite", "contraintes_familiales", "sante", "logement", "maitrise_langue"} <= covered
    assert offer_ids(session_factory, thematique="se-former") == ["demo--trouver-sa-formation-grand-paris-sud"]


# --- Search ---------------------------------------------------------------------------------------


@pytest.fixture
def catalogue(session_factory, directory, tmp_path):
    """Five offers of one provider (covering Draveil) with different zones and themes, plus the demo ones."""
    with session_factory() as session, transaction(session):
        offers.seed_demo_offers(session, NOW)
    document = {"structures": [STRUCTURE], "services": [
        service("creche", nom="Crèche à vocation d'insertion professionnelle",
                description="Places de crèche réservées aux parents qui reprennent un emploi.",
                thematiques=["famille--garde-denfants"], zone_eligibilite=[EVRY]),
        service("aidants", nom="Soutien aux aidants familiaux", description="Relayer un parent dépendant.",
                thematiques=["famille--soutien-aidants"], zone_eligibilite=[GRAND_PARIS_SUD]),
        service("national", nom="Numéro national d'écoute", description="Écoute anonyme en santé mentale.",
                thematiques=["sante--sante-mentale"], zone_eligibilite=["france"]),
        service("sans-zone", nom="Permanence juridique", description="Un juriste répond sur les droits.",
                thematiques=["difficultes-administratives-ou-juridiques--accompagnement-pour-lacces-aux-droits"]),
        service("epicerie", nom="Épicerie sociale", description="Courses à petit prix, sur orientation.",
                thematiques=["equipement-et-alimentation--alimentation"], zone_eligibilite=["91"],
                mobilisable_par=["usagers"]),
    ]}
    assert import_file(session_factory, write_json(tmp_path, document)).ok
    with session_factory() as session, transaction(session):
        provider = session.scalar(select(Structure).where(Structure.name == STRUCTURE["nom"]))
        session.add(StructureCoverage(structure_id=provider.id, commune_insee=DRAVEIL))


def test_the_barrier_mapping_uses_real_thematiques_for_the_seven_barriers():
    assert set(BARRIER_THEMATIQUES) == set(BARRIERS)
    prescription_form = load_forms_dir(FORMS_DIR)["prescription"]
    assert {o["const"] for o in prescription_form["properties"]["frein"]["oneOf"]} == set(BARRIERS)
    values = {t.value for t in Thematique}
    for barrier, thematiques in BARRIER_THEMATIQUES.items():
        assert thematiques and set(thematiques) <= values, barrier
    assert BARRIER_THEMATIQUES["contraintes_familiales"][0] == "famille--garde-denfants"
    assert offers.barriers_of(["famille--garde-denfants", "mobilite--preparer-un-permis"]) == [
        "mobilite", "contraintes_familiales"]
    assert offers.barriers_of(["numerique--acceder-a-une-connexion-internet"]) == []


def test_search_by_barrier(session_factory, catalogue):
    assert offer_ids(session_factory, frein="contraintes_familiales") == [
        "test--creche", "demo--garde-enfants-essonne", "test--aidants"]  # by name
    assert offer_ids(session_factory, frein="contraintes_familiales", commune=PALAISEAU) == [
        "demo--garde-enfants-essonne"]  # the only one covering all of Essonne
    assert set(offer_ids(session_factory, frein="difficulte_financiere")) == {
        "test--epicerie", "demo--point-conseil-budget-draveil"}  # (name order depends on the collation)
    assert offer_ids(session_factory, frein="sante", commune=CORBEIL) == [
        "demo--bilan-sante-mds-centre", "test--national"]
    with pytest.raises(InvalidInput) as refused:
        offer_ids(session_factory, frein="garde")
    assert refused.value.errors[0]["field"] == "frein"


def test_search_by_thematique_or_category(session_factory, catalogue):
    assert offer_ids(session_factory, thematique="famille--garde-denfants") == [
        "test--creche", "demo--garde-enfants-essonne"]
    assert offer_ids(session_factory, thematique="famille") == [
        "test--creche", "demo--garde-enfants-essonne", "test--aidants"]
    with pytest.raises(InvalidInput):
        offer_ids(session_factory, thematique="famille--garde")


def test_search_by_commune_covers_communes_epci_departement_france_and_the_provider(session_factory, catalogue):
    evry = offer_ids(session_factory, commune=EVRY)
    assert {"test--creche", "test--aidants", "test--national", "test--epicerie"} <= set(evry)
    assert "test--sans-zone" not in evry and "demo--maintien-logement-corbeil" not in evry
    corbeil = offer_ids(session_factory, commune=CORBEIL)
    assert "test--aidants" in corbeil and "test--creche" not in corbeil  # same EPCI, not the same commune
    palaiseau = offer_ids(session_factory, commune=PALAISEAU)
    assert {"test--national", "test--epicerie", "demo--garde-enfants-essonne",
            "demo--conseil-mobilite-paris-saclay"} <= set(palaiseau)
    assert "test--aidants" not in palaiseau
    # No zone: the communes the provider covers.
    assert "test--sans-zone" in offer_ids(session_factory, commune=DRAVEIL)
    assert offer_ids(session_factory, commune="75056") == ["test--national"]  # Paris: only France-wide


def test_search_by_words_ignores_case_and_accents(session_factory, catalogue):
    assert set(offer_ids(session_factory, q="creche")) == {"test--creche", "demo--garde-enfants-essonne"}
    assert set(offer_ids(session_factory, q="CRÈCHE")) == {"test--creche", "demo--garde-enfants-essonne"}
    assert offer_ids(session_factory, q="epicerie") == ["test--epicerie"]
    assert offer_ids(session_factory, q="ecoute anonyme") == ["test--national"]  # every word
    assert offer_ids(session_factory, q="écoute juriste") == []
    assert offer_ids(session_factory, q="permis", commune=EVRY) == ["demo--auto-ecole-sociale-grand-paris-sud"]
    assert offer_ids(session_factory, q="  ,;  ") == offer_ids(session_factory)  # no words: no filter
    assert offer_ids(session_factory, q="100% *crèche* [x]") == []  # wildcards are plain characters


def test_search_of_self_requestable_offers(session_factory, catalogue):
    found = offer_ids(session_factory, mobilisable_par="usagers", commune=EVRY)
    assert "test--epicerie" in found and "demo--garde-enfants-essonne" in found
    assert "test--creche" not in found
    assert "test--epicerie" not in offer_ids(session_factory, mobilisable_par="professionnels")


@pytest.mark.parametrize("words, expected", [("creches", "test--creche"), ("parent", "test--aidants")])
def test_full_text_search_stems_french_words_on_postgresql(session_factory, catalogue, words, expected):
    with session_factory() as session:
        if session.get_bind().dialect.name != "postgresql":
            pytest.skip("stemming is PostgreSQL's full-text search; SQLite matches substrings")
    assert expected in offer_ids(session_factory, q=words)
