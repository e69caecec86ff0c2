"""Every endpoint of the REST API v1 through the test client: what it gives, and what it refuses."""
from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select, update

from api.app import create_app
from api.auth import now_utc
from api.extensions import db
from engine import accounts
from engine.accounts import ApiToken
from engine.db import transaction
from engine.demo import DEMO_PASSWORD, DEPLOY_ORDER
from engine.directory import Structure, StructureCoverage, User, user_by_email
from tests.api_support import (ADMIN, CD_REFERENT, CD_SUPERVISOR, DESIGNER, EVRY_PERSON, ML_REFERENT, ML_SUPERVISOR,
                               PILOT, login)
from tests.conftest import FIXTURES

PROBLEM = "application/problem+json"
ML_REFERENT_2 = "referent2.ml-centre-essonne@example.org"
FT_REFERENT = "referent.ft-evry@example.org"
ML_PATHWAY = "jeune-sortant-mission-locale"
PREPARATION = {"date_sortie_prevue": "2026-03-01", "situation_sortie": "sans-solution", "synthese": "RSA à ouvrir"}


def _problem(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:400])
    assert response.mimetype == PROBLEM
    assert {"type", "title", "status"} <= set(response.json) and response.json["status"] == status
    return response.json


def _user_id(app, email: str) -> int:
    with app.app_context():
        return user_by_email(db.session, email).id


def bearer(app, email: str) -> dict:
    """Bearer headers for a demo account, the token issued directly: argon2 is slow, and login is tested above."""
    with app.app_context(), transaction(db.session):
        token = accounts.issue_token(db.session, user_by_email(db.session, email), now_utc())
    return {"Authorization": f"Bearer {token}"}


def _start_ml_case(client, headers, person=EVRY_PERSON) -> dict:
    created = client.post("/api/v1/cases", headers=headers, json={"person": person, "pathway_key": ML_PATHWAY})
    assert created.status_code == 201, created.json
    return created.json


def _sensitive_structure(app, email: str) -> int:
    """An addiction-care structure (sensitive) covering Évry, with one référent (no password: see bearer)."""
    with app.app_context(), transaction(db.session):
        structure = Structure(type="association", name="CSAPA Essonne", sensitive=True, demo=True,
                              coverage=[StructureCoverage(commune_insee="91228")])
        db.session.add(structure)
        db.session.flush()
        accounts.create_user(db.session, email=email, name="Référente CSAPA", role="referent",
                             structure_id=structure.id, password=None, now=now_utc())
        return structure.id


# --- auth -----------------------------------------------------------------------------------------------------

def test_token_issue_wrong_password_and_throttling(client, seeded):
    issued = client.post("/api/v1/auth/token", json={"email": ML_REFERENT.upper(), "password": DEMO_PASSWORD})
    assert issued.status_code == 201 and len(issued.json["token"]) >= 40 and issued.json["expires_at"]
    bearer_headers = {"Authorization": f"Bearer {issued.json['token']}"}
    assert client.get("/api/v1/pathways", headers=bearer_headers).status_code == 200

    for _ in range(10):
        body = _problem(client.post("/api/v1/auth/token", json={"email": ML_REFERENT, "password": "wrong"}), 401)
        assert "token" not in body
    _problem(client.post("/api/v1/auth/token", json={"email": "nobody@example.org", "password": "x"}), 401)
    # The 11th failure in 15 minutes for that email: throttled, even with the right password.
    throttled = client.post("/api/v1/auth/token", json={"email": ML_REFERENT, "password": DEMO_PASSWORD})
    _problem(throttled, 429)
    assert int(throttled.headers["Retry-After"]) == 900
    # Other accounts are not locked out by it.
    other = client.post("/api/v1/auth/token", json={"email": ML_SUPERVISOR, "password": DEMO_PASSWORD})
    assert other.status_code == 201


