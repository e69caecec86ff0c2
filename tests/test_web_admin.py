"""The administrators' pages through Flask's test client: accounts, directory, access log, home page and header.

Each test runs on SQLite and PostgreSQL on the seeded Essonne demo (70 accounts, 33 structures).
"""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from markupsafe import escape
from sqlalchemy import delete, func, select

from api.auth import now_utc
from api.extensions import db
from engine import user_admin
from engine.access import AccessLog
from engine.accounts import authenticate
from engine.admin_log import AdminEvent
from engine.db import transaction
from engine.directory import Structure, StructureCoverage, User, user_by_email
from engine.directory_io import export_structures
from engine.models import HumanTask
from tests.api_support import ADMIN, CD_REFERENT, CD_SUPERVISOR, DEMO_PASSWORD, DESIGNER, ML_REFERENT, PILOT, login
from tests.test_web_support import csrf_token, post, sign_in, start_ml_exit, text, user_id, web_login
from web.labels import PARIS

ML_CENTRE = "Mission Locale Centre Essonne"
MDS_CENTRE = "Département de l'Essonne — MDS Centre"
ML_COLLEAGUE = "referent2.ml-centre-essonne@example.org"  # no case in the demo
ADMIN_PAGES = ("/admin/utilisateurs", "/admin/utilisateurs/nouveau", "/admin/annuaire", "/admin/annuaire/import",
               "/admin/journal", "/admin/journal?vue=administration")
PASSWORD_SHOWN = re.compile(r'<code class="mot-de-passe" id="nouveau-mot-de-passe">([^<]+)</code>')
GOOD_SIRET = "73282932000074"


def as_admin(app):
    client = app.test_client()
    sign_in(client, ADMIN)
    return client


def admin_post(client, path: str, data: dict | None = None, **kwargs):
    return post(client, path, data, token_from="/admin/utilisateurs", **kwargs)


def structure_id(app, name: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Structure.id).where(Structure.name == name))


def events(app, action: str) -> list[AdminEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AdminEvent).where(AdminEvent.action == action).order_by(AdminEvent.id)))


def field_error(body: str, name: str) -> str:
    found = re.search(rf'id="champ-{name}-erreur"><span class="vh">Erreur : </span>([^<]*)</p>', body)
    return found.group(1) if found else ""


# ---------------------------------------------------------------- who may come

def test_every_admin_page_opens_for_the_admin_only(client, seeded):
    admin = as_admin(seeded)
    ml_centre = structure_id(seeded, ML_CENTRE)
    pages = ADMIN_PAGES + (f"/admin/utilisateurs/{user_id(seeded, ML_REFERENT)}", f"/admin/annuaire/{ml_centre}")
    for path in pages:
        page = admin.get(path)
        assert page.status_code == 200, path
        body = text(page)
        assert "Camille Martin" in body and "Administrateur" in body and "Mission SPIE" in body, path
        for label in ("Utilisateurs", "Annuaire", "Journal des accès"):
            assert f">{label}</a>" in body, (path, label)
    nav = text(admin.get("/admin/annuaire"))
    assert 'href="/admin/annuaire" aria-current="page">Annuaire' in nav
    assert 'href="/admin/annuaire/import" aria-current' not in nav
    assert 'href="/admin/annuaire" aria-current="true">Annuaire' in text(admin.get(f"/admin/annuaire/{ml_centre}"))
    assert admin.get("/admin/utilisateurs/999999").status_code == 404
    assert admin.get("/admin/annuaire/999999").status_code == 404

    assert client.get("/admin/utilisateurs?q=x").headers["Location"] == "/connexion?suivant=/admin/utilisateurs?q%3Dx"
    for email in (ML_REFERENT, CD_SUPERVISOR, PILOT, DESIGNER):
        other = seeded.test_client()
        sign_in(other, email)
        assert ">Utilisateurs</a>" not in text(other.get("/", follow_redirects=True))
        for path in pages + ("/admin/annuaire/export.csv",):
            refused = other.get(path)
            assert refused.status_code == 403, (email, path)
            assert "Ces pages sont réservées aux administrateurs." in text(refused)
        token = csrf_token(other, "/admin/utilisateurs")  # the 403 page has the logout form
        for path in ("/admin/utilisateurs/nouveau", f"/admin/utilisateurs/{user_id(seeded, ML_COLLEAGUE)}/desactiver",
                     "/admin/annuaire/import"):
            assert other.post(path, data={"csrf_token": token, "name": "X"}).status_code == 403, (email, path)
    with seeded.app_context():
        assert user_by_email(db.session, ML_COLLEAGUE).active


