"""The `spie` command line, on both databases."""
from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from api.cli import main
from engine.models import Case, PathwayVersion, SimulatedClock
from tests.conftest import FIXTURES
from tests.helpers import start


@pytest.fixture
def run(database_url, db_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SPIE_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SPIE_SIMULATION", "1")
    monkeypatch.setenv("SPIE_FORMS_DIR", str(FIXTURES / "forms"))
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_db_upgrade_is_idempotent(run):
    result = run("db", "upgrade")
    assert result.exit_code == 0 and "up to date" in result.output


def test_deploy_reports_versions_and_refusals(run, session_factory, tmp_path):
    simple = str(FIXTURES / "engine" / "simple.bpmn")
    result = run("deploy", simple)
    assert result.exit_code == 0 and "deployed simple v1" in result.output
    assert "unchanged simple v1" in run("deploy", simple).output
    broken = tmp_path / "broken.bpmn"
    broken.write_text("<bpmn:definitions")
    result = run("deploy", str(broken))
    assert result.exit_code == 1 and "xml-syntax" in result.output
    with session_factory() as session:
        assert session.scalars(select(PathwayVersion.key)).all() == ["simple"]


def test_clock_advance_fires_timers(run, session_factory, ctx):
    assert run("deploy", str(FIXTURES / "engine" / "loop.bpmn")).exit_code == 0
    with session_factory() as session:
        cli_start = session.get(SimulatedClock, 1).now  # the CLI's simulated clock starts today
    case_id = start(session_factory, ctx, "weekly_loop", {"target": 2})  # two weekly passes
    result = run("clock", "advance", "P15D")
    assert result.exit_code == 0 and "2 timer firing(s)" in result.output
    with session_factory() as session:
        assert session.get(Case, case_id).status == "closed"
    assert run("clock", "show").output.strip() == (cli_start + timedelta(days=15)).isoformat()
    bad = run("clock", "advance", "15 days")
    assert bad.exit_code != 0 and "ISO 8601" in bad.output
