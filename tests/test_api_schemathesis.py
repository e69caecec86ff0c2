"""Schemathesis over the OpenAPI document, through the WSGI app (no network).

Every operation of ``/api/v1/openapi.json`` gets schema-valid (positive) and
schema-breaking (negative) requests, authenticated as the demo user the
operation is meant for. Checks: no 5xx, every status documented, the content
type documented for that status, the response body and headers conform to
their schema. All failures are collected, then reported together.

No check is relaxed: every error the API sends is documented (problem+json,
per operation, via ``Blueprint.problems``). Generation is derandomized so that
CI runs are reproducible; raise EXAMPLES_PER_MODE locally to explore further.
"""
from __future__ import annotations

import time

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from api.auth import now_utc
from api.extensions import db
from engine import accounts
from engine.db import transaction
from engine.directory import user_by_email
from tests.api_support import ADMIN, EVRY_PERSON, ML_REFERENT, ML_SUPERVISOR

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
EXAMPLES_PER_MODE = 10
# CPU seconds of this process per database (wall time depends on how busy the machine is): on an idle
# machine both databases together take well under a minute.
CPU_BUDGET_SECONDS = 30


def _caller(path: str, method: str) -> str:
    """The demo account an operation is meant for, so that generated requests reach the view's logic."""
    if path.startswith(("/api/v1/users", "/api/v1/audit", "/api/v1/structures")) or (
            path == "/api/v1/pathways" and method == "POST"):
        return "admin"
    if path.startswith(("/api/v1/supervision", "/api/v1/simulation")) or path.endswith("/assign"):
        return "supervisor"
    if path == "/api/v1/auth/token" and method == "DELETE":
        return "revocable"  # a token of its own: the first call revokes it, the next ones get 401
    return "referent"


def _known_ids(operation, case_id: int, task_id: int) -> dict | None:
    """Path parameters naming real objects, so that bodies are fuzzed against a live case and task."""
    names = {p.name for p in operation.path_parameters}
    known = {"case_id": case_id, "task_id": task_id, "key": "jeune-sortant-mission-locale", "number": 1}
    return {name: known[name] for name in names if name in known} or None


def _bearer(app, email: str) -> dict:
    with app.app_context(), transaction(db.session):
        return {"Authorization": "Bearer " + accounts.issue_token(db.session, user_by_email(db.session, email),
                                                                  now_utc())}


def test_openapi_operations_conform(client, seeded):
    tokens = {"admin": _bearer(seeded, ADMIN), "supervisor": _bearer(seeded, ML_SUPERVISOR),
              "referent": _bearer(seeded, ML_REFERENT), "revocable": _bearer(seeded, ML_REFERENT)}
    created = client.post("/api/v1/cases", headers=tokens["referent"],
                          json={"person": EVRY_PERSON, "pathway_key": "jeune-sortant-mission-locale"})
    assert created.status_code == 201, created.json
    case_id, task_id = created.json["id"], created.json["open_tasks"][0]["id"]

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", seeded)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    started = time.process_time()
    for operation in operations:
        headers = tokens[_caller(operation.path, operation.method.upper())]
        runs = [(GenerationMode.POSITIVE, None), (GenerationMode.NEGATIVE, None)]
        if known := _known_ids(operation, case_id, task_id):
            runs.append((GenerationMode.POSITIVE, known))
        for mode, path_parameters in runs:
            @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
            @settings(max_examples=EXAMPLES_PER_MODE, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def exercise(case):
                response = case.call_and_validate(headers=headers, checks=CHECKS)
                statuses.setdefault(f"{operation.method.upper()} {operation.path}", set()).add(response.status_code)

            try:
                exercise()
            except Exception as exc:  # noqa: BLE001 - collected, reported below with the operation
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}):\n{exc}")
    elapsed = time.process_time() - started
    assert not failures, "\n\n".join(failures)
    assert elapsed < CPU_BUDGET_SECONDS, f"schemathesis took {elapsed:.0f} s of CPU"
    # The generated requests reached the views' logic, not only their refusals.
    reached = {label for label, codes in statuses.items() if any(200 <= code < 300 for code in codes)}
    assert {"POST /api/v1/cases", "GET /api/v1/cases", "GET /api/v1/cases/{case_id}", "GET /api/v1/tasks/{task_id}",
            "POST /api/v1/tasks/{task_id}/claim", "GET /api/v1/pathways/{key}/versions/{number}",
            "POST /api/v1/users", "GET /api/v1/audit", "GET /api/v1/supervision/overdue",
            "POST /api/v1/simulation/advance"} <= reached, sorted(reached)