def test_revoked_and_expired_tokens_are_refused(app, client, seeded):
    headers = login(client, ML_REFERENT)
    assert client.delete("/api/v1/auth/token", headers=headers).status_code == 204
    _problem(client.get("/api/v1/cases", headers=headers), 401)
    _problem(client.delete("/api/v1/auth/token", headers=headers), 401)

    headers = bearer(app, ML_REFERENT)
    assert client.get("/api/v1/cases", headers=headers).status_code == 200
    with app.app_context(), transaction(db.session):  # twelve hours later (tokens use wall-clock time)
        db.session.execute(update(ApiToken).values(expires_at=now_utc() - timedelta(seconds=1)))
    _problem(client.get("/api/v1/cases", headers=headers), 401)

    # A deactivated account's token stops working at once.
    headers = bearer(app, ML_REFERENT_2)
    with app.app_context(), transaction(db.session):
        db.session.execute(update(User).where(User.email == ML_REFERENT_2).values(active=False))
    _problem(client.get("/api/v1/cases", headers=headers), 401)
    _problem(client.post("/api/v1/auth/token", json={"email": ML_REFERENT_2, "password": DEMO_PASSWORD}), 401)


# --- users ----------------------------------------------------------------------------------------------------

def test_admin_manages_users(app, client, seeded):
    admin, referent = bearer(app, ADMIN), bearer(app, ML_REFERENT)
    ml_centre = client.get("/api/v1/structures?type=ML&commune=91228", headers=admin).json[0]["id"]
    new_user = {"email": "Nouvelle.Referente@example.org", "name": "Nouvelle Référente", "role": "referent",
                "password": "un-mot-de-passe-long", "structure_id": ml_centre}
    created = client.post("/api/v1/users", headers=admin, json=new_user)
    assert created.status_code == 201, created.json
    assert created.json["email"] == "nouvelle.referente@example.org" and created.json["role"] == "referent"
    assert created.json["structure"]["id"] == ml_centre and created.json["active"] is True
    assert "password" not in created.json and "password_hash" not in created.json
    with app.app_context():
        stored = user_by_email(db.session, "nouvelle.referente@example.org").password_hash
    assert stored.startswith("$argon2id$")
    assert login(client, "nouvelle.referente@example.org", "un-mot-de-passe-long")

    body = _problem(client.post("/api/v1/users", headers=admin, json=new_user), 422)
    assert body["errors"] == [{"field": "email", "message": "already used"}]
    body = _problem(client.post("/api/v1/users", headers=admin, json={**new_user, "email": "x@example.org",
                                                                      "role": "boss", "password": "court"}), 422)
    assert {e["field"] for e in body["errors"]} == {"role", "password"}
    body = _problem(client.post("/api/v1/users", headers=admin, json={**new_user, "email": "y@example.org",
                                                                      "structure_id": None}), 422)
    assert body["errors"] == [{"field": "structure_id", "message": "every professional belongs to a structure"}]
    _problem(client.post("/api/v1/users", headers=referent, json={**new_user, "email": "z@example.org"}), 403)
    _problem(client.post("/api/v1/users", headers=bearer(app, DESIGNER), json={**new_user, "email": "z@example.org"}),
             403)

    with app.app_context():
        total = db.session.scalar(select(func.count()).select_from(User))
    page = client.get("/api/v1/users?page=2&per_page=10", headers=admin)
    assert page.status_code == 200 and len(page.json) == 10 and page.headers["X-Total-Count"] == str(total)
    assert page.json[0]["id"] > client.get("/api/v1/users?per_page=10", headers=admin).json[-1]["id"]
    last = client.get(f"/api/v1/users?page={(total + 9) // 10}&per_page=10", headers=admin).json
    assert last[-1]["email"] == "nouvelle.referente@example.org"
    _problem(client.get("/api/v1/users", headers=referent), 403)


# --- structures -----------------------------------------------------------------------------------------------

