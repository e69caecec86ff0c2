"""The inbox queries, on both databases: a structure's queue keeps engine.access's rules, undated tasks come last.

``access.queue`` is the cheap form of the visibility rule used by the structure's
queue (API ``scope=structure``, the web « File de ma structure » and « En retard »):
it must select exactly the open tasks of the user's structure and audience whose
case ``access.visible_cases`` lets the user see, sensitive care teams included.
"""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, update

from api.auth import now_utc
from api.extensions import db
from engine import access
from engine.db import transaction
from engine.directory import Structure, User, user_by_email
from engine.models import Case, HumanTask
from engine.people import CareTeamMember
from tests.api_support import CD_REFERENT, EVRY_PERSON, ML_REFERENT, ML_SUPERVISOR, PILOT
from tests.test_api_endpoints import ML_REFERENT_2, _sensitive_structure, _start_ml_case, bearer
from tests.test_web_support import sign_in
from web import queries

CSAPA_REFERENT = "referente.csapa@example.org"


def _person(n: int) -> dict:
    return {**EVRY_PERSON, "last_name": f"Martin{n}"}


def _task_ids(response) -> list[int]:
    assert response.status_code == 200, response.json
    return [t["id"] for t in response.json]


def test_queue_orders_by_due_date_with_undated_tasks_last(app, client, seeded):
    ml, colleague = bearer(app, ML_REFERENT), bearer(app, ML_REFERENT_2)
    ids = [_start_ml_case(client, ml, _person(n))["open_tasks"][0]["id"] for n in range(3)]
    with app.app_context(), transaction(db.session):
        now = now_utc()
        for task_id, due in zip(ids, (None, now + timedelta(days=9), now + timedelta(days=3)), strict=True):
            db.session.execute(update(HumanTask).where(HumanTask.id == task_id).values(due_at=due))
    expected = [ids[2], ids[1], ids[0]]  # the nearest due date first, the task without one last

    assert _task_ids(client.get("/api/v1/tasks?scope=structure", headers=colleague)) == expected
    assert _task_ids(client.get("/api/v1/tasks?scope=mine", headers=ml)) == expected
    second = client.get("/api/v1/tasks?scope=structure&per_page=2&page=2", headers=colleague)
    assert _task_ids(second) == [ids[0]] and second.headers["X-Total-Count"] == "3"

    sign_in(client, ML_REFERENT_2)
    page = client.get("/taches?vue=structure").get_data(as_text=True)
    assert [int(i) for i in re.findall(r'<tr id="tache-(\d+)"', page)] == expected


def test_queue_selects_the_open_tasks_of_cases_the_user_may_see(app, client, seeded):
    """Every demo user working cases, on cases where a sensitive structure is or was on the care team."""
    csapa = _sensitive_structure(app, CSAPA_REFERENT)
    ml, cd = bearer(app, ML_REFERENT), bearer(app, CD_REFERENT)
    csapa_headers = bearer(app, CSAPA_REFERENT)
    own = _start_ml_case(client, ml, _person(1))["id"]
    other = client.post("/api/v1/cases", headers=cd, json={"person": _person(2), "pathway_key": "brsa-oriente-social"})
    assert other.status_code == 201, other.json
    # Started by the addiction-care centre: the ML holds its first task all the same.
    hidden, shared, ended = (_start_ml_case(client, csapa_headers, _person(n))["id"] for n in (3, 4, 5))
    with app.app_context(), transaction(db.session):
        ml_structure = user_by_email(db.session, ML_REFERENT).structure_id
        db.session.add(CareTeamMember(case_id=shared, structure_id=ml_structure, role="referent",
                                      started_at=now_utc()))
        db.session.execute(update(CareTeamMember).where(CareTeamMember.case_id == ended,
                                                        CareTeamMember.structure_id == csapa)
                           .values(ended_at=now_utc(), end_reason="relais-autre-structure"))

    with app.app_context():
        users = db.session.scalars(select(User).where(User.role.in_(access.CASE_ROLES))).all()
        assert {u.email for u in users} >= {ML_REFERENT, ML_SUPERVISOR, CD_REFERENT, PILOT, CSAPA_REFERENT}
        for user in users:
            queue = set(db.session.scalars(select(HumanTask.id).where(access.queue(user))))
            by_rule = set(db.session.scalars(select(HumanTask.id).where(
                HumanTask.structure_id == user.structure_id, HumanTask.state.in_(access.OPEN),
                HumanTask.audience.in_(access.audiences(user)),
                HumanTask.case_id.in_(access.visible_cases(user).with_only_columns(Case.id)))))
            assert queue == by_rule, user.email
        ml_user = user_by_email(db.session, ML_REFERENT)
        queued_cases = set(db.session.scalars(select(HumanTask.case_id).where(access.queue(ml_user))))
        assert {own, shared, ended} <= queued_cases and hidden not in queued_cases
        assert db.session.scalar(select(Structure.sensitive).where(Structure.id == csapa)) is True

    colleague = bearer(app, ML_REFERENT_2)
    listed = {t["case_id"] for t in client.get("/api/v1/tasks?scope=structure", headers=colleague).json}
    assert {own, shared, ended} <= listed and hidden not in listed


