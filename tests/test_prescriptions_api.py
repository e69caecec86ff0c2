"""Offers and prescriptions over HTTP: search, prescribe from a task or a case, the provider's queue,
accept and refuse, simulated reminder and expiry, and the public self-request without account."""
from __future__ import annotations

import pytest

from api.extensions import db
from engine.db import transaction
from engine.offers import seed_demo_offers
from tests.api_support import CD_REFERENT, EVRY_PERSON, ML_REFERENT, login
from tests.conftest import SIMULATION_START

FT_REFERENT = "referent.ft-evry@example.org"
CAF_REFERENT = "referent.caf@example.org"
CHILDCARE = "demo--garde-enfants-essonne"
DRIVING = "demo--auto-ecole-sociale-grand-paris-sud"
HOUSING = "demo--maintien-logement-corbeil"
ADMIN = "admin.spie@example.org"


@pytest.fixture
def catalogue(seeded):
    with seeded.app_context(), transaction(db.session):
        seed_demo_offers(db.session, SIMULATION_START)
    return seeded


def ok(response, status: int = 200):
    assert response.status_code == status, response.get_json()
    return response.get_json()


def open_task(client, headers, case_id: int, bpmn_id: str) -> dict:
    case = ok(client.get(f"/api/v1/cases/{case_id}", headers=headers))
    [task] = [t for t in case["open_tasks"] if t["bpmn_id"] == bpmn_id]
    return task


def test_offer_search(client, catalogue):
    referent = login(client, CD_REFERENT)
    assert client.get("/api/v1/offers").status_code == 401
    found = client.get("/api/v1/offers?frein=contraintes_familiales", headers=referent)
    assert [o["id"] for o in ok(found)] == [CHILDCARE] and found.headers["X-Total-Count"] == "1"
    childcare = found.get_json()[0]
    assert childcare["thematiques"] == ["famille--garde-denfants"] and childcare["freins"] == ["contraintes_familiales"]
    assert childcare["provider"]["name"] == "CAF de l'Essonne" and childcare["demo"] is True
    assert childcare["mobilisable_par"] == ["professionnels", "usagers"]

    evry = ok(client.get("/api/v1/offers?commune=91228&per_page=2", headers=referent))
    assert len(evry) == 2
    assert [o["id"] for o in ok(client.get("/api/v1/offers?q=crèche&commune=91228", headers=referent))] == [CHILDCARE]
    assert [o["id"] for o in ok(client.get("/api/v1/offers?thematique=logement-hebergement", headers=referent))] == [
        HOUSING]
    assert ok(client.get(f"/api/v1/offers/{CHILDCARE}", headers=referent))["nom"].startswith("Solution garde")
    assert client.get("/api/v1/offers/demo--inconnue", headers=referent).status_code == 404
    bad = client.get("/api/v1/offers?frein=garde&thematique=famille--x&commune=Evry", headers=referent)
    assert bad.status_code == 422
    assert {e["field"] for e in bad.get_json()["errors"]} == {"frein", "thematique", "commune"}


