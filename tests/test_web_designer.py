"""The designer pages through Flask's test client, on SQLite and PostgreSQL: pathway list, version, modeler,
« Vérifier » (the deploy checks without deploying), « Déployer » and the change list."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from api.extensions import db
from engine.models import PathwayVersion
from engine.paths import BPMN_DIR
from tests.api_support import ADMIN, DESIGNER, ML_REFERENT
from tests.test_web_support import csrf_token, sign_in, text

RELAIS = (BPMN_DIR / "passage-de-relais.bpmn").read_text(encoding="utf-8")
ML = (BPMN_DIR / "jeune-sortant-mission-locale.bpmn").read_text(encoding="utf-8")
NO_LANE_TYPE = RELAIS.replace(' name="Département (pilote SPIE)" spie:structureType="departement"',
                              ' name="Département (pilote SPIE)"')
TEN_DAYS = RELAIS.replace('<bpmn:timeDuration>"P15D"</bpmn:timeDuration>',
                          '<bpmn:timeDuration>"P10D"</bpmn:timeDuration>')


@pytest.fixture
def designer(seeded):
    client = seeded.test_client()
    sign_in(client, DESIGNER)
    return client


def send(client, path: str, xml: str | bytes, token: str | None = "page"):
    headers = {"Content-Type": "application/xml; charset=utf-8"}
    if token == "page":
        token = csrf_token(client, "/parcours")
    if token is not None:
        headers["X-CSRF-Token"] = token
    return client.post(path, data=xml.encode("utf-8") if isinstance(xml, str) else xml, headers=headers)


def versions(app, key: str) -> list[tuple[int, str]]:
    with app.app_context():
        return db.session.execute(select(PathwayVersion.version, PathwayVersion.deployed_by)
                                  .where(PathwayVersion.key == key).order_by(PathwayVersion.version)).tuples().all()


def test_list_of_pathways_and_their_versions(designer, seeded):
    page = designer.get("/parcours")
    assert page.status_code == 200
    body = text(page)
    assert "<h1>Parcours</h1>" in body
    assert 'href="/parcours" aria-current="page">Parcours</a>' in body
    with seeded.app_context():
        count = db.session.scalar(select(func.count()).select_from(PathwayVersion))
        relais = db.session.scalar(select(PathwayVersion).where(PathwayVersion.key == "passage-de-relais"))
        sha = relais.sha256
    assert body.count('<th scope="row">1</th>') == count
    for name in ("Jeune sortant de Mission Locale", "Passage de relais", "Entrée et diagnostic"):
        assert name in body
    assert f'<code title="{sha}">{sha[:12]}</code>' in body
    assert 'href="/parcours/passage-de-relais/versions/1"' in body
    assert 'href="/parcours/passage-de-relais/versions/1/modeler"' in body
    assert 'href="/parcours/passage-de-relais/modeler"' in body


def test_version_page_source_and_modeler(designer):
    page = designer.get("/parcours/passage-de-relais/versions/1")
    assert page.status_code == 200
    assert "Passage de relais" in text(page) and "Ouvrir dans le modeleur" in text(page)
    source = designer.get("/parcours/passage-de-relais/versions/1/schema.bpmn")
    assert source.status_code == 200 and source.mimetype == "application/xml"
    assert text(source) == RELAIS

    modeler = designer.get("/parcours/passage-de-relais/modeler")
    assert modeler.status_code == 200
    body = text(modeler)
    assert 'data-source="/parcours/passage-de-relais/versions/1/schema.bpmn"' in body
    assert 'data-verifier="/parcours/passage-de-relais/verifier"' in body
    assert re.search(r'data-csrf="[^"]{20,}"', body)
    data = re.search(r'<script type="application/json" id="modeleur-choix">(.*?)</script>', body, re.S)
    choices = json.loads(data[1])
    assert ["escalade", "Traitement d'une escalade"] in choices["forms"]
    assert ["departement", "Département"] in choices["structure_types"]
    assert "<script>" not in body  # CSP: no inline script
    assert designer.get("/parcours/passage-de-relais/versions/1/modeler").status_code == 200
    warned = text(designer.get("/parcours/jeune-sortant-mission-locale/versions/1"))
    assert "Avertissements du déploiement" in warned
    assert ("Minuterie calculée à l&#39;exécution : non vérifiable au déploiement</strong>"
            " — élément <code>butee-26-ans</code>") in warned
    assert "Minuterie (date) de butee-26-ans : calculée à l&#39;exécution (" in warned  # the detail is French too
    assert 'lang="en"' not in warned
    assert "Avertissements du déploiement" not in text(page)
    assert designer.get("/parcours/inconnu/modeler").status_code == 404
    assert designer.get("/parcours/passage-de-relais/versions/9").status_code == 404


def test_check_reports_a_lane_without_structure_type_and_stores_nothing(designer, seeded):
    response = send(designer, "/parcours/passage-de-relais/verifier", NO_LANE_TYPE)
    assert response.status_code == 200
    data = response.get_json()
    lane = [p for p in data["problems"] if p["rule"] == "spie-lane-structure-type"]
    assert len(lane) == 1 and data["errors"] == 1
    assert lane[0]["element_id"] == "lane-pilote"
    assert lane[0]["line"] == NO_LANE_TYPE[:NO_LANE_TYPE.index('id="lane-pilote"')].count("\n") + 1
    assert lane[0]["title"] == "Couloir sans typologie de structure connue"
    assert lane[0]["severity_label"] == "Erreur"
    assert "'Département (pilote SPIE)'" in lane[0]["message"]
    assert lane[0]["detail"].startswith("Le couloir « Département (pilote SPIE) » ne correspond à aucune typologie")
    assert lane[0]["detail_lang"] == "fr" and lane[0]["code"] == "lane-unknown-type"
    assert data["message"] == "1 erreur : à corriger avant de déployer."
    assert versions(seeded, "passage-de-relais") == [(1, "designer")]

    clean = send(designer, "/parcours/passage-de-relais/verifier", RELAIS).get_json()
    assert clean == {"problems": [], "errors": 0, "message": "Aucun problème : le parcours peut être déployé."}


def test_deploy_creates_version_2_by_the_designer_and_lists_the_changes(designer, seeded):
    response = send(designer, "/parcours/passage-de-relais/deployer", TEN_DAYS)
    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    assert data == {"created": True, "version": 2, "redirect": "/parcours/passage-de-relais/versions/1/differences/2"}
    assert versions(seeded, "passage-de-relais") == [(1, "designer"), (2, DESIGNER)]
    with seeded.app_context():
        stored = db.session.scalar(select(PathwayVersion.bpmn_xml).where(
            PathwayVersion.key == "passage-de-relais", PathwayVersion.version == 2))
    assert stored == TEN_DAYS

    changes = designer.get(data["redirect"])
    assert changes.status_code == 200
    body = text(changes)
    assert "Version 2 de « Passage de relais » déployée." in body
    assert "1 changement<" in body
    assert "Minuterie modifiée : P15D → P10D sur « 15 jours » (événement de bordure)" in body

    listing = text(designer.get("/parcours"))
    assert 'href="/parcours/passage-de-relais/versions/1/differences/2"' in listing
    assert "<td>Nadia Bernard</td>" in listing  # the author, by name when an account has that address


def test_identical_content_keeps_the_version(designer, seeded):
    response = send(designer, "/parcours/passage-de-relais/deployer", RELAIS)
    assert response.status_code == 200
    assert response.get_json() == {"created": False, "version": 1,
                                   "message": "Contenu identique à la version 1 : aucune nouvelle version déployée."}
    assert versions(seeded, "passage-de-relais") == [(1, "designer")]


def test_deploy_refuses_lint_errors_malformed_xml_and_another_process(designer, seeded):
    refused = send(designer, "/parcours/passage-de-relais/deployer", NO_LANE_TYPE)
    assert refused.status_code == 422
    data = refused.get_json()
    assert [p["element_id"] for p in data["problems"]] == ["lane-pilote"]
    assert data["message"] == "Rien n'a été déployé. 1 erreur : à corriger avant de déployer."

    malformed = send(designer, "/parcours/passage-de-relais/deployer", RELAIS[:2000])
    assert malformed.status_code == 422
    [problem] = malformed.get_json()["problems"]
    assert problem["rule"] == "xml-syntax"
    assert problem["title"] == "Le fichier n'est pas un XML bien formé"
    assert problem["line"] > 1
    assert send(designer, "/parcours/passage-de-relais/verifier", "pas du XML").get_json()["problems"][0]["rule"] == \
        "xml-syntax"

    other = send(designer, "/parcours/passage-de-relais/deployer", ML)
    assert other.status_code == 422
    [problem] = other.get_json()["problems"]
    assert problem["rule"] == "process-key" and problem["title"] == "Identifiant du processus modifié"

    empty = send(designer, "/parcours/passage-de-relais/deployer", "  ")
    assert empty.status_code == 400 and "Aucun schéma BPMN reçu" in text(empty)
    assert versions(seeded, "passage-de-relais") == [(1, "designer")]
    assert versions(seeded, "jeune-sortant-mission-locale") == [(1, "designer")]


def test_size_bound(designer, seeded):
    padding = "<!--" + "x" * (5 * 1024 * 1024) + "-->"
    big = RELAIS.replace("<bpmn:collaboration", padding + "<bpmn:collaboration", 1)
    response = send(designer, "/parcours/passage-de-relais/deployer", big)
    assert response.status_code == 413
    assert response.get_json()["message"] == "Le schéma dépasse la taille maximale acceptée (5 Mo)."
    huge = send(designer, "/parcours/passage-de-relais/verifier", b"<" * (9 * 1024 * 1024))
    assert huge.status_code == 413
    assert versions(seeded, "passage-de-relais") == [(1, "designer")]


def test_a_new_version_keeps_the_decision_tables(designer, seeded):
    """The modeler edits the BPMN only: the DMN of the version it replaces goes with it."""
    with seeded.app_context():
        before = db.session.scalar(select(PathwayVersion).where(PathwayVersion.key == "entree-diagnostic"))
        xml, dmns = before.bpmn_xml, before.dmn_xml
    assert dmns
    changed = xml.replace('"P30D"', '"P20D"', 1)
    assert changed != xml
    response = send(designer, "/parcours/entree-diagnostic/deployer", changed)
    assert response.status_code == 201, response.get_json()
    with seeded.app_context():
        after = db.session.scalar(select(PathwayVersion).where(PathwayVersion.key == "entree-diagnostic",
                                                               PathwayVersion.version == 2))
        assert after.dmn_xml == dmns


def test_csrf_is_required(designer, seeded):
    for token in (None, "un-jeton-quelconque"):
        response = send(designer, "/parcours/passage-de-relais/deployer", TEN_DAYS, token=token)
        assert response.status_code == 400
        assert "Le formulaire a expiré" in text(response)
    assert versions(seeded, "passage-de-relais") == [(1, "designer")]


def test_referents_get_403_and_admins_may_enter(seeded):
    client = seeded.test_client()
    sign_in(client, ML_REFERENT)
    assert 'href="/parcours"' not in text(client.get("/taches"))
    for path in ("/parcours", "/parcours/passage-de-relais/versions/1", "/parcours/passage-de-relais/modeler",
                 "/parcours/passage-de-relais/versions/1/schema.bpmn",
                 "/parcours/passage-de-relais/versions/1/differences/1"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "réservés aux concepteurs de parcours" in text(response)
    token = csrf_token(client, "/taches")
    refused = send(client, "/parcours/passage-de-relais/deployer", TEN_DAYS, token=token)
    assert refused.status_code == 403
    assert versions(seeded, "passage-de-relais") == [(1, "designer")]

    anonymous = seeded.test_client().get("/parcours")
    assert anonymous.status_code == 302 and "/connexion" in anonymous.headers["Location"]

    admin = seeded.test_client()
    sign_in(admin, ADMIN)
    assert admin.get("/parcours").status_code == 200
