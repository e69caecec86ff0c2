"""The web pages through Flask's test client: login, CSRF, inbox, claim and release, task form, carnet, simulation."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from api.app import create_app
from api.auth import now_utc
from api.extensions import db
from engine.access import AccessLog
from engine.accounts import LoginFailure
from engine.db import transaction
from engine.models import Case, HumanTask
from tests.api_support import ADMIN, CD_REFERENT, CD_SUPERVISOR, DESIGNER, ML_REFERENT, ML_SUPERVISOR
from tests.test_web_support import (
    advance_time,
    complete,
    csrf_token,
    post,
    sign_in,
    start_entry_diagnostic,
    start_ml_exit,
    text,
    user_id,
    web_login,
)
from web.common import safe_next

FREINS = ("mobilite", "contraintes_familiales", "sante", "maitrise_langue", "logement", "difficulte_financiere",
          "difficulte_administrative")
OTHER_ML_REFERENT = "referent.ml-nord-essonne@example.org"  # Mission Locale Nord Essonne: not on the case
ML_COLLEAGUE = "referent2.ml-centre-essonne@example.org"


def access_rows(app, case_id: int) -> list[tuple[str, str, str]]:
    with app.app_context():
        rows = db.session.scalars(select(AccessLog).where(AccessLog.case_id == case_id).order_by(AccessLog.id))
        return [(row.action, row.outcome, row.user_id) for row in rows]


# ---------------------------------------------------------------- login

def test_login_shows_who_and_for_which_structure(client, seeded):
    page = client.get("/connexion")
    assert page.status_code == 200 and "Connexion" in text(page)
    assert 'lang="fr"' in text(page) and 'autocomplete="current-password"' in text(page)

    web_login(client, ML_REFERENT)
    inbox = client.get("/taches")
    body = text(inbox)
    assert inbox.status_code == 200
    assert "Aïcha David" in body and "Référent de parcours" in body and "Mission Locale Centre Essonne" in body
    assert "Mode simulation" in body and "5 janvier 2026" in body
    assert "Avancer le temps" not in body  # référents see the banner, not the control

    assert "script-src 'self'" in inbox.headers["Content-Security-Policy"]
    assert inbox.headers["X-Frame-Options"] == "DENY" and inbox.headers["Cache-Control"] == "no-store"
    assert "<script>" not in body  # no inline script: the CSP holds
    assert client.get("/connexion").status_code == 302  # already signed in
    logout = post(client, "/deconnexion")
    assert logout.status_code == 303 and logout.headers["Location"].endswith("/connexion")
    assert client.get("/taches").status_code == 302


def test_wrong_password_then_throttled(client, seeded):
    token = csrf_token(client)
    wrong = client.post("/connexion", data={"email": ML_REFERENT, "password": "pas le bon", "csrf_token": token})
    assert wrong.status_code == 401
    assert "Adresse électronique ou mot de passe incorrect." in text(wrong)
    assert f'value="{ML_REFERENT}"' in text(wrong)  # the address is kept
    with client.application.app_context(), transaction(db.session):  # nine more failures, as if typed
        db.session.add_all([LoginFailure(email=ML_REFERENT, address="127.0.0.1", at=now_utc()) for _ in range(9)])
    blocked = client.post("/connexion", data={"email": ML_REFERENT, "password": "essonne-demo-2026",
                                              "csrf_token": token})
    assert blocked.status_code == 429
    assert "Trop de tentatives de connexion" in text(blocked)


def test_pages_send_visitors_to_login_and_back(client, seeded):
    response = client.get("/taches?vue=structure")
    assert response.status_code == 302
    assert response.headers["Location"] == "/connexion?suivant=/taches?vue%3Dstructure"
    token = csrf_token(client)
    back = client.post("/connexion", data={"email": CD_REFERENT, "password": "essonne-demo-2026",
                                           "csrf_token": token, "suivant": "/taches?vue=structure"})
    assert back.status_code == 303 and back.headers["Location"] == "/taches?vue=structure"


@pytest.mark.parametrize("target", ["https://exemple.com/", "//exemple.com/", "/\\exemple.com", "javascript:alert(1)",
                                    "", None, "taches"])
def test_going_back_after_login_never_leaves_the_site(target):
    assert safe_next(target, "/taches") == "/taches"
    assert safe_next("/dossiers/3?onglet=historique", "/taches") == "/dossiers/3?onglet=historique"


# ---------------------------------------------------------------- CSRF

def test_posts_without_the_session_token_are_refused(client, seeded):
    ids = start_ml_exit(seeded)
    assert client.post("/connexion", data={"email": CD_REFERENT, "password": "essonne-demo-2026"}).status_code == 400
    before = csrf_token(client)
    web_login(client, CD_REFERENT)
    assert csrf_token(client, "/taches") != before  # a token seen before login is worth nothing after it
    task = ids["designate_id"]
    for path in (f"/taches/{task}/prendre", f"/taches/{task}", "/deconnexion", "/simulation/avancer"):
        refused = client.post(path, data={"duree": "P1D"})
        assert refused.status_code == 400, path
        assert "Le formulaire a expiré" in text(refused)
        wrong = client.post(path, data={"duree": "P1D", "csrf_token": "a" * 43})
        assert wrong.status_code == 400, path
    # The header works too (scripts), and nothing was claimed above.
    with client.application.app_context():
        assert db.session.get(HumanTask, task).state == "open"
    claimed = client.post(f"/taches/{task}/prendre", headers={"X-CSRF-Token": csrf_token(client, "/taches")})
    assert claimed.status_code == 303



# ---------------------------------------------------------------- inbox

def test_inbox_views_counts_filter_and_sort(client, seeded):
    ids = start_ml_exit(seeded)
    sign_in(client, CD_REFERENT)
    mine = text(client.get("/taches"))
    assert re.search(r'id="compte-mes-taches">0<', mine) and re.search(r'id="compte-structure">1<', mine)
    assert re.search(r'id="compte-en-retard">0<', mine)
    assert "Aucune tâche à votre nom" in mine

    queue = text(client.get("/taches?vue=structure"))
    assert f'id="tache-{ids["designate_id"]}"' in queue and "Inès Martin" in queue
    assert "Jeune sortant de Mission Locale" in queue and "dans 15 jours" in queue
    assert text(client.get("/taches?vue=structure&tri=creation")).count('<tr id="tache-') == 1

    other = text(client.get("/taches?vue=structure&parcours=brsa-oriente-social"))
    assert '<tr id="tache-' not in other and re.search(r'id="compte-structure">0<', other)
    same = text(client.get("/taches?vue=structure&parcours=jeune-sortant-mission-locale"))
    assert f'id="tache-{ids["designate_id"]}"' in same

    assert client.get("/taches?vue=tout").status_code == 400
    assert client.get("/taches?tri=nom").status_code == 400
    assert client.get("/taches?parcours=inconnu").status_code == 400

    advance_time(seeded, "P16D")
    late = text(client.get("/taches?vue=en-retard"))
    assert f'id="tache-{ids["designate_id"]}"' in late and "en retard de 1 jour" in late and "Escalade 1" in late



# ---------------------------------------------------------------- claim and release

def test_claim_and_release_with_a_plain_form(client, seeded):
    ids = start_ml_exit(seeded)
    task = ids["designate_id"]
    sign_in(client, CD_REFERENT)
    claimed = post(client, f"/taches/{task}/prendre", {"suivant": "/taches?vue=structure"})
    assert claimed.status_code == 303 and claimed.headers["Location"] == "/taches?vue=structure"
    assert "Tâche prise" in text(client.get("/taches"))
    with client.application.app_context():
        assert db.session.get(HumanTask, task).assignee == CD_REFERENT
    released = post(client, f"/taches/{task}/liberer")
    assert released.status_code == 303 and released.headers["Location"] == f"/taches/{task}"
    assert ("task.claim", "allowed") in [(a, o) for a, o, _ in access_rows(client.application, ids["case_id"])]


def test_claim_with_htmx_returns_the_row_and_the_counts(client, seeded):
    ids = start_ml_exit(seeded)
    task = ids["designate_id"]
    sign_in(client, CD_REFERENT)
    response = post(client, f"/taches/{task}/prendre", {"contexte": "liste", "parcours": ""},
                    headers={"HX-Request": "true"})
    body = text(response)
    assert response.status_code == 200 and body.lstrip().startswith(f'<tr id="tache-{task}"')
    assert "Prise par vous" in body and "Libérer" in body
    assert re.search(r'id="compte-mes-taches" hx-swap-oob="true">1<', body)
    assert 'id="annonce"' in body and "Tâche prise" in body


def test_a_claimed_task_cannot_be_taken_by_a_colleague(client, seeded):
    ids = start_ml_exit(seeded)
    task = ids["designate_id"]
    sign_in(client, CD_SUPERVISOR)  # supervisors work their structure's tasks too
    assert post(client, f"/taches/{task}/prendre").status_code == 303
    colleague = client.application.test_client()
    sign_in(colleague, CD_REFERENT)
    refused = post(colleague, f"/taches/{task}/prendre", {"contexte": "liste"}, headers={"HX-Request": "true"})
    assert refused.status_code == 200 and "déjà été prise par" in text(refused)
    page = text(colleague.get(f"/taches/{task}"))
    assert "Seule la personne qui a pris la tâche peut remplir ce formulaire." in page
    assert "<fieldset class=\"formulaire__champs\" disabled>" in page
    not_mine = post(colleague, f"/taches/{task}", {"referent_email": CD_REFERENT, "date_designation": "2026-01-06"})
    assert not_mine.status_code == 409 and "Prenez d&#39;abord cette tâche" in text(not_mine)


# ---------------------------------------------------------------- task form

def test_task_form_errors_are_shown_beside_the_fields_and_values_kept(client, seeded):
    ids = start_ml_exit(seeded)
    task = ids["designate_id"]
    sign_in(client, CD_REFERENT)
    form = text(client.get(f"/taches/{task}"))
    assert "Prenez cette tâche pour remplir le formulaire." in form
    assert 'for="champ-referent_email"' in form and 'type="email"' in form and 'type="date"' in form
    post(client, f"/taches/{task}/prendre")

    bad = post(client, f"/taches/{task}", {"referent_email": "vincent.mercier", "commentaire": "Relais « accepté »"})
    body = text(bad)
    assert bad.status_code == 422
    assert "Le formulaire contient 2 erreurs" in body
    assert re.search(r'id="champ-referent_email-erreur">.*adresse électronique valide', body)
    assert re.search(r'id="champ-date_designation-erreur">.*Ce champ est obligatoire', body)
    assert 'value="vincent.mercier"' in body and "Relais « accepté »</textarea>" in body
    assert 'aria-describedby="champ-referent_email-erreur"' in body and 'aria-invalid="true"' in body
    assert '<a href="#champ-referent_email">' in body
    assert "<title>Erreur : " in body

    # A well-formed address of nobody: the engine refuses, the page says it beside the field.
    unknown = post(client, f"/taches/{task}", {"referent_email": "personne@example.org",
                                               "date_designation": "2026-01-06"})
    assert unknown.status_code == 422
    assert "Aucun professionnel actif n&#39;a cette adresse électronique." in text(unknown)

    done = post(client, f"/taches/{task}", {"referent_email": CD_REFERENT, "date_designation": "06/01/2026"})
    assert done.status_code == 303 and done.headers["Location"] == f"/dossiers/{ids['case_id']}"
    carnet = text(client.get(done.headers["Location"]))
    assert "Tâche « Accepter le relais et désigner le référent » validée." in carnet
    assert "Passage de relais" in carnet and "Vincent Mercier" in carnet and "Aïcha David" in carnet
    with client.application.app_context():
        assert db.session.get(HumanTask, task).state == "completed"
    actions = [(a, o) for a, o, _ in access_rows(client.application, ids["case_id"])]
    assert ("task.read", "allowed") in actions and ("task.complete", "allowed") in actions



def test_pages_give_the_workflow_back_unchanged_for_the_form_sent_from_them(client, seeded):
    """Task page, carnet, then the form: one parse of the case's state in all, and the pages change nothing."""
    ids = start_ml_exit(seeded)
    task, case_id = ids["designate_id"], ids["case_id"]
    ctx = seeded.extensions["spie"]
    ctx.workflows.clear()  # as in a web process that did not save the case last
    sign_in(client, CD_REFERENT)
    post(client, f"/taches/{task}/prendre")
    colleague = client.application.test_client()
    sign_in(colleague, ML_REFERENT)
    hits, misses = ctx.workflows.hits, ctx.workflows.misses

    assert client.get(f"/taches/{task}").status_code == 200  # parses the state, keeps the workflow
    assert colleague.get(f"/dossiers/{case_id}").status_code == 200
    with seeded.app_context():
        saved = db.session.get(Case, case_id).state
    kept = ctx.workflows._items[case_id]
    assert kept.state == saved and ctx.serializer.dump(kept.workflow) == saved
    done = post(client, f"/taches/{task}", {"referent_email": CD_REFERENT, "date_designation": "06/01/2026"})
    assert done.status_code == 303
    assert (ctx.workflows.hits, ctx.workflows.misses) == (hits + 2, misses + 1)


