"""The scale benchmarks run end to end on a small data set, and `spie check` passes on what they generate.

PostgreSQL only (COPY, SKIP LOCKED): these tests create their own databases on
the server of ``SPIE_TEST_POSTGRES_URL`` (as tests/conftest.py does) and skip
when it cannot be reached. Together they take well under 90 s.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from engine.db import make_engine
from tests.conftest import POSTGRES_ADMIN_URL

ROOT = Path(__file__).resolve().parents[1]
CASES = 2000


def _postgres_or_skip() -> None:
    engine = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - no server: nothing to run these on
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    finally:
        engine.dispose()


def _drop(name: str) -> None:
    engine = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def _run(*args: str, env: dict | None = None, timeout: float = 120) -> str:
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout


@pytest.fixture(scope="module")
def generated():
    """A small generated data set: (database name, output of generate.py)."""
    _postgres_or_skip()
    name = f"spie_smoke_{uuid.uuid4().hex[:10]}"
    try:
        out = _run("bench/generate.py", "--cases", str(CASES), "--database", name, "--postgres-url",
                   POSTGRES_ADMIN_URL, "--territories", "2", "--chunk", "500")
        yield name, out
    finally:
        _drop(name)


def test_generate_loads_the_cases_with_copy(generated):
    name, out = generated
    assert re.search(r"COPY: [\d,]+ rows in [\d.]+ s = [\d,]+ rows/s", out), out
    assert re.search(r"^  case\s+2,000 rows$", out, re.MULTILINE), out
    task_rows = int(re.search(r"^  human_task\s+([\d,]+) rows$", out, re.MULTILINE).group(1).replace(",", ""))
    assert 3 * CASES <= task_rows <= 7 * CASES  # about five task rows per case, history and open
    assert "indexes and constraints rebuilt" in out
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    with engine.connect() as connection:
        # Every secondary index and constraint came back after the load.
        assert connection.scalar(text("SELECT to_regclass('bench_deferred_ddl')")) is None
        assert connection.scalar(text("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_human_task_open_structure'")) == 1
        # Two territories, every task in a structure covering the person's commune or in a pilot's queue
        # (a prescription's own case has no commune: its tasks go to the offer's provider).
        misplaced = connection.scalar(text(
            "SELECT count(*) FROM human_task h JOIN \"case\" c ON c.id = h.case_id JOIN structure s "
            "ON s.id = h.structure_id WHERE NOT s.is_pilot AND c.commune_insee IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM structure_coverage sc "
            "WHERE sc.structure_id = h.structure_id AND sc.commune_insee = c.commune_insee)"))
        assert misplaced == 0
        assert connection.scalar(text("SELECT count(DISTINCT left(commune_insee, 2)) FROM \"case\"")) == 2
    engine.dispose()


def test_spie_check_passes_on_the_generated_data(generated):
    name, _ = generated
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    out = _run("-c", "from api.cli import main; main()", "check",
               env={"DATABASE_URL": url, "SPIE_SIMULATION": "", "SPIE_INSTANCE_PATH": str(ROOT / "instance")})
    engine = make_engine(url)
    with engine.connect() as connection:
        cases = connection.scalar(text('SELECT count(*) FROM "case"'))  # the copies and the walked templates
    engine.dispose()
    assert cases > CASES
    assert re.search(rf"{cases} case\(s\) checked: consistent", out), out


def test_queries_quick_run(generated):
    name, _ = generated
    out = _run("bench/queries.py", "--quick", "--database", name, "--postgres-url", POSTGRES_ADMIN_URL)
    for kind in ("inbox_mine", "inbox_structure", "overdue_structure", "overdue_pilot", "case_page"):
        assert re.search(rf"^{kind}\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+ \|", out, re.MULTILINE), out


def test_timer_storm_fires_each_timer_once():
    _postgres_or_skip()
    out = _run("bench/timer_storm.py", "--timers", "500", "--postgres-url", POSTGRES_ADMIN_URL, timeout=150)
    assert re.search(r"drained 500 timers in [\d.]+ s", out), out
    assert "timers_fired_once 500" in out and "timers_with_one_event 500" in out, out
    assert "-> OK" in out, out