def test_admin_forms_need_the_session_token(client, seeded):
    admin = as_admin(seeded)
    colleague = user_id(seeded, ML_COLLEAGUE)
    for path in ("/admin/utilisateurs/nouveau", f"/admin/utilisateurs/{colleague}/desactiver",
                 f"/admin/utilisateurs/{colleague}/modifier", f"/admin/utilisateurs/{colleague}/mot-de-passe",
                 "/admin/annuaire/import"):
        for data in ({}, {"csrf_token": "a" * 43}):
            refused = admin.post(path, data={**data, "name": "Zoé Petit", "email": "zoe@example.org", "role": "admin"})
            assert refused.status_code == 400, path
            assert "Le formulaire a expiré" in text(refused)
    with seeded.app_context():
        assert user_by_email(db.session, "zoe@example.org") is None
        assert user_by_email(db.session, ML_COLLEAGUE).active
        assert db.session.scalar(select(func.count()).select_from(AdminEvent)) == 0


# ---------------------------------------------------------------- the header and the home page

@pytest.mark.parametrize("email, name, role, structure", [
    (ML_REFERENT, "Aïcha David", "Référent de parcours", ML_CENTRE),
    (CD_SUPERVISOR, "Amina Lefèvre", "Encadrant de structure", "MDS Centre"),
    (PILOT, "Julien Dubois", "Pilote SPIE", "Mission SPIE"),
    (DESIGNER, "Nadia Bernard", "Concepteur de parcours", "Mission SPIE"),
    (ADMIN, "Camille Martin", "Administrateur", "Mission SPIE"),
])
def test_the_header_says_who_and_for_which_structure(client, seeded, email, name, role, structure):
    sign_in(client, email)
    home = client.get("/", follow_redirects=True)
    header = text(home).split("<header", 1)[1].split("</header>", 1)[0]
    assert name in header and role in header and structure in header


def test_the_header_says_so_when_an_administrator_has_no_structure(client, seeded):
    with seeded.app_context(), transaction(db.session):
        user_admin.create_user(db.session, actor=None, email="root@example.org", name="Admin Racine", role="admin",
                               structure_id=None, password=None, now=now_utc())
    sign_in(client, "root@example.org")
    header = text(client.get("/")).split("<header", 1)[1].split("</header>", 1)[0]
    assert "Admin Racine" in header and "Administrateur · sans structure" in header


def test_home_page_links_each_role_to_its_sections(client, seeded):
    response = web_login(client, ADMIN)
    assert response.headers["Location"] == "/"  # not the inbox, which is not theirs
    body = text(client.get("/"))
    for path, label in (("/admin/utilisateurs", "Utilisateurs"), ("/admin/annuaire", "Annuaire"),
                        ("/admin/journal", "Journal des accès")):
        assert f'<a href="{path}">{label}</a>' in body
    assert "Créer les comptes des professionnels" in body

    sign_in(client, PILOT)
    pilot = text(client.get("/"))
    assert '<a href="/taches">Tâches</a>' in pilot and "Vos espaces" in pilot
    assert "en tant que pilote SPIE (Département" in pilot and "aria-current" not in pilot.split("</nav>")[0]
    sign_in(client, DESIGNER)
    assert client.get("/").status_code == 200
    sign_in(client, ML_REFERENT)
    assert client.get("/").headers["Location"] == "/taches"
    assert web_login(seeded.test_client(), CD_REFERENT).headers["Location"] == "/taches"


# ---------------------------------------------------------------- accounts

