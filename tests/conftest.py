"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL: ``SPIE_TEST_POSTGRES_URL`` (default: the local server with trust
auth) names a server; each test session creates its own database there, so
parallel runs and leftovers never interfere.
"""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from engine.clock import DatabaseClock
from engine.context import EngineContext
from engine.db import Base, make_engine, make_session_factory
from engine.schema import upgrade_database

pytest_plugins = ["tests.api_support"]

FIXTURES = Path(__file__).parent / "fixtures"
POSTGRES_ADMIN_URL = os.environ.get(
    "SPIE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SIMULATION_START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'spie.sqlite3'}"
        return
    name = f"spie_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def migrated_engine(database_url):
    engine = make_engine(database_url)
    upgrade_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def db_engine(migrated_engine):
    """The migrated database, emptied before each test."""
    with migrated_engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    return migrated_engine


@pytest.fixture
def session_factory(db_engine):
    return make_session_factory(db_engine)


@pytest.fixture
def session(session_factory):
    with session_factory() as session:
        yield session


@pytest.fixture
def ctx():
    """Engine context on simulated time, with the test forms."""
    return EngineContext(clock=DatabaseClock(start=SIMULATION_START), forms_dir=FIXTURES / "forms")


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()
