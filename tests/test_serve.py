"""`spie serve`: a real server process whose in-process scheduler fires due timers."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from sqlalchemy import func, select

from engine.models import CaseEvent
from tests.helpers import deploy_fixture, start

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read()
    except OSError:
        return None


def test_serve_answers_and_fires_timers(session_factory, ctx, database_url, tmp_path):
    deploy_fixture(session_factory, ctx, "loop.bpmn")
    case_id = start(session_factory, ctx, "weekly_loop", {"target": 1})  # due in simulated January: overdue now
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "SPIE_INSTANCE_PATH": str(tmp_path),
           "SPIE_TIMER_INTERVAL": "0.2"}
    env.pop("SPIE_SIMULATION", None)
    with open(tmp_path / "serve.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-c", "from api.cli import main; main()", "serve", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while _get(f"http://127.0.0.1:{port}/healthz") is None:
                assert server.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
            assert b'"ok"' in _get(f"http://127.0.0.1:{port}/healthz")
            while _fired(session_factory, case_id) == 0:
                assert time.monotonic() < deadline, "the scheduler did not fire the timer"
                time.sleep(0.2)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    assert _fired(session_factory, case_id) == 1


def _fired(session_factory, case_id: int) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(CaseEvent).where(
            CaseEvent.case_id == case_id, CaseEvent.kind == "timer_fired"))