def test_accounts_are_searched_filtered_and_paginated(client, seeded):
    admin = as_admin(seeded)
    everyone = text(admin.get("/admin/utilisateurs"))
    assert "— 70 comptes" in everyone and "Page 1 sur 3" in everyone
    assert "Aïcha David" in everyone  # sorted by name: A comes first
    last = text(admin.get("/admin/utilisateurs?page=3"))
    assert "Page 3 sur 3" in last and "Page précédente" in last and "Page suivante" not in last
    assert "Page 3 sur 3" in text(admin.get("/admin/utilisateurs?page=999"))

    by_email = text(admin.get("/admin/utilisateurs?q=MDS-CENTRE"))
    assert "— 3 comptes" in by_email and "Vincent Mercier" in by_email and "Chloé Dupont" in by_email
    by_name = text(admin.get("/admin/utilisateurs?q=mercier"))
    assert "— 1 compte<" in by_name and "Vincent Mercier" in by_name
    assert "— 0 compte" in text(admin.get("/admin/utilisateurs?q=%25"))  # a LIKE wildcard is a character
    for typed in ("Élodie", "elodie", "ÉLODIE", "élodie richard"):  # case and accents ignored on both databases
        found = text(admin.get(f"/admin/utilisateurs?q={typed}"))
        assert "— 1 compte<" in found and "Élodie Richard" in found, typed
    assert "Aïcha David" in text(admin.get("/admin/utilisateurs?q=aicha"))
    assert "— 0 compte" in text(admin.get("/admin/utilisateurs?q=*"))  # a GLOB wildcard is a character too

    ml = structure_id(seeded, ML_CENTRE)
    in_ml = text(admin.get(f"/admin/utilisateurs?structure={ml}&role=referent"))
    assert "— 2 comptes" in in_ml and "Aïcha David" in in_ml and "Antoine Bertrand" in in_ml
    assert "Hugo Garcia" not in in_ml  # their supervisor
    assert f'<option value="{ml}" selected>' in in_ml and '<option value="referent" selected>' in in_ml
    paged = text(admin.get(f"/admin/utilisateurs?role=supervisor&page=2"))
    assert "Page 2 sur 2" in paged and 'href="/admin/utilisateurs?page=1&amp;role=supervisor"' in paged
    designers = text(admin.get("/admin/utilisateurs?role=designer&statut=actifs"))
    assert "— 1 compte<" in designers and "Nadia Bernard" in designers

    refused = admin.get("/admin/utilisateurs?role=chef&structure=abc")
    assert refused.status_code == 400
    body = text(refused)
    assert "Choisissez un des rôles proposés." in body and "Choisissez une structure de la liste." in body
    assert 'aria-invalid="true"' in body and "Les filtres contiennent 2 erreurs" in body


def test_creating_an_account_shows_errors_beside_the_fields_then_the_password_once(client, seeded):
    admin = as_admin(seeded)
    mds = structure_id(seeded, MDS_CENTRE)
    refused = admin_post(admin, "/admin/utilisateurs/nouveau", {
        "name": "  ", "email": "lea.morel", "role": "referent", "structure_id": "", "password": "court"})
    assert refused.status_code == 422
    body = text(refused)
    assert "Le formulaire contient 4 erreurs" in body
    assert field_error(body, "name") == "Indiquez le prénom et le nom."
    assert field_error(body, "email").startswith("Indiquez une adresse électronique valide")
    assert field_error(body, "structure_id").startswith("Choisissez la structure du professionnel")
    assert field_error(body, "password").startswith("Au moins 12 caractères")
    assert 'value="lea.morel"' in body and '<option value="referent" selected>' in body
    assert "court" not in body  # a password is never written back into the page
    assert '<a href="#champ-email">' in body

    taken = admin_post(admin, "/admin/utilisateurs/nouveau", {
        "name": "Léa Morel", "email": CD_REFERENT, "role": "referent", "structure_id": str(mds)})
    assert taken.status_code == 422
    assert field_error(text(taken), "email") == "Un compte utilise déjà cette adresse électronique."
    assert f'<option value="{mds}" selected>' in text(taken) and 'value="Léa Morel"' in text(taken)
    assert events(seeded, "user_created") == []

    created = admin_post(admin, "/admin/utilisateurs/nouveau", {
        "name": "Léa Morel", "email": "Lea.Morel@Example.org", "role": "referent", "structure_id": str(mds)})
    assert created.status_code == 201
    body = text(created)
    password = PASSWORD_SHOWN.search(body).group(1)
    assert re.fullmatch(r"[a-z2-9]{4}(-[a-z2-9]{4}){3}", password)
    assert "Compte de Léa Morel créé." in body and "Il ne sera plus affiché" in body
    with seeded.app_context():
        lea = user_by_email(db.session, "lea.morel@example.org")
        assert (lea.name, lea.role, lea.structure_id, lea.active) == ("Léa Morel", "referent", mds, True)
        assert authenticate(db.session, lea.email, password, "127.0.0.1", now_utc()) is not None
        lea_id = lea.id
    again = text(admin.get(f"/admin/utilisateurs/{lea_id}"))
    assert password not in again and "Compte créé" in again and "mot de passe généré" in again
    [event] = events(seeded, "user_created")
    assert event.actor_id == user_id(seeded, ADMIN) and event.user_id == lea_id
    assert password not in str(event.detail)
    assert "Léa Morel" in text(admin.get(f"/admin/annuaire/{mds}"))

    chosen = admin_post(admin, "/admin/utilisateurs/nouveau", {
        "name": "Marc Roy", "email": "marc.roy@example.org", "role": "admin", "structure_id": "",
        "password": "un mot de passe choisi"})
    assert chosen.status_code == 201 and not PASSWORD_SHOWN.search(text(chosen))
    assert login(client, "marc.roy@example.org", "un mot de passe choisi")