def test_structures_by_type_and_commune(app, client, seeded):
    referent = bearer(app, ML_REFERENT)
    by_dora_code = client.get("/api/v1/structures?type=ML", headers=referent)
    by_code = client.get("/api/v1/structures?type=mission-locale", headers=referent)
    assert by_dora_code.status_code == 200 and by_dora_code.json == by_code.json
    assert len(by_code.json) == 7 and by_code.headers["X-Total-Count"] == "7"
    assert {s["type"] for s in by_code.json} == {"mission-locale"}
    assert client.get("/api/v1/structures?type=Mission Locale", headers=referent).json == by_code.json

    evry = client.get("/api/v1/structures?commune=91228&per_page=200", headers=referent).json
    assert all("91228" in s["communes"] for s in evry)
    names = {s["name"] for s in evry}
    assert {"Mission Locale Centre Essonne", "Département de l'Essonne — MDS Centre",
            "France Travail Évry-Courcouronnes", "CAF de l'Essonne"} <= names
    assert "Mission Locale Nord Essonne" not in names
    [ml] = client.get("/api/v1/structures?type=ML&commune=91228", headers=referent).json
    assert ml["name"] == "Mission Locale Centre Essonne"
    assert client.get("/api/v1/structures?type=ML&commune=75056", headers=referent).json == []
    body = _problem(client.get("/api/v1/structures?type=boulangerie", headers=referent), 422)
    assert "mission-locale" in body["detail"]
    _problem(client.get("/api/v1/structures?commune=Evry", headers=referent), 422)

    # A sensitive structure is listed for its own staff and administrators only.
    sensitive = _sensitive_structure(app, "referente.csapa@example.org")
    assert sensitive not in {s["id"] for s in client.get("/api/v1/structures?commune=91228&per_page=200",
                                                          headers=referent).json}
    for email in ("referente.csapa@example.org", ADMIN):
        listed = client.get("/api/v1/structures?commune=91228&per_page=200", headers=bearer(app, email)).json
        assert sensitive in {s["id"] for s in listed}


# --- pathways -------------------------------------------------------------------------------------------------

def test_pathways_list_deploy_and_read(app, client, seeded):
    referent, designer = bearer(app, ML_REFERENT), bearer(app, DESIGNER)
    listed = client.get("/api/v1/pathways", headers=referent)
    assert listed.status_code == 200
    assert {p["key"] for p in listed.json} == set(DEPLOY_ORDER)
    assert all(p["version"] == 1 and p["versions"] == [1] and p["name"] for p in listed.json)

    bpmn = (FIXTURES / "engine" / "simple.bpmn").read_text(encoding="utf-8")
    note = (FIXTURES / "forms" / "note.json").read_text(encoding="utf-8")
    body = {"bpmn_xml": bpmn, "forms": {"note": json.loads(note)}}
    first = client.post("/api/v1/pathways", headers=designer, json=body)
    assert first.status_code == 201, first.json
    assert first.json["key"] == "simple" and first.json["version"] == 1 and first.json["created"] is True
    assert isinstance(first.json["warnings"], list)
    again = client.post("/api/v1/pathways", headers=designer, json=body)
    assert again.status_code == 200 and again.json["version"] == 1 and again.json["created"] is False
    changed = client.post("/api/v1/pathways", headers=designer,
                          json={**body, "bpmn_xml": bpmn.replace("Parcours simple", "Parcours simple v2")})
    assert changed.status_code == 201 and changed.json["version"] == 2
    assert {p["key"]: p["versions"] for p in client.get("/api/v1/pathways", headers=referent).json}["simple"] == [1, 2]

    # Invalid: a flow to nowhere, and XML that is not even well-formed; each problem points at the diagram.
    broken = bpmn.replace('<bpmn:sequenceFlow id="f3" sourceRef="second" targetRef="end"/>',
                          '<bpmn:sequenceFlow id="f3" sourceRef="second" targetRef="nowhere"/>')
    refused = _problem(client.post("/api/v1/pathways", headers=designer, json={**body, "bpmn_xml": broken}), 422)
    assert refused["errors"] and all({"element_id", "line", "rule", "message"} <= set(e) for e in refused["errors"])
    assert any(e["rule"] and e["line"] for e in refused["errors"]), refused["errors"]
    refused = _problem(client.post("/api/v1/pathways", headers=designer,
                                   json={"bpmn_xml": bpmn.replace("</bpmn:process>", "")}), 422)
    assert refused["errors"][0]["line"] and refused["errors"][0]["rule"]
    refused = _problem(client.post("/api/v1/pathways", headers=designer,
                                   json={**body, "forms": {"note": {"type": 12}}}), 422)
    assert refused["errors"][0]["rule"] == "form-schema"
    _problem(client.post("/api/v1/pathways", headers=referent, json=body), 403)
    _problem(client.post("/api/v1/pathways", headers=bearer(app, ML_SUPERVISOR), json=body), 403)

    version = client.get("/api/v1/pathways/simple/versions/2", headers=referent)
    assert version.status_code == 200 and "Parcours simple v2" in version.json["bpmn_xml"]
    assert version.json["version"] == 2 and len(version.json["sha256"]) == 64
    assert version.json["deployed_by"] == DESIGNER
    ml = client.get(f"/api/v1/pathways/{ML_PATHWAY}/versions/1", headers=referent).json
    assert ml["bpmn_xml"].startswith("<?xml") and ml["dmn_xml"] == []
    _problem(client.get("/api/v1/pathways/simple/versions/3", headers=referent), 404)
    _problem(client.get("/api/v1/pathways/unknown/versions/1", headers=referent), 404)


