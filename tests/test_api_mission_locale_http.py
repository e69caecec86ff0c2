"""The whole "jeune sortant de Mission Locale" pathway driven only through HTTP, by three people."""
from __future__ import annotations

from tests.api_support import (CD_REFERENT, CD_SUPERVISOR, EVRY_PERSON, ML_REFERENT, PILOT, login)


def _task(client, headers, case_id: int, bpmn_id: str) -> dict:
    case = client.get(f"/api/v1/cases/{case_id}", headers=headers).json
    [task] = [t for t in case["open_tasks"] if t["bpmn_id"] == bpmn_id]
    return task


def _complete(client, headers, task_id: int, data: dict, status: int = 200) -> dict:
    response = client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": data}, headers=headers)
    assert response.status_code == status, response.json
    return response.json


def test_mission_locale_exit_over_http(client, seeded):
    ml, cd, chief, pilot = (login(client, e) for e in (ML_REFERENT, CD_REFERENT, CD_SUPERVISOR, PILOT))

    created = client.post("/api/v1/cases", headers=ml,
                          json={"person": EVRY_PERSON, "pathway_key": "jeune-sortant-mission-locale"})
    assert created.status_code == 201, created.json
    case_id = created.json["id"]
    assert [m["user"]["email"] for m in created.json["care_team"]] == [ML_REFERENT]

    # The ML référent's inbox has the preparation, already theirs.
    inbox = client.get("/api/v1/tasks?scope=mine", headers=ml)
    assert [t["bpmn_id"] for t in inbox.json] == ["preparer-sortie"] and inbox.headers["X-Total-Count"] == "1"
    task = inbox.json[0]
    form = client.get(f"/api/v1/tasks/{task['id']}", headers=ml).json
    assert "synthese" in form["form_schema"]["properties"]
    bad = _complete(client, ml, task["id"], {"situation_sortie": "sans-solution"}, status=422)
    assert {e["field"] for e in bad["errors"]} == {""}  # the missing required fields, reported
    _complete(client, ml, task["id"], {"date_sortie_prevue": "2026-03-01", "situation_sortie": "sans-solution",
                                       "synthese": "RSA ouvert"})

    # The Département sees the hand-off in its structure queue, not in the ML's.
    queue = client.get("/api/v1/tasks?scope=structure", headers=cd).json
    [designate] = [t for t in queue if t["bpmn_id"] == "designer-referent"]
    assert client.get(f"/api/v1/tasks/{designate['id']}", headers=ml).status_code == 403

    # 16 simulated days later, the supervisor sees it overdue and escalated.
    assert client.post("/api/v1/simulation/advance", json={"duration": "P16D"}, headers=chief).status_code == 200
    board = client.get("/api/v1/supervision/overdue", headers=chief).json
    [late] = [row for row in board if row["task_id"] == designate["id"]]
    assert late["escalation_level"] == 1 and late["initials"] == "I. M."
    pilot_board = client.get("/api/v1/supervision/overdue", headers=pilot).json
    assert any(row["task_id"] == designate["id"] for row in pilot_board)

    # The supervisor assigns it to their référent, who designates themself.
    referent_id = _user_id(client, CD_REFERENT)
    assigned = client.post(f"/api/v1/tasks/{designate['id']}/assign", json={"user_id": referent_id}, headers=chief)
    assert assigned.status_code == 200 and assigned.json["assignee"] == CD_REFERENT, assigned.json
    _complete(client, cd, designate["id"], {"referent_email": CD_REFERENT, "date_designation": "2026-01-22"})

    meeting = _task(client, ml, case_id, "rendez-vous-tripartite")
    _complete(client, ml, meeting["id"], {"date_rendez_vous": "2026-01-30", "presence_personne": True,
                                          "presence_referent_origine": True, "presence_referent_accueil": True})
    exit_task = _task(client, ml, case_id, "sortie-structure-origine")
    case = _complete(client, ml, exit_task["id"], {"exit_reason": "relais-autre-structure", "exit_date": "2026-01-31"})

    active = [m for m in case["care_team"] if m["ended_at"] is None]
    assert [m["user"]["email"] for m in active] == [CD_REFERENT]
    # The ML is off the care team: the case is no longer theirs to read.
    assert client.get(f"/api/v1/cases/{case_id}", headers=ml).status_code == 404
    assert [t["bpmn_id"] for t in client.get("/api/v1/tasks?scope=mine", headers=cd).json] == ["diagnostic"]


def _user_id(client, email: str) -> int:
    from api.extensions import db
    from engine.directory import user_by_email

    with client.application.app_context():
        return user_by_email(db.session, email).id