def test_a_new_account_form_can_start_from_a_structure(client, seeded):
    admin = as_admin(seeded)
    mds = structure_id(seeded, MDS_CENTRE)
    assert f'<option value="{mds}" selected>' in text(admin.get(f"/admin/utilisateurs/nouveau?structure={mds}"))
    assert "selected>" not in text(admin.get("/admin/utilisateurs/nouveau?structure=999999")).split(
        'id="champ-structure_id"')[1].split("</select>")[0]


def test_a_deactivated_account_can_neither_log_in_nor_use_its_tokens(client, seeded):
    ids = start_ml_exit(seeded)
    token = login(client, CD_REFERENT)
    assert client.get("/api/v1/tasks", headers=token).status_code == 200
    referent = seeded.test_client()
    sign_in(referent, CD_REFERENT)
    assert post(referent, f"/taches/{ids['designate_id']}/prendre").status_code == 303

    admin = as_admin(seeded)
    target = user_id(seeded, CD_REFERENT)
    page = text(admin.get(f"/admin/utilisateurs/{target}"))
    assert "1 tâche prise" in page and "Désactiver le compte" in page
    done = admin_post(admin, f"/admin/utilisateurs/{target}/desactiver")
    assert done.status_code == 303
    page = text(admin.get(done.headers["Location"]))
    assert "désactivé : la connexion et les jetons d&#39;API sont refusés dès maintenant" in page
    assert "1 tâche prise est revenue dans la file de sa structure" in page
    assert "Désactivé" in page and "Réactiver le compte" in page

    assert client.get("/api/v1/tasks", headers=token).status_code == 401
    assert client.post("/api/v1/auth/token", json={"email": CD_REFERENT, "password": DEMO_PASSWORD}).status_code == 401
    assert referent.get("/taches").status_code == 302  # the open web session is refused too
    fresh = seeded.test_client()
    refused = fresh.post("/connexion", data={"email": CD_REFERENT, "password": DEMO_PASSWORD,
                                             "csrf_token": csrf_token(fresh)})
    assert refused.status_code == 401
    with seeded.app_context():
        task = db.session.get(HumanTask, ids["designate_id"])
        assert (task.state, task.assignee) == ("open", None)
    [event] = events(seeded, "user_deactivated")
    assert event.detail == {"tokens_revoked": 1, "tasks_released": [ids["designate_id"]]}

    assert admin_post(admin, f"/admin/utilisateurs/{target}/reactiver").status_code == 303
    assert login(client, CD_REFERENT)
    assert client.get("/api/v1/tasks", headers=token).status_code == 401  # revoked tokens stay revoked
    assert len(events(seeded, "user_reactivated")) == 1