# --- cases ----------------------------------------------------------------------------------------------------

def test_cases_create_list_read_and_not_found(app, client, seeded):
    ml = bearer(app, ML_REFERENT)
    case = _start_ml_case(client, ml)
    assert case["status"] == "active" and case["pathway"] == {"key": ML_PATHWAY, "version": 1}
    assert case["person"]["last_name"] == "Martin" and case["person"]["birth_date"] == "2001-01-02"
    assert [(m["user"]["email"], m["role"], m["ended_at"]) for m in case["care_team"]] == [
        (ML_REFERENT, "referent", None)]
    [task] = case["open_tasks"]
    assert task["bpmn_id"] == "preparer-sortie" and task["assignee"] == ML_REFERENT and task["due_at"]
    assert task["structure"]["name"] == "Mission Locale Centre Essonne"
    assert [e["kind"] for e in case["timeline"]][:2] == ["referent_joined", "case_started"]
    # The same person (names and birth date) is found again, not duplicated.
    second = _start_ml_case(client, ml, {**EVRY_PERSON, "first_name": "INÈS"})
    assert second["person"]["id"] == case["person"]["id"]

    listed = client.get("/api/v1/cases?status=active&per_page=1", headers=ml)
    assert listed.status_code == 200 and listed.headers["X-Total-Count"] == "2" and len(listed.json) == 1
    assert listed.json[0]["id"] == second["id"]  # most recently updated first
    assert client.get("/api/v1/cases?status=closed", headers=ml).json == []
    _problem(client.get("/api/v1/cases?status=finished", headers=ml), 422)
    assert client.get("/api/v1/cases", headers=bearer(app, FT_REFERENT)).json == []

    read = client.get(f"/api/v1/cases/{case['id']}", headers=ml)
    assert read.status_code == 200 and read.json["id"] == case["id"] and read.json["open_tasks"]
    assert client.get(f"/api/v1/cases/{case['id']}", headers=bearer(app, ML_SUPERVISOR)).status_code == 200

    unknown = _problem(client.get("/api/v1/cases/999999", headers=ml), 404)
    invisible = _problem(client.get(f"/api/v1/cases/{case['id']}", headers=bearer(app, FT_REFERENT)), 404)
    assert invisible["title"] == unknown["title"] and invisible["detail"] == f"case {case['id']} does not exist"

    body = _problem(client.post("/api/v1/cases", headers=ml, json={"person": EVRY_PERSON, "pathway_key": "nope"}), 422)
    assert body["errors"] == [{"field": "pathway_key", "message": "no pathway deployed with this key"}]
    _problem(client.post("/api/v1/cases", headers=bearer(app, DESIGNER),
                         json={"person": EVRY_PERSON, "pathway_key": ML_PATHWAY}), 403)
    _problem(client.post("/api/v1/cases", headers=bearer(app, ADMIN),
                         json={"person": EVRY_PERSON, "pathway_key": ML_PATHWAY}), 403)