def test_long_lists_count_up_to_a_bound(app, client, seeded, monkeypatch):
    """Beyond COUNT_CAP a count stops: the API says so in a header, the inbox shows « N+ »."""
    ml, colleague, chief = bearer(app, ML_REFERENT), bearer(app, ML_REFERENT_2), bearer(app, ML_SUPERVISOR)
    ids = [_start_ml_case(client, ml, _person(n))["open_tasks"][0]["id"] for n in range(3)]
    monkeypatch.setattr("api.v1.tasks.COUNT_CAP", 2)
    monkeypatch.setattr("api.v1.supervision.COUNT_CAP", 2)
    monkeypatch.setattr("web.queries.COUNT_CAP", 2)

    full = client.get("/api/v1/tasks?scope=structure&per_page=2", headers=colleague)
    assert len(full.json) == 2 and full.headers["X-Total-Count"] == "2"
    assert full.headers["X-Total-Count-Capped"] == "true"
    last = client.get("/api/v1/tasks?scope=structure&per_page=2&page=2", headers=colleague)
    assert _task_ids(last) == [ids[-1]] and last.headers["X-Total-Count"] == "3"  # a short page: exact
    assert "X-Total-Count-Capped" not in last.headers
    short = client.get("/api/v1/tasks?scope=structure", headers=colleague)
    assert short.headers["X-Total-Count"] == "3" and "X-Total-Count-Capped" not in short.headers
    past_the_end = client.get("/api/v1/tasks?scope=structure&per_page=2&page=3", headers=colleague)
    assert past_the_end.json == [] and past_the_end.headers["X-Total-Count-Capped"] == "true"

    assert client.post("/api/v1/simulation/advance", headers=chief, json={"duration": "P2M"}).status_code == 200
    board = client.get("/api/v1/supervision/overdue?per_page=1", headers=chief)
    assert board.headers["X-Total-Count"] == "2" and board.headers["X-Total-Count-Capped"] == "true"

    sign_in(client, ML_REFERENT_2)
    page = client.get("/taches?vue=structure").get_data(as_text=True)
    assert re.search(r'id="compte-structure">2\+<', page) and "— 2+ tâches" in page
    assert re.search(r'id="compte-mes-taches">0<', page)


def test_a_capped_inbox_counts_once_and_pages_without_a_last_page(app, client, seeded, monkeypatch):
    """The view's total is its tab's count; beyond the bound the pager says « Page N », a next link on a full page."""
    ml = bearer(app, ML_REFERENT)
    for n in range(3):
        _start_ml_case(client, ml, _person(n))
    monkeypatch.setattr("web.queries.COUNT_CAP", 2)
    monkeypatch.setattr("web.inbox.PER_PAGE", 2)
    counted = []
    original = queries._capped_count
    monkeypatch.setattr("web.queries._capped_count", lambda query: counted.append(query) or original(query))

    sign_in(client, ML_REFERENT_2)
    first = client.get("/taches?vue=structure").get_data(as_text=True)
    assert len(counted) == len(queries.VIEWS)  # one count per tab, the current view's included
    assert "— 2+ tâches" in first and 'aria-current="page">Page 1</li>' in first and " sur " not in first
    assert 'page=2' in first and "Page suivante" in first
    second = client.get("/taches?vue=structure&page=2").get_data(as_text=True)
    assert 'aria-current="page">Page 2</li>' in second and "Page précédente" in second
    assert "Page suivante" not in second  # a short page: the last

    monkeypatch.setattr("web.queries.COUNT_CAP", 1000)
    exact = client.get("/taches?vue=structure").get_data(as_text=True)
    assert "— 3 tâches" in exact and 'aria-current="page">Page 1 sur 2</li>' in exact