def test_an_administrator_cannot_lock_themselves_out(client, seeded):
    admin = as_admin(seeded)
    me = user_id(seeded, ADMIN)
    assert "Vous ne pouvez pas désactiver votre propre compte." in text(admin.get(f"/admin/utilisateurs/{me}"))
    refused = admin_post(admin, f"/admin/utilisateurs/{me}/desactiver")
    assert "Vous ne pouvez pas désactiver votre propre compte" in text(admin.get(refused.headers["Location"]))
    mission_spie = structure_id(seeded, "Département de l'Essonne — Mission SPIE")
    demoted = admin_post(admin, f"/admin/utilisateurs/{me}/modifier",
                         {"role": "referent", "structure_id": str(mission_spie)})
    assert demoted.status_code == 409 and "Vous ne pouvez pas changer votre propre rôle" in text(demoted)
    with seeded.app_context():
        me_now = db.session.get(User, me)
        assert me_now.active and me_now.role == "admin"


def test_role_and_structure_change_unless_the_person_has_work_in_hand(client, seeded):
    start_ml_exit(seeded)  # the ML référent follows a case and prepared its exit
    admin = as_admin(seeded)
    mds = structure_id(seeded, MDS_CENTRE)
    colleague = user_id(seeded, ML_COLLEAGUE)
    moved = admin_post(admin, f"/admin/utilisateurs/{colleague}/modifier",
                       {"role": "supervisor", "structure_id": str(mds)})
    assert moved.status_code == 303
    page = text(admin.get(moved.headers["Location"]))
    assert "Rôle et structure de Antoine Bertrand enregistrés." in page
    assert "rôle : Référent de parcours → Encadrant de structure" in page
    assert escape(f"structure : {ML_CENTRE} → {MDS_CENTRE}") in page
    with seeded.app_context():
        user = db.session.get(User, colleague)
        assert (user.role, user.structure_id) == ("supervisor", mds)
    [event] = events(seeded, "user_updated")
    assert event.detail == {"role": ["referent", "supervisor"],
                            "structure_id": [structure_id(seeded, ML_CENTRE), mds]}
    unchanged = admin_post(admin, f"/admin/utilisateurs/{colleague}/modifier",
                           {"role": "supervisor", "structure_id": str(mds)})
    assert "Aucun changement" in text(admin.get(unchanged.headers["Location"]))

    busy = user_id(seeded, ML_REFERENT)
    refused = admin_post(admin, f"/admin/utilisateurs/{busy}/modifier", {"role": "referent", "structure_id": str(mds)})
    assert refused.status_code == 409
    assert "un encadrant de sa structure doit d&#39;abord les confier à un collègue" in text(refused)
    promoted = admin_post(admin, f"/admin/utilisateurs/{busy}/modifier",
                          {"role": "supervisor", "structure_id": str(structure_id(seeded, ML_CENTRE))})
    assert promoted.status_code == 303  # same structure, still a case role: the cases stay in sight

    invalid = admin_post(admin, f"/admin/utilisateurs/{colleague}/modifier", {"role": "chef", "structure_id": ""})
    assert invalid.status_code == 422
    body = text(invalid)
    assert field_error(body, "role") == "Choisissez un des rôles proposés."
    assert field_error(body, "structure_id").startswith("Choisissez la structure du professionnel")
    assert len(events(seeded, "user_updated")) == 2


def test_resetting_a_password(client, seeded):
    admin = as_admin(seeded)
    target = user_id(seeded, CD_REFERENT)
    token = login(client, CD_REFERENT)
    browser = client.application.test_client()
    web_login(browser, CD_REFERENT)
    short = admin_post(admin, f"/admin/utilisateurs/{target}/mot-de-passe", {"password": "trop court"})
    assert short.status_code == 422 and field_error(text(short), "password").startswith("Au moins 12 caractères")
    assert client.get("/api/v1/tasks", headers=token).status_code == 200  # nothing changed

    reset = admin_post(admin, f"/admin/utilisateurs/{target}/mot-de-passe", {"password": ""})
    assert reset.status_code == 200
    password = PASSWORD_SHOWN.search(text(reset)).group(1)
    assert "jetons d&#39;API sont révoqués et ses sessions fermées" in text(reset)
    assert client.get("/api/v1/tasks", headers=token).status_code == 401
    assert browser.get("/taches").status_code == 302  # the page session opened with the old password is closed
    web_login(browser, CD_REFERENT, password)
    assert browser.get("/taches").status_code == 200
    assert client.post("/api/v1/auth/token", json={"email": CD_REFERENT, "password": DEMO_PASSWORD}).status_code == 401
    assert login(client, CD_REFERENT, password)

    chosen = admin_post(admin, f"/admin/utilisateurs/{target}/mot-de-passe", {"password": "nouveau mot de passe"})
    assert chosen.status_code == 200 and not PASSWORD_SHOWN.search(text(chosen))
    assert login(client, CD_REFERENT, "nouveau mot de passe")
    assert [e.detail["password"] for e in events(seeded, "password_reset")] == ["generated", "chosen"]