# --- tasks ----------------------------------------------------------------------------------------------------

def test_inbox_scopes_and_overdue(app, client, seeded):
    ml, colleague, chief = bearer(app, ML_REFERENT), bearer(app, ML_REFERENT_2), bearer(app, ML_SUPERVISOR)
    case = _start_ml_case(client, ml)
    task_id = case["open_tasks"][0]["id"]

    mine = client.get("/api/v1/tasks?scope=mine", headers=ml)
    assert [t["id"] for t in mine.json] == [task_id] and mine.headers["X-Total-Count"] == "1"
    assert client.get("/api/v1/tasks", headers=colleague).json == []  # scope=mine by default
    assert [t["id"] for t in client.get("/api/v1/tasks?scope=structure", headers=colleague).json] == [task_id]
    assert [t["id"] for t in client.get("/api/v1/tasks?scope=structure", headers=chief).json] == [task_id]
    assert client.get("/api/v1/tasks?scope=structure", headers=bearer(app, CD_REFERENT)).json == []
    assert client.get("/api/v1/tasks?overdue=true", headers=ml).json == []

    assert client.post("/api/v1/simulation/advance", headers=chief, json={"duration": "P40D"}).status_code == 200
    [late] = client.get("/api/v1/tasks?overdue=true", headers=ml).json
    assert late["id"] == task_id and late["overdue"] is True

    assert client.post(f"/api/v1/tasks/{task_id}/complete", headers=ml, json={"data": PREPARATION}).status_code == 200
    assert client.get("/api/v1/tasks?scope=mine", headers=ml).json == []
    done = client.get("/api/v1/tasks?scope=mine&status=completed", headers=ml).json
    assert [(t["id"], t["state"]) for t in done] == [(task_id, "completed")]


