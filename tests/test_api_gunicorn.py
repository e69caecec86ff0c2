"""End to end: the API served by gunicorn (two workers) on loopback, driven with urllib like any client."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from engine.demo import DEMO_PASSWORD
from engine.paths import PROJECT_ROOT
from tests.api_support import ADMIN, CD_REFERENT, EVRY_PERSON, ML_REFERENT

pytestmark = pytest.mark.slow

START_TIMEOUT = 60  # seconds: two workers importing the engine on a busy machine


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Http:
    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        """(status, content type, decoded JSON body) — error statuses included, nothing raised."""
        request = urllib.request.Request(self.base + path, method=method,
                                         data=None if body is None else json.dumps(body).encode())
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers.get_content_type(), json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get_content_type(), json.loads(error.read() or b"null")

    def token(self, email: str) -> str:
        status, _, body = self.call("POST", "/api/v1/auth/token", {"email": email, "password": DEMO_PASSWORD})
        assert status == 201, body
        return body["token"]


@pytest.fixture
def server(seeded, database_url, tmp_path):
    """gunicorn on a free loopback port, on the seeded test database; stopped with SIGTERM."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "SPIE_SIMULATION": "1",
           "SPIE_INSTANCE_PATH": str(tmp_path / "instance"), "SPIE_SECRET_KEY": "test-only"}
    log = open(tmp_path / "gunicorn.log", "w+b")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "10",
         "api.app:create_app()"], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    http = Http(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, _tail(log)
            try:
                if http.call("GET", "/healthz")[0] == 200:
                    break
            except OSError:  # not listening yet
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer /healthz in time:\n" + _tail(log)
            time.sleep(0.2)
        yield http, process, log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def _tail(log) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-3000:]


def test_a_case_over_real_http(server):
    http, process, log = server
    ml = http.token(ML_REFERENT)

    status, _, case = http.call("POST", "/api/v1/cases", {"person": EVRY_PERSON,
                                                          "pathway_key": "jeune-sortant-mission-locale"}, ml)
    assert status == 201, case
    [task] = case["open_tasks"]
    status, _, detail = http.call("GET", f"/api/v1/tasks/{task['id']}", token=ml)
    assert status == 200 and "synthese" in detail["form_schema"]["properties"]

    # A refusal travels as problem+json, through whichever worker answers.
    status, content_type, problem = http.call("POST", f"/api/v1/tasks/{task['id']}/complete",
                                              {"data": {"synthese": ""}}, ml)
    assert (status, content_type) == (422, "application/problem+json") and problem["errors"], problem
    status, _, done = http.call("POST", f"/api/v1/tasks/{task['id']}/complete", {"data": {
        "date_sortie_prevue": "2026-03-01", "situation_sortie": "sans-solution", "synthese": "RSA à ouvrir"}}, ml)
    assert status == 200, done
    assert "designer-referent" in {t["bpmn_id"] for t in done["open_tasks"]}

    # Both workers see the same database: the Département's queue has the hand-off at once.
    cd = http.token(CD_REFERENT)
    for _ in range(4):
        status, _, queue = http.call("GET", "/api/v1/tasks?scope=structure", token=cd)
        assert status == 200 and "designer-referent" in {t["bpmn_id"] for t in queue}
    outsider = http.token("referent.ft-evry@example.org")
    status, content_type, _ = http.call("GET", f"/api/v1/cases/{case['id']}", token=outsider)
    assert (status, content_type) == (404, "application/problem+json")

    # The access log has the caller's real address.
    status, _, entries = http.call("GET", f"/api/v1/audit?case={case['id']}", token=http.token(ADMIN))
    assert status == 200 and {e["address"] for e in entries} == {"127.0.0.1"}
    assert ("task.complete", "allowed") in {(e["action"], e["outcome"]) for e in entries}

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, _tail(log)
    assert "Handling signal: term" in _tail(log) or "Shutting down" in _tail(log)