def test_accounts_created_through_the_api_are_logged_too(client, seeded):
    created = client.post("/api/v1/users", headers=login(client, ADMIN), json={
        "email": "api.user@example.org", "name": "Par l'API", "password": "un long mot de passe", "role": "referent",
        "structure_id": structure_id(seeded, ML_CENTRE)})
    assert created.status_code == 201
    [event] = events(seeded, "user_created")
    assert event.actor_id == user_id(seeded, ADMIN) and event.detail["password"] == "chosen"


# ---------------------------------------------------------------- directory

def test_directory_lists_filters_and_shows_a_structure(client, seeded):
    admin = as_admin(seeded)
    body = text(admin.get("/admin/annuaire"))
    assert "— 33 structures" in body and "Page 1 sur 2" in body
    caf = structure_id(seeded, "CAF de l'Essonne")
    row = body.split(f'id="structure-{caf}"')[1].split("</tr>")[0]
    assert "<td>CAF</td>" in row and "<td>194</td>" in row and "<td>1</td>" in row  # 194 communes, one référent
    assert "<summary>13 EPCI</summary>" in row and "CA Grand Paris Sud Seine Essonne Sénart" in row

    caf = text(admin.get("/admin/annuaire?type=caf"))
    assert "— 1 structure<" in caf and "CAF de l&#39;Essonne" in caf
    evry = text(admin.get("/admin/annuaire?commune=91228&type=mission-locale"))
    assert "— 1 structure<" in evry and ML_CENTRE in evry and "CA Grand Paris Sud Seine Essonne Sénart" in evry
    assert "— 1 structure<" in text(admin.get("/admin/annuaire?q=centre+ESSONNE"))
    refused = admin.get("/admin/annuaire?type=inconnu&commune=99999")
    assert refused.status_code == 400
    assert "Choisissez un des types proposés." in text(refused) and "Choisissez une commune de la liste." in text(refused)

    ml = structure_id(seeded, ML_CENTRE)
    page = text(admin.get(f"/admin/annuaire/{ml}"))
    assert "<h1>Mission Locale Centre Essonne</h1>" in page
    for name in ("Hugo Garcia", "Aïcha David", "Antoine Bertrand"):
        assert name in page
    assert "Évry-Courcouronnes" in page and "91228" in page and "avec tout son EPCI" in page
    assert f'href="/admin/utilisateurs/nouveau?structure={ml}"' in page


def test_communes_without_a_structure_are_listed(client, seeded):
    admin = as_admin(seeded)
    body = text(admin.get("/admin/annuaire"))
    assert "<strong>CAF</strong> : toutes les communes sont couvertes." in body
    with seeded.app_context(), transaction(db.session):
        caf = db.session.scalar(select(Structure.id).where(Structure.type == "caf"))
        db.session.execute(delete(StructureCoverage).where(StructureCoverage.structure_id == caf,
                                                           StructureCoverage.commune_insee == "91228"))
    body = text(admin.get("/admin/annuaire"))
    assert "<strong>CAF</strong> : 1 commune sans structure</summary>" in body
    assert "Évry-Courcouronnes (91228)" in body
    assert "<strong>Mission Locale</strong> : toutes les communes sont couvertes." in body