def test_prescription_from_the_pathway_task_then_reminder_and_refusal(client, catalogue):
    ft, cd, caf, ml, admin = (login(client, e) for e in (FT_REFERENT, CD_REFERENT, CAF_REFERENT, ML_REFERENT, ADMIN))
    case_id = ok(client.post("/api/v1/cases", headers=ft, json={
        "person": EVRY_PERSON, "pathway_key": "demandeur-emploi-freins"}), 201)["id"]
    for headers, email, bpmn_id in ((ft, FT_REFERENT, "designer-conseiller"),
                                    (cd, CD_REFERENT, "designer-referent-social")):
        task = open_task(client, headers, case_id, bpmn_id) if headers is ft else [
            t for t in ok(client.get("/api/v1/tasks?scope=structure", headers=cd)) if t["bpmn_id"] == bpmn_id][0]
        ok(client.post(f"/api/v1/tasks/{task['id']}/complete", headers=headers,
                       json={"data": {"referent_email": email, "date_designation": "2026-01-05"}}))
    prescribe_task = open_task(client, cd, case_id, "prescrire-offre")

    created = ok(client.post("/api/v1/prescriptions", headers=cd, json={
        "case_id": case_id, "offer_id": CHILDCARE, "frein": "contraintes_familiales",
        "message": "Deux enfants de 1 et 3 ans.", "task_id": prescribe_task["id"]}), 201)
    prescription_id = created["id"]
    assert (created["state"], created["origin"], created["case_id"]) == ("ouverte", "referent", case_id)
    assert created["person"] == {"first_name": "Inès", "last_name": "Martin", "commune_insee": "91228"}
    assert created["expires_at"].startswith("2026-02-04")
    assert "prescrire-offre" not in [t["bpmn_id"] for t in ok(client.get(f"/api/v1/cases/{case_id}",
                                                                          headers=cd))["open_tasks"]]

    # The provider's queue; the prescriber's list; nobody else.
    queue = client.get("/api/v1/prescriptions?scope=received&state=ouverte", headers=caf)
    assert [p["id"] for p in ok(queue)] == [prescription_id] and queue.headers["X-Total-Count"] == "1"
    assert [p["id"] for p in ok(client.get("/api/v1/prescriptions?scope=sent", headers=cd))] == [prescription_id]
    assert ok(client.get("/api/v1/prescriptions?scope=received", headers=cd)) == []
    assert [p["id"] for p in ok(client.get(f"/api/v1/prescriptions?case_id={case_id}", headers=cd))] == [
        prescription_id]
    assert client.get(f"/api/v1/prescriptions?case_id={case_id}", headers=ml).status_code == 404
    assert client.get(f"/api/v1/prescriptions/{prescription_id}", headers=ml).status_code == 404
    assert client.post(f"/api/v1/prescriptions/{prescription_id}/accept", headers=cd, json={}).status_code == 403

    # Ten days later: reminded, and a reminder task in the CAF's inbox.
    ok(client.post("/api/v1/simulation/advance", headers=admin, json={"duration": "P10D"}))
    assert ok(client.get(f"/api/v1/prescriptions/{prescription_id}", headers=caf))["reminders"] == 1
    inbox = ok(client.get("/api/v1/tasks?scope=structure", headers=caf))
    assert [t["name"] for t in inbox] == ["Répondre à la prescription en attente"]
    # The provider now sees the lifecycle's case, but answers only through the prescription.
    bypass = client.post(f"/api/v1/cases/{inbox[0]['case_id']}/messages/reponse-prescription", headers=caf,
                         json={"payload": {"statut": "acceptee"}})
    assert bypass.status_code == 409 and "/refuse" in bypass.get_json()["detail"]

    refused = client.post(f"/api/v1/prescriptions/{prescription_id}/refuse", headers=caf,
                          json={"reason": "session-complete", "message": "Plus de place avant septembre."})
    body = ok(refused)
    assert (body["state"], body["refusal_reason"], body["refusal_reason_label"]) == (
        "refusee", "session-complete", "La session est complète")
    assert ok(client.get("/api/v1/tasks?scope=structure", headers=caf)) == []  # the reminder went with the answer
    case = ok(client.get(f"/api/v1/cases/{case_id}", headers=cd))
    assert [e["kind"] for e in case["timeline"] if e["kind"].startswith("prescription_")] == [
        "prescription_sent", "prescription_reminded", "prescription_refused"]
    assert "faire-le-point" in [t["bpmn_id"] for t in case["open_tasks"]]
    again = client.post(f"/api/v1/prescriptions/{prescription_id}/accept", headers=caf, json={})
    assert again.status_code == 409 and again.content_type == "application/problem+json"


def test_prescription_from_the_case_page_accepted_and_another_expired(client, catalogue):
    ml, caf, admin = (login(client, e) for e in (ML_REFERENT, CAF_REFERENT, ADMIN))
    case_id = ok(client.post("/api/v1/cases", headers=ml, json={
        "person": EVRY_PERSON, "pathway_key": "jeune-sortant-mission-locale"}), 201)["id"]
    bad = client.post("/api/v1/prescriptions", headers=ml, json={"case_id": case_id, "offer_id": "demo--x",
                                                                 "frein": "garde"})
    assert bad.status_code == 422
    childcare = ok(client.post("/api/v1/prescriptions", headers=ml,
                               json={"case_id": case_id, "offer_id": CHILDCARE}), 201)
    assert client.post("/api/v1/prescriptions", headers=ml,
                       json={"case_id": case_id, "offer_id": CHILDCARE}).status_code == 409
    accepted = ok(client.post(f"/api/v1/prescriptions/{childcare['id']}/accept", headers=caf,
                              json={"message": "Rendez-vous lundi."}))
    assert (accepted["state"], accepted["answer_message"]) == ("validee", "Rendez-vous lundi.")

    driving = ok(client.post("/api/v1/prescriptions", headers=ml, json={"case_id": case_id, "offer_id": DRIVING}),
                 201)
    ok(client.post("/api/v1/simulation/advance", headers=admin, json={"duration": "P31D"}))
    expired = ok(client.get(f"/api/v1/prescriptions/{driving['id']}", headers=ml))
    assert (expired["state"], expired["reminders"]) == ("expiree", 1) and expired["expired_at"]
    assert ok(client.get(f"/api/v1/prescriptions/{childcare['id']}", headers=ml))["state"] == "validee"
    timeline = ok(client.get(f"/api/v1/cases/{case_id}", headers=ml))["timeline"]
    assert [(e["kind"], e["summary"]["offer_id"]) for e in timeline if e["kind"].startswith("prescription_")] == [
        ("prescription_sent", CHILDCARE), ("prescription_accepted", CHILDCARE), ("prescription_sent", DRIVING),
        ("prescription_reminded", DRIVING), ("prescription_expired", DRIVING)]


