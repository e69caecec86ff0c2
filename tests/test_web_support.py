"""Helpers for the web page tests (no tests here): signing in, a case waiting for the Département, simulated time.

The scenario data: the Mission Locale référent starts « Jeune sortant de Mission Locale » for
Inès Martin (Évry-Courcouronnes) and prepares her exit; the Département's queue then holds
« Accepter le relais et désigner le référent », which any référent of the MDS Centre may claim.

Set-up goes through the engine, and most tests sign in by writing the session as the login
page does: an argon2 check costs about half a second here, so only the login tests pay it.
"""
from __future__ import annotations

import re

from sqlalchemy import select

from api.auth import web_session_values
from api.extensions import db
from engine import cases, simulation
from engine.db import make_session_factory, transaction
from engine.directory import user_by_email
from engine.models import HumanTask
from tests.api_support import DEMO_PASSWORD, EVRY_PERSON, ML_REFERENT

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
PATHWAY = "jeune-sortant-mission-locale"
PREPARATION = {"date_sortie_prevue": "2026-03-01", "situation_sortie": "sans-solution",
               "synthese": "Sortie sans solution à 26 ans : droits RSA à ouvrir."}


def text(response) -> str:
    return response.get_data(as_text=True)


def csrf_token(client, path: str = "/connexion") -> str:
    page = client.get(path)
    found = CSRF_FIELD.search(page.get_data(as_text=True))
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def web_login(client, email: str, password: str = DEMO_PASSWORD):
    """Log in through the login page (password checked)."""
    token = csrf_token(client)
    response = client.post("/connexion", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 303, response.get_data(as_text=True)
    return response


def sign_in(client, email: str) -> None:
    """What a successful login leaves in the session, without the password check."""
    with client.application.test_request_context():
        values = web_session_values(user_by_email(db.session, email))
    with client.session_transaction() as session:
        session.clear()
        session.update(values)


def post(client, path: str, data: dict | None = None, **kwargs):
    """POST a page form with this session's CSRF token (read from the inbox or the given page)."""
    token = csrf_token(client, kwargs.pop("token_from", "/taches"))
    return client.post(path, data={**(data or {}), "csrf_token": token}, **kwargs)


def start_ml_exit(app) -> dict:
    """The ML référent's case, exit prepared; returns the case id and the Département's task id."""
    ctx = app.extensions["spie"]
    with app.app_context():
        referent = user_by_email(db.session, ML_REFERENT)
        with transaction(db.session):
            person = cases.find_or_create_person(db.session, ctx, EVRY_PERSON)
            case = cases.start_case(db.session, ctx, PATHWAY, actor=referent.email, person=person, referent=referent)
            case_id = case.id
        preparation = _task(case_id, "preparer-sortie")
        with transaction(db.session):
            cases.complete_task(db.session, ctx, preparation, PREPARATION, user=referent.email)
        return {"case_id": case_id, "preparation_id": preparation, "designate_id": _task(case_id, "designer-referent")}


def _task(case_id: int, bpmn_id: str) -> int:
    return db.session.scalar(select(HumanTask.id).where(HumanTask.case_id == case_id, HumanTask.bpmn_id == bpmn_id,
                                                        HumanTask.state.in_(("open", "claimed"))))


def advance_time(app, duration: str) -> None:
    with app.app_context():
        simulation.advance(make_session_factory(db.engine), app.extensions["spie"], duration)


def user_id(app, email: str) -> int:
    with app.app_context():
        return user_by_email(db.session, email).id




def start_entry_diagnostic(app, email: str = ML_REFERENT, person: dict = EVRY_PERSON) -> dict:
    """« Entrée et diagnostic » started by a référent, whose diagnostic task is theirs at once."""
    ctx = app.extensions["spie"]
    with app.app_context():
        referent = user_by_email(db.session, email)
        with transaction(db.session):
            found = cases.find_or_create_person(db.session, ctx, person)
            case = cases.start_case(db.session, ctx, "entree-diagnostic", actor=referent.email, person=found,
                                    referent=referent)
            case_id = case.id
        return {"case_id": case_id, "diagnostic_id": _task(case_id, "diagnostic")}


def complete(app, task_id: int, data: dict, email: str) -> None:
    with app.app_context(), transaction(db.session):
        cases.complete_task(db.session, app.extensions["spie"], task_id, data, user=email)

