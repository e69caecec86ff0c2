"""Fixtures and helpers for API tests: an app on the test database, seeded with the Essonne demo."""
from __future__ import annotations

import pytest

from api.app import create_app
from api.extensions import db
from engine.clock import DatabaseClock
from engine.db import transaction
from engine.demo import DEMO_PASSWORD, deploy_pathways, set_demo_passwords
from engine.directory_io import seed_demo
from tests.conftest import SIMULATION_START


@pytest.fixture
def app(database_url, db_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("SPIE_INSTANCE_PATH", str(tmp_path))
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SPIE_SIMULATION": True, "TESTING": True})
    app.extensions["spie"].clock = DatabaseClock(start=SIMULATION_START)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def seeded(app):
    """The demo directory, its accounts (password DEMO_PASSWORD) and the six pathways."""
    with app.app_context():
        with transaction(db.session):
            seed_demo(db.session)
            set_demo_passwords(db.session, DEMO_PASSWORD)
        deploy_pathways(db.session, app.extensions["spie"], deployed_by="designer")
    return app


def login(client, email: str, password: str = DEMO_PASSWORD) -> dict:
    response = client.post("/api/v1/auth/token", json={"email": email, "password": password})
    assert response.status_code == 201, response.json
    return {"Authorization": f"Bearer {response.json['token']}"}


# Demo accounts (data/demo/users.csv) around Évry-Courcouronnes.
ML_REFERENT = "referent.ml-centre-essonne@example.org"
ML_SUPERVISOR = "superviseur.ml-centre-essonne@example.org"
CD_REFERENT = "referent.mds-centre@example.org"
CD_SUPERVISOR = "superviseur.mds-centre@example.org"
PILOT = "pilote.spie@example.org"
ADMIN = "admin.spie@example.org"
DESIGNER = "concepteur.spie@example.org"
EVRY_PERSON = {"first_name": "Inès", "last_name": "Martin", "birth_date": "2001-01-02", "commune_insee": "91228"}
