"""Faults under load lose nothing: bench/faults.py --quick on small data (PostgreSQL only, slow).

A timer worker and a gunicorn worker are SIGKILLed and PostgreSQL is restarted
while HTTP clients start cases and complete tasks and two `spie worker`s fire
timers; afterwards no acknowledged command is missing, none was applied twice,
every due timer fired exactly once and `engine.consistency.check_database`
passes. PostgreSQL is always left running.

Restarting PostgreSQL cuts every session of the server, including other test
runs sharing it: the restart happens only where the server belongs to this run
— in CI (``CI`` set) or with ``SPIE_TEST_RESTART_POSTGRES=1`` — and only for a
local cluster this process may control (root, ``pg_ctlcluster``). Elsewhere the
two SIGKILLs still run, without the restart.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from engine.db import make_engine
from tests.conftest import POSTGRES_ADMIN_URL

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _cluster() -> str | None:
    """VERSION/main of the local cluster when this run may restart it, else None."""
    allowed = os.environ.get("SPIE_TEST_RESTART_POSTGRES") == "1" or bool(os.environ.get("CI"))
    if not allowed or shutil.which("pg_ctlcluster") is None or os.geteuid() != 0 \
            or not Path("/etc/postgresql").is_dir():
        return None
    versions = sorted((p.name for p in Path("/etc/postgresql").iterdir() if p.name.isdigit()), key=int)
    host = POSTGRES_ADMIN_URL.split("@")[-1]
    if not versions or not (host.startswith("127.0.0.1") or host.startswith("localhost")):
        return None
    return f"{versions[-1]}/main"


def _postgres_up() -> bool:
    engine = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT 1")).scalar() == 1
    except Exception:  # noqa: BLE001
        return False
    finally:
        engine.dispose()


@pytest.mark.timeout(240)
def test_kills_and_a_database_restart_lose_nothing():
    if not _postgres_up():
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}")
    cluster = _cluster()
    command = [sys.executable, "bench/faults.py", "--quick", "--postgres-url", POSTGRES_ADMIN_URL]
    command += ["--cluster", cluster] if cluster else ["--no-restart-postgres"]
    try:
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=220)
    finally:
        if cluster and not _postgres_up():
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster.split("/"), "start"],
                           check=False, timeout=120)
    out = result.stdout + result.stderr[-3000:]
    assert result.returncode == 0, out[-6000:]
    assert "SIGKILL spie worker" in out and "SIGKILL gunicorn worker" in out, out
    if cluster:
        assert re.search(r"PostgreSQL restarted \{'seconds': [\d.]+, 'rc': 0\}", out), out
    assert re.search(r"case\(s\) checked: consistent", out), out
    assert "RESULT: all checks passed" in out, out
    assert _postgres_up()
