"""What one API command asks of the database: the task and its case read once, one connection, one commit.

Every task command checks access with one query that also brings the task's case
(``access.task_and_visibility``), the engine works on those very rows, and the
answer is built inside the command's transaction. These tests hold that shape, and
hold the one-query check to the rule of ``access.visible_cases`` for every demo
user and every task.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from api.extensions import db
from engine import access, cases
from engine.db import make_session_factory, transaction
from engine.directory import User
from engine.errors import Conflict
from engine.models import Case, CaseEvent, HumanTask
from tests.api_support import CD_REFERENT, CD_SUPERVISOR, EVRY_PERSON, ML_REFERENT, ML_SUPERVISOR, PILOT, login
from tests.helpers import database_work

ML_PATHWAY = "jeune-sortant-mission-locale"
PREPARATION = {"date_sortie_prevue": "2026-03-01", "situation_sortie": "sans-solution", "synthese": "RSA à ouvrir"}
TASK_WITH_CASE = re.compile(r"FROM human_task JOIN \"case\"", re.IGNORECASE)


def test_a_completion_reads_its_task_once_and_answers_in_its_own_transaction(app, client, seeded):
    headers = login(client, ML_REFERENT)
    created = client.post("/api/v1/cases", headers=headers, json={"person": EVRY_PERSON, "pathway_key": ML_PATHWAY})
    task_id = created.json["open_tasks"][0]["id"]
    with app.app_context():
        engine = db.engine
    with database_work(engine) as seen:
        answer = client.post(f"/api/v1/tasks/{task_id}/complete", headers=headers, json={"data": PREPARATION})
    assert answer.status_code == 200, answer.json
    assert task_id not in [t["id"] for t in answer.json["open_tasks"]]
    assert any(e["kind"] == "task_completed" for e in answer.json["timeline"])  # the answer shows the command
    reads_of_task_and_case = [s for s in seen["statements"] if TASK_WITH_CASE.search(s)]
    assert len(reads_of_task_and_case) == 1, reads_of_task_and_case
    assert seen["checkouts"] == 1 and seen["commits"] == 1, seen


def test_rows_read_before_another_completion_give_a_conflict(app, client, seeded):
    """The engine takes the rows the access check read: a change made in between shows at the save."""
    headers = login(client, ML_REFERENT)
    created = client.post("/api/v1/cases", headers=headers, json={"person": EVRY_PERSON, "pathway_key": ML_PATHWAY})
    task_id = created.json["open_tasks"][0]["id"]
    with app.app_context():
        factory = make_session_factory(db.engine)
    with factory() as session:
        user = session.scalar(select(User).where(User.email == ML_REFERENT))
        task, visible = access.task_and_visibility(session, user, task_id)
        assert visible and task.case.id == created.json["id"] and task.state == "claimed"
        assert client.post(f"/api/v1/tasks/{task_id}/complete", headers=headers,
                           json={"data": PREPARATION}).status_code == 200
        with pytest.raises(Conflict), transaction(session):
            cases.complete_task(session, app.extensions["spie"], task_id, PREPARATION, user=ML_REFERENT)
    with app.app_context():
        completions = db.session.scalars(select(CaseEvent.kind).where(
            CaseEvent.case_id == created.json["id"], CaseEvent.kind == "task_completed")).all()
    assert len(completions) == 1


def test_the_one_query_check_follows_the_visibility_rule(app, client, seeded):
    ml, cd = login(client, ML_REFERENT), login(client, CD_REFERENT)
    for headers in (ml, ml, cd):
        created = client.post("/api/v1/cases", headers=headers,
                              json={"person": EVRY_PERSON, "pathway_key": ML_PATHWAY})
        assert created.status_code == 201
    with app.app_context():
        users = db.session.scalars(select(User).where(User.email.in_(
            (ML_REFERENT, ML_SUPERVISOR, CD_REFERENT, CD_SUPERVISOR, PILOT)))).all()
        tasks = db.session.scalars(select(HumanTask)).all()
        assert len(users) == 5 and len(tasks) >= 3
        checked = {True: 0, False: 0}
        for user in users:
            visible_ids = set(db.session.scalars(access.visible_cases(user).with_only_columns(Case.id)))
            for task in tasks:
                found, visible = access.task_and_visibility(db.session, user, task.id)
                assert found is task and visible == (task.case_id in visible_ids), (user.email, task.id)
                checked[visible] += 1
        assert checked[True] and checked[False]  # both answers were put to the test
        assert access.task_and_visibility(db.session, users[0], 10**12) == (None, False)


def test_a_list_of_cases_costs_the_same_queries_for_one_case_or_many(app, client, seeded):
    headers = login(client, ML_REFERENT)
    with app.app_context():
        engine = db.engine
    counts = []
    for last_name in ("Un", "Deux", "Trois"):
        person = {**EVRY_PERSON, "last_name": last_name}
        assert client.post("/api/v1/cases", headers=headers,
                           json={"person": person, "pathway_key": ML_PATHWAY}).status_code == 201
        with database_work(engine) as seen:
            listed = client.get("/api/v1/cases", headers=headers)
        assert {c["person"]["last_name"] for c in listed.json} >= {last_name}
        counts.append(len(seen["statements"]))
    assert len(listed.json) == 3 and counts[0] == counts[1] == counts[2], counts


def test_a_claim_reads_the_case_without_its_state_a_completion_with_it(app, client, seeded):
    """The state (tens of kB, a long case's hundreds) travels only for the commands that run the workflow."""
    headers, colleague = login(client, ML_REFERENT), login(client, "referent2.ml-centre-essonne@example.org")
    created = client.post("/api/v1/cases", headers=headers, json={"person": EVRY_PERSON, "pathway_key": ML_PATHWAY})
    task_id = created.json["open_tasks"][0]["id"]
    with app.app_context():
        engine = db.engine
    with database_work(engine) as released:
        assert client.post(f"/api/v1/tasks/{task_id}/release", headers=headers).status_code == 200
    with database_work(engine) as claimed:
        assert client.post(f"/api/v1/tasks/{task_id}/claim", headers=colleague).status_code == 200
    with database_work(engine) as completed:
        assert client.post(f"/api/v1/tasks/{task_id}/complete", headers=colleague,
                           json={"data": PREPARATION}).status_code == 200
    for seen, with_state in ((released, False), (claimed, False), (completed, True)):
        [read] = [s for s in seen["statements"] if TASK_WITH_CASE.search(s)]
        assert ('"case".state' in read) is with_state, read
        assert not any(re.match(r'SELECT "case".state', s) for s in seen["statements"])  # nor read afterwards