# ---------------------------------------------------------------- the carnet

def test_case_page_for_the_care_team_and_404_for_another_structure(client, seeded):
    ids = start_ml_exit(seeded)
    case = ids["case_id"]
    sign_in(client, ML_REFERENT)
    page = client.get(f"/dossiers/{case}")
    body = text(page)
    assert page.status_code == 200
    for expected in ("Dossier de Inès Martin", "2 janvier 2001", "Évry-Courcouronnes (91228)", "Groupe de suivi",
                     "Mission Locale Centre Essonne", "Historique", "Parcours démarré", "Schéma du parcours",
                     "Tâche terminée", "Préparer la sortie de la Mission Locale"):
        assert expected in body, expected
    markers = re.search(r'<script type="application/json" id="schema-marqueurs">(.*?)</script>', body, re.DOTALL).group(1)
    assert "preparer-sortie" in markers
    diagram = client.get(f"/dossiers/{case}/diagramme.bpmn")
    assert diagram.status_code == 200 and diagram.mimetype == "application/xml"
    assert b"jeune-sortant-mission-locale" in diagram.data
    # The ML référent sees the case, not the Département's queue, and may not work its task.
    assert f'id="tache-{ids["designate_id"]}"' not in text(client.get("/taches?vue=structure"))
    assert client.get(f"/taches/{ids['designate_id']}").status_code == 403

    outsider = client.application.test_client()
    sign_in(outsider, OTHER_ML_REFERENT)
    for path in (f"/dossiers/{case}", f"/dossiers/{case}/diagramme.bpmn", f"/taches/{ids['designate_id']}"):
        refused = outsider.get(path)
        assert refused.status_code == 404, path
        assert "Page introuvable" in text(refused)
    assert outsider.get("/dossiers/999999").status_code == 404
    outsider_id = user_id(client.application, OTHER_ML_REFERENT)
    denied = [(a, o) for a, o, u in access_rows(client.application, case) if u == outsider_id]
    assert denied == [("case.read", "denied"), ("case.diagram", "denied"), ("task.read", "denied")]
    assert ("case.read", "allowed") in [(a, o) for a, o, _ in access_rows(client.application, case)]

    colleague = client.application.test_client()  # same structure as the care team's référent
    sign_in(colleague, ML_COLLEAGUE)
    assert colleague.get(f"/dossiers/{case}").status_code == 200