def test_a_refused_line_imports_nothing_and_says_why_in_french(client, seeded):
    admin = as_admin(seeded)
    with seeded.app_context():
        before = export_structures(db.session)
    bad = ("type,name,siret,communes,sensitive\n"
           "ccas,CCAS d'Évry-Courcouronnes,,91228,false\n"
           f"ccas,CCAS de Massy,12345678901234,91377 99999,peut-être\n"
           "cantine,Cantine solidaire,,,\n")
    refused = admin_post(admin, "/admin/annuaire/import", {"fichier": (io.BytesIO(bad.encode()), "annuaire.csv")})
    assert refused.status_code == 422
    body = text(refused)
    assert "Fichier refusé : 4 erreurs, rien n'a été importé" in body
    assert "<strong>Ligne 3</strong> (colonne siret) : SIRET invalide « 12345678901234 »" in body
    assert "<strong>Ligne 3</strong> (colonne communes) : Code(s) INSEE inconnu(s) de l&#39;annuaire : 99999." in body
    assert "<strong>Ligne 3</strong> (colonne sensitive) : Valeur « peut-être » : indiquez true ou false" in body
    assert "<strong>Ligne 4</strong> (colonne type) : Type de structure inconnu « cantine »" in body
    with seeded.app_context():
        assert export_structures(db.session) == before  # not even the good line
    assert events(seeded, "directory_imported") == []

    header = admin_post(admin, "/admin/annuaire/import",
                        {"fichier": (io.BytesIO("nom;type\nx;ccas\n".encode()), "a.csv")})
    assert header.status_code == 422
    assert "<strong>Ligne 1</strong> : Colonne inconnue « nom »." in text(header)
    assert "Colonne obligatoire absente : « name »." in text(header)
    latin = admin_post(admin, "/admin/annuaire/import",
                       {"fichier": (io.BytesIO("type,name\nccas,CCAS d'Évry\n".encode("latin-1")), "a.csv")})
    assert latin.status_code == 422 and "n&#39;est pas encodé en UTF-8" in text(latin)
    big = admin_post(admin, "/admin/annuaire/import",
                     {"fichier": (io.BytesIO(b"type,name\n" + b"x" * (5 * 1024 * 1024)), "gros.csv")})
    assert big.status_code == 422 and "Le fichier dépasse 5 Mo." in text(big)
    missing = admin_post(admin, "/admin/annuaire/import", {})
    assert missing.status_code == 422 and "Choisissez le fichier CSV à importer." in text(missing)


def test_a_good_import_creates_and_updates_structures(client, seeded):
    admin = as_admin(seeded)
    caf = structure_id(seeded, "CAF de l'Essonne")
    good = ("id;type;name;siret;communes;epci;sensitive\n"
            f";CCAS;CCAS d'Évry-Courcouronnes;{GOOD_SIRET};91228;;oui\n"
            f"{caf};caf;CAF de l'Essonne;;;200059228;false\n")
    done = admin_post(admin, "/admin/annuaire/import", {"fichier": (io.BytesIO(good.encode("utf-8-sig")), "a.csv")})
    assert done.status_code == 303 and done.headers["Location"] == "/admin/annuaire"
    page = text(admin.get("/admin/annuaire?type=ccas"))
    assert "Annuaire importé : 1 structure créée, 1 modifiée, 0 inchangée." in page
    assert "CCAS d&#39;Évry-Courcouronnes" in page and "Sensible" in page
    with seeded.app_context():
        created = db.session.scalar(select(Structure).where(Structure.name == "CCAS d'Évry-Courcouronnes"))
        assert (created.type, created.siret, created.sensitive) == ("ccas", GOOD_SIRET, True)
        assert [c.commune_insee for c in created.coverage] == ["91228"]
        assert len(db.session.get(Structure, caf).coverage) == 15  # now the Grand Paris Sud EPCI only
    [event] = events(seeded, "directory_imported")
    assert event.detail == {"file": "a.csv", "created": 1, "updated": 1, "unchanged": 0}
    assert "<strong>CAF</strong> : 179 communes sans structure</summary>" in text(admin.get("/admin/annuaire"))
    assert "Annuaire importé" in text(admin.get("/admin/journal?vue=administration"))