def test_task_read_claim_release_assign_complete(app, client, seeded):
    ml, colleague, chief = bearer(app, ML_REFERENT), bearer(app, ML_REFERENT_2), bearer(app, ML_SUPERVISOR)
    case = _start_ml_case(client, ml)
    task_id = case["open_tasks"][0]["id"]

    read = client.get(f"/api/v1/tasks/{task_id}", headers=ml)
    assert read.status_code == 200 and read.json["form_key"] == "preparation-sortie"
    assert set(read.json["form_schema"]["required"]) == {"date_sortie_prevue", "situation_sortie", "synthese"}
    assert read.json["data"] == {} and read.json["state"] == "claimed"
    assert client.get(f"/api/v1/tasks/{task_id}", headers=colleague).status_code == 200
    _problem(client.get(f"/api/v1/tasks/{task_id}", headers=bearer(app, FT_REFERENT)), 404)
    _problem(client.get("/api/v1/tasks/999999", headers=ml), 404)

    # Claimed by its référent at start: a colleague cannot take it until it is released.
    _problem(client.post(f"/api/v1/tasks/{task_id}/claim", headers=colleague), 409)
    released = client.post(f"/api/v1/tasks/{task_id}/release", headers=ml)
    assert released.status_code == 200 and released.json["state"] == "open" and released.json["assignee"] is None
    _problem(client.post(f"/api/v1/tasks/{task_id}/release", headers=ml), 409)
    claimed = client.post(f"/api/v1/tasks/{task_id}/claim", headers=colleague)
    assert claimed.status_code == 200 and claimed.json["assignee"] == ML_REFERENT_2
    assert client.post(f"/api/v1/tasks/{task_id}/claim", headers=colleague).status_code == 200  # idempotent
    _problem(client.post(f"/api/v1/tasks/{task_id}/claim", headers=ml), 409)
    _problem(client.post(f"/api/v1/tasks/{task_id}/complete", headers=ml, json={"data": PREPARATION}), 409)

    # The supervisor gives it back; only supervisors assign, and only to their structure's active users.
    ml_id = _user_id(app, ML_REFERENT)
    _problem(client.post(f"/api/v1/tasks/{task_id}/assign", headers=colleague, json={"user_id": ml_id}), 403)
    body = _problem(client.post(f"/api/v1/tasks/{task_id}/assign", headers=chief,
                                json={"user_id": _user_id(app, CD_REFERENT)}), 422)
    assert "structure" in body["detail"]
    _problem(client.post(f"/api/v1/tasks/{task_id}/assign", headers=chief, json={"user_id": 999999}), 422)
    _problem(client.post(f"/api/v1/tasks/{task_id}/assign", headers=bearer(app, CD_SUPERVISOR),
                         json={"user_id": ml_id}), 404)
    assigned = client.post(f"/api/v1/tasks/{task_id}/assign", headers=chief, json={"user_id": ml_id})
    assert assigned.status_code == 200 and assigned.json["assignee"] == ML_REFERENT

    # Completing: every field error at once, then success, then the task is stale.
    body = _problem(client.post(f"/api/v1/tasks/{task_id}/complete", headers=ml, json={
        "data": {"date_sortie_prevue": "bientôt", "situation_sortie": "inconnue", "synthese": "", "age": 3}}), 422)
    assert {e["field"] for e in body["errors"]} >= {"date_sortie_prevue", "situation_sortie", "synthese"}
    assert all(e["message"] for e in body["errors"])
    body = _problem(client.post(f"/api/v1/tasks/{task_id}/complete", headers=ml, json={"data": "texte"}), 422)
    assert body["errors"][0]["field"] == "data"
    _problem(client.post(f"/api/v1/tasks/{task_id}/complete", headers=ml, json={}), 422)
    done = client.post(f"/api/v1/tasks/{task_id}/complete", headers=ml, json={"data": PREPARATION})
    assert done.status_code == 200 and done.json["id"] == case["id"]
    assert task_id not in {t["id"] for t in done.json["open_tasks"]}
    assert "designer-referent" in {t["bpmn_id"] for t in done.json["open_tasks"]}
    body = _problem(client.post(f"/api/v1/tasks/{task_id}/complete", headers=ml, json={"data": PREPARATION}), 409)
    assert "already completed" in body["detail"]
    _problem(client.post(f"/api/v1/tasks/{task_id}/claim", headers=ml), 409)
    _problem(client.post(f"/api/v1/tasks/{task_id}/release", headers=ml), 409)
    assert client.get(f"/api/v1/tasks/{task_id}", headers=ml).json["data"] == {}  # closed: no form values


# --- messages -------------------------------------------------------------------------------------------------

def test_messages_unknown_not_waiting_and_refused(app, client, seeded):
    cd = bearer(app, CD_REFERENT)
    created = client.post("/api/v1/cases", headers=cd,
                          json={"person": EVRY_PERSON, "pathway_key": "demandeur-emploi-freins"})
    assert created.status_code == 201, created.json
    case_id = created.json["id"]
    body = _problem(client.post(f"/api/v1/cases/{case_id}/messages/droit-rsa-ouvert", headers=cd, json={}), 422)
    assert "no message named" in body["detail"]
    body = _problem(client.post(f"/api/v1/cases/{case_id}/messages/reponse-prescription", headers=cd,
                                json={"payload": {"statut": "acceptee"}}), 409)
    assert "not waiting" in body["detail"]
    _problem(client.post(f"/api/v1/cases/{case_id}/messages/reponse-prescription", headers=cd,
                         json={"payload": "acceptee"}), 422)
    _problem(client.post(f"/api/v1/cases/{case_id}/messages/reponse-prescription", headers=bearer(app, DESIGNER),
                         json={}), 403)
    _problem(client.post(f"/api/v1/cases/{case_id}/messages/reponse-prescription",
                         headers=bearer(app, ML_REFERENT), json={}), 404)
    _problem(client.post("/api/v1/cases/999999/messages/reponse-prescription", headers=cd, json={}), 404)