# --- The public page's API: no account ------------------------------------------------------------

REQUEST = {"offer_id": CHILDCARE, "first_name": "Awa", "email": "awa@example.org", "commune_insee": "91228",
           "message": "Je reprends un travail en mars.", "consent": True}


def public_post(client, body, address="192.0.2.10", **kwargs):
    return client.post("/api/v1/public/requests", json=body, environ_base={"REMOTE_ADDR": address}, **kwargs)


def test_public_offer_search_and_request_without_account(client, catalogue):
    found = client.get("/api/v1/public/offers?commune=91228")
    ids = [o["id"] for o in ok(found)]
    assert CHILDCARE in ids and DRIVING not in ids  # only offers persons may request themselves
    assert "Set-Cookie" not in found.headers
    assert set(found.get_json()[0]["provider"]) == {"name"}
    assert client.get("/api/v1/public/offers").status_code == 422  # the commune is needed

    sent = public_post(client, REQUEST)
    body = ok(sent, 201)
    assert body["state"] == "ouverte" and body["provider"] == "CAF de l'Essonne" and "Set-Cookie" not in sent.headers
    queue = ok(client.get("/api/v1/prescriptions?scope=received", headers=login(client, CAF_REFERENT)))
    [received] = [p for p in queue if p["id"] == body["reference"]]
    assert (received["origin"], received["case_id"], received["consent"]) == ("self", None, True)
    assert received["person"] == {"first_name": "Awa", "email": "awa@example.org", "commune_insee": "91228"}

    refused = public_post(client, {**REQUEST, "consent": False}, address="192.0.2.11")
    assert refused.status_code == 422 and refused.get_json()["errors"][0]["field"] == "consent"
    missing = public_post(client, {k: v for k, v in REQUEST.items() if k != "consent"}, address="192.0.2.12")
    assert missing.status_code == 422
    no_contact = public_post(client, {k: v for k, v in REQUEST.items() if k != "email"}, address="192.0.2.13")
    assert no_contact.status_code == 422 and no_contact.get_json()["errors"][0]["field"] == "email"
    not_for_persons = public_post(client, {**REQUEST, "offer_id": DRIVING}, address="192.0.2.14")
    assert not_for_persons.status_code == 422
    elsewhere = public_post(client, {**REQUEST, "offer_id": HOUSING}, address="192.0.2.15")  # Corbeil only
    assert elsewhere.status_code == 422 and elsewhere.get_json()["errors"][0]["field"] == "commune_insee"


def test_public_requests_have_a_size_limit_and_a_rate_limit(client, catalogue):
    too_big = public_post(client, {**REQUEST, "message": "x" * 20_000}, address="192.0.2.20")
    assert too_big.status_code == 413 and too_big.content_type == "application/problem+json"
    long_message = public_post(client, {**REQUEST, "message": "x" * 1001}, address="192.0.2.21")
    assert long_message.status_code == 422

    statuses = [public_post(client, {**REQUEST, "consent": i % 2 == 0}, address="192.0.2.30").status_code
                for i in range(7)]
    assert statuses == [201, 422, 201, 422, 201, 429, 429]  # every attempt counts, valid or not
    limited = public_post(client, REQUEST, address="192.0.2.30")
    assert limited.status_code == 429 and limited.content_type == "application/problem+json"
    assert public_post(client, REQUEST, address="192.0.2.31").status_code == 201  # another connection