def test_the_export_downloads_the_directory_in_the_import_format(client, seeded):
    admin = as_admin(seeded)
    response = admin.get("/admin/annuaire/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="annuaire-structures-2026-01-05.csv"'
    body = response.get_data()
    assert body.startswith("\ufeff".encode())
    with seeded.app_context():
        assert body.decode("utf-8-sig") == export_structures(db.session)
    again = admin_post(admin, "/admin/annuaire/import", {"fichier": (io.BytesIO(body), "export.csv")})
    assert again.status_code == 303
    assert "0 structure créée, 0 modifiée, 33 inchangées" in text(admin.get("/admin/annuaire"))


# ---------------------------------------------------------------- access log

def test_the_access_log_is_filtered_by_professional_case_dates_and_outcome(client, seeded):
    ids = start_ml_exit(seeded)
    reader = seeded.test_client()
    sign_in(reader, ML_REFERENT)
    assert reader.get(f"/dossiers/{ids['case_id']}").status_code == 200
    outsider = seeded.test_client()
    sign_in(outsider, "referent.ml-nord-essonne@example.org")
    assert outsider.get(f"/dossiers/{ids['case_id']}").status_code == 404
    admin = as_admin(seeded)

    everything = text(admin.get("/admin/journal"))
    assert "— 2 entrées" in everything
    assert "Consultation du dossier" in everything and "Refusé" in everything and "Élodie Richard" in everything
    mine = text(admin.get(f"/admin/journal?utilisateur={ML_REFERENT.upper()}"))
    assert "— 1 entrée<" in mine and "Aïcha David" in mine and "Élodie Richard</a>" not in mine
    assert f'value="{ML_REFERENT.upper()}"' in mine
    denied = text(admin.get("/admin/journal?resultat=denied"))
    assert "— 1 entrée<" in denied and "Élodie Richard" in denied
    assert "— 2 entrées" in text(admin.get(f"/admin/journal?dossier={ids['case_id']}"))
    assert "— 0 entrée" in text(admin.get(f"/admin/journal?dossier={ids['case_id'] + 1}"))

    today = now_utc().astimezone(PARIS).date()
    assert "— 2 entrées" in text(admin.get(f"/admin/journal?du={today}&au={today}"))
    assert "— 0 entrée" in text(admin.get(f"/admin/journal?au={today - timedelta(days=1)}"))
    assert "— 0 entrée" in text(admin.get(f"/admin/journal?du={today + timedelta(days=1)}"))

    refused = admin.get(f"/admin/journal?utilisateur=personne@example.org&dossier=abc&du=2026-13-01"
                        f"&resultat=peut-etre")
    assert refused.status_code == 400
    body = text(refused)
    for message in ("Aucun compte n&#39;a cette adresse électronique.", "Indiquez un numéro de dossier",
                    "Indiquez une date au format jj/mm/aaaa.", "Choisissez un des résultats proposés."):
        assert message in body
    assert "Les filtres contiennent 4 erreurs" in body and 'value="abc"' in body
    backwards = admin.get(f"/admin/journal?du={today}&au={today - timedelta(days=2)}")
    assert backwards.status_code == 400 and "La date de fin précède la date de début." in text(backwards)


def test_the_access_log_is_paginated_newest_first(client, seeded):
    at = now_utc()
    with seeded.app_context(), transaction(db.session):
        db.session.add_all([AccessLog(at=at + timedelta(seconds=n), user_id=None, case_id=n + 1, action="case.read",
                                      outcome="allowed", address="10.0.0.1") for n in range(60)])
    admin = as_admin(seeded)
    first = text(admin.get("/admin/journal?resultat=allowed"))
    assert "Page 1 sur 2" in first and "<td>60</td>" in first and "<td>11</td>" in first and "<td>10</td>" not in first
    second = text(admin.get("/admin/journal?resultat=allowed&page=2"))
    assert "<td>10</td>" in second and "<td>1</td>" in second and "<td>11</td>" not in second


def test_administration_events_are_in_the_journal(client, seeded):
    admin = as_admin(seeded)
    admin_post(admin, "/admin/utilisateurs/nouveau", {"name": "Léa Morel", "email": "lea.morel@example.org",
                                                      "role": "referent", "structure_id": str(structure_id(seeded, ML_CENTRE))})
    admin_post(admin, f"/admin/utilisateurs/{user_id(seeded, ML_COLLEAGUE)}/desactiver")
    body = text(admin.get("/admin/journal?vue=administration"))
    assert "— 2 entrées" in body
    assert body.index("Compte désactivé") < body.index("Compte créé")  # newest first
    assert f"Référent de parcours, {ML_CENTRE}" in body and "Antoine Bertrand" in body
    only = text(admin.get("/admin/journal?vue=administration&utilisateur=lea.morel@example.org"))
    assert "— 1 entrée<" in only and "Compte créé" in only