# --- supervision ----------------------------------------------------------------------------------------------

def test_supervision_overdue_board(app, client, seeded):
    ml, cd = bearer(app, ML_REFERENT), bearer(app, CD_REFERENT)
    chief, cd_chief, pilot = bearer(app, ML_SUPERVISOR), bearer(app, CD_SUPERVISOR), bearer(app, PILOT)
    ml_task = _start_ml_case(client, ml)["open_tasks"][0]["id"]
    created = client.post("/api/v1/cases", headers=cd, json={
        "person": {"first_name": "Paul", "last_name": "Durand", "birth_date": "1980-05-06", "commune_insee": "91228"},
        "pathway_key": "brsa-oriente-social"})
    cd_task = created.json["open_tasks"][0]["id"]
    assert client.get("/api/v1/supervision/overdue", headers=chief).json == []

    assert client.post("/api/v1/simulation/advance", headers=chief, json={"duration": "P2M"}).status_code == 200
    board = client.get("/api/v1/supervision/overdue", headers=chief)
    assert board.status_code == 200 and board.headers["X-Total-Count"] == str(len(board.json))
    [row] = [r for r in board.json if r["task_id"] == ml_task]
    assert row["pathway"] == ML_PATHWAY and row["initials"] == "I. M." and row["age_days"] > 0
    assert row["structure"]["name"] == "Mission Locale Centre Essonne" and row["escalation_level"] >= 0
    assert cd_task not in {r["task_id"] for r in board.json}  # another structure's
    assert cd_task in {r["task_id"] for r in client.get("/api/v1/supervision/overdue", headers=cd_chief).json}
    # The pilot sees the whole territory, filterable by pathway and structure.
    territory = {r["task_id"] for r in client.get("/api/v1/supervision/overdue?per_page=200", headers=pilot).json}
    assert {ml_task, cd_task} <= territory
    by_pathway = client.get(f"/api/v1/supervision/overdue?pathway={ML_PATHWAY}", headers=pilot).json
    assert ml_task in {r["task_id"] for r in by_pathway} and cd_task not in {r["task_id"] for r in by_pathway}
    by_structure = client.get(f"/api/v1/supervision/overdue?structure={row['structure']['id']}", headers=pilot).json
    assert {r["structure"]["id"] for r in by_structure} == {row["structure"]["id"]}
    _problem(client.get("/api/v1/supervision/overdue", headers=ml), 403)
    _problem(client.get("/api/v1/supervision/overdue", headers=bearer(app, ADMIN)), 403)


# --- simulation -----------------------------------------------------------------------------------------------

def test_simulation_advance_only_in_simulation_mode(app, client, seeded, database_url):
    chief, admin = bearer(app, ML_SUPERVISOR), bearer(app, ADMIN)
    moved = client.post("/api/v1/simulation/advance", headers=admin, json={"duration": "P15D"})
    assert moved.status_code == 200, moved.json
    assert moved.json["started_at"].startswith("2026-01-05") and moved.json["now"].startswith("2026-01-20")
    assert moved.json["firings"] == 0
    assert client.post("/api/v1/simulation/advance", headers=chief, json={"duration": "PT2H"}).status_code == 200
    _problem(client.post("/api/v1/simulation/advance", headers=bearer(app, ML_REFERENT), json={"duration": "P1D"}), 403)
    _problem(client.post("/api/v1/simulation/advance", headers=admin, json={"duration": "15 days"}), 422)
    _problem(client.post("/api/v1/simulation/advance", headers=admin, json={"duration": "P99999999Y"}), 422)
    assert "/api/v1/simulation/advance" in client.get("/api/v1/openapi.json").json["paths"]

    production = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SPIE_SIMULATION": False, "TESTING": True})
    real = production.test_client()
    _problem(real.post("/api/v1/simulation/advance", headers=admin, json={"duration": "P15D"}), 404)
    assert "/api/v1/simulation/advance" not in real.get("/api/v1/openapi.json").json["paths"]
    assert real.get("/api/v1/pathways", headers=admin).status_code == 200  # same database, same token
    # The simulated app's document is its own: creating another app changed nothing here.
    assert "/api/v1/simulation/advance" in client.get("/api/v1/openapi.json").json["paths"]