def test_the_diagnostic_is_shown_only_where_the_person_consented(client, seeded):
    ids = start_entry_diagnostic(seeded)
    diagnostic = {"date_diagnostic": "2026-01-05", "situation_professionnelle": "recherche_emploi",
                  "niveau_formation": "NV4", "freins": {k: {"valeur": "NON"} for k in FREINS},
                  "besoins": ["se_former"], "consentement_partage": False}
    complete(seeded, ids["diagnostic_id"], diagnostic, ML_REFERENT)
    sign_in(client, ML_REFERENT)  # the author's structure
    own = text(client.get(f"/dossiers/{ids['case_id']}"))
    assert "En recherche d&#39;emploi" in own and "Bac ou équivalent" in own and "Se former" in own
    department = client.application.test_client()  # holds « Valider l'orientation »: sees the case
    sign_in(department, CD_REFERENT)
    other = text(department.get(f"/dossiers/{ids['case_id']}"))
    assert "La personne n'a pas consenti à son partage" in other
    assert "En recherche d&#39;emploi" not in other and "Bac ou équivalent" not in other


# ---------------------------------------------------------------- simulation

def test_simulation_advance_for_supervisors_only(client, seeded):
    start_ml_exit(seeded)
    sign_in(client, ML_REFERENT)
    assert post(client, "/simulation/avancer", {"duree": "P1D"}).status_code == 403

    chief = client.application.test_client()
    sign_in(chief, ML_SUPERVISOR)
    assert "Avancer le temps" in text(chief.get("/taches"))
    assert post(chief, "/simulation/avancer", {"duree": "P2Y"}).status_code == 400
    moved = post(chief, "/simulation/avancer", {"duree": "P7D", "suivant": "/taches?vue=structure"})
    assert moved.status_code == 303 and moved.headers["Location"] == "/taches?vue=structure"
    page = text(chief.get("/taches"))
    assert "Temps avancé de 1 semaine : nous sommes le 12 janvier 2026 à 10 h 00" in page

    admin = client.application.test_client()
    sign_in(admin, ADMIN)
    assert post(admin, "/simulation/avancer", {"duree": "P1D"}, token_from="/").status_code == 303

    designer = client.application.test_client()  # no inbox, no clock
    sign_in(designer, DESIGNER)
    assert "Concepteur de parcours" in text(designer.get("/"))
    assert designer.get("/taches").status_code == 403
    assert post(designer, "/simulation/avancer", {"duree": "P1D"}, token_from="/").status_code == 403


def test_no_simulation_outside_simulation_mode(seeded, database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SPIE_INSTANCE_PATH", str(tmp_path))
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SPIE_SIMULATION": False, "TESTING": True})
    try:
        client = app.test_client()
        sign_in(client, CD_SUPERVISOR)
        page = text(client.get("/taches"))
        assert "Mode simulation" not in page and "Avancer le temps" not in page
        assert post(client, "/simulation/avancer", {"duree": "P1D"}).status_code == 404
    finally:
        with app.app_context():
            db.engine.dispose()


# ---------------------------------------------------------------- assets and headers

def test_vendor_files_are_a_whitelist(client):
    htmx = client.get("/vendor/htmx.min.js?v=2.0.11")
    if htmx.status_code == 404:
        pytest.skip("node_modules is missing (npm ci)")
    assert htmx.status_code == 200 and "max-age=31536000" in htmx.headers["Cache-Control"]
    assert client.get("/vendor/bpmn-navigated-viewer.js").status_code == 200
    for path in ("/vendor/package.json", "/vendor/..%2Fpackage.json", "/vendor/axe.min.js"):
        assert client.get(path).status_code == 404, path