# --- audit ----------------------------------------------------------------------------------------------------

def test_audit_records_reads_writes_and_denials(app, client, seeded):
    ml, ft, admin = bearer(app, ML_REFERENT), bearer(app, FT_REFERENT), bearer(app, ADMIN)
    case = _start_ml_case(client, ml)
    case_id, task_id = case["id"], case["open_tasks"][0]["id"]
    assert client.get(f"/api/v1/cases/{case_id}", headers=ml).status_code == 200
    assert client.get(f"/api/v1/cases/{case_id}", headers=ft).status_code == 404
    assert client.get(f"/api/v1/tasks/{task_id}", headers=ml).status_code == 200
    assert client.post(f"/api/v1/tasks/{task_id}/claim", headers=ft).status_code == 404
    assert client.post(f"/api/v1/tasks/{task_id}/complete", headers=ml, json={"data": PREPARATION}).status_code == 200

    log = client.get(f"/api/v1/audit?case={case_id}&per_page=200", headers=admin)
    assert log.status_code == 200 and log.headers["X-Total-Count"] == str(len(log.json))
    ml_id, ft_id = _user_id(app, ML_REFERENT), _user_id(app, FT_REFERENT)
    entries = [(e["user_id"], e["action"], e["outcome"]) for e in reversed(log.json)]  # newest first → oldest
    assert entries == [(ml_id, "case.create", "allowed"), (ml_id, "case.read", "allowed"),
                       (ft_id, "case.read", "denied"), (ml_id, "task.read", "allowed"),
                       (ft_id, "task.claim", "denied"), (ml_id, "task.complete", "allowed")]
    assert all(e["address"] == "127.0.0.1" and e["at"] and e["case_id"] == case_id for e in log.json)
    assert {e["detail"] for e in log.json if e["action"].startswith("task.")} == {str(task_id)}
    by_user = client.get(f"/api/v1/audit?user={ft_id}", headers=admin).json
    assert {(e["action"], e["outcome"]) for e in by_user} == {("case.read", "denied"), ("task.claim", "denied")}
    # A denied read of a case that does not exist is recorded too.
    client.get("/api/v1/cases/424242", headers=ft)
    assert [e["outcome"] for e in client.get("/api/v1/audit?case=424242", headers=admin).json] == ["denied"]
    _problem(client.get(f"/api/v1/audit?case={case_id}", headers=ml), 403)
    _problem(client.get("/api/v1/audit", headers=bearer(app, PILOT)), 403)


# --- documentation --------------------------------------------------------------------------------------------

def test_openapi_document_and_browsable_docs(client):
    spec = client.get("/api/v1/openapi.json")
    assert spec.status_code == 200 and spec.json["openapi"].startswith("3.")
    paths = spec.json["paths"]
    assert {"/api/v1/auth/token", "/api/v1/users", "/api/v1/structures", "/api/v1/pathways", "/api/v1/cases",
            "/api/v1/cases/{case_id}", "/api/v1/tasks/{task_id}/complete", "/api/v1/supervision/overdue",
            "/api/v1/audit"} <= set(paths)
    not_found = paths["/api/v1/cases/{case_id}"]["get"]["responses"]["404"]
    assert not_found == {"$ref": "#/components/responses/NOT_FOUND"}
    assert "application/problem+json" in spec.json["components"]["responses"]["NOT_FOUND"]["content"]
    assert paths["/api/v1/auth/token"]["post"]["security"] == []
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and docs.mimetype == "text/html" and b"openapi.json" in docs.data
    assert client.get("/healthz").json == {"status": "ok"}
