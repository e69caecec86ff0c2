"""Every refusal is RFC 9457 problem details with the right status; bad input never gives a 500."""
from __future__ import annotations

import json

import pytest

from tests.api_support import ADMIN, DESIGNER, EVRY_PERSON, ML_REFERENT, login

PROBLEM = "application/problem+json"


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    assert response.headers["Content-Type"] == PROBLEM
    body = json.loads(response.get_data(as_text=True))
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert body["status"] == status
    return body


def test_malformed_json_is_400(client, seeded):
    referent = login(client, ML_REFERENT)
    for path, headers in (("/api/v1/auth/token", {}), ("/api/v1/cases", referent)):
        body = assert_problem(client.post(path, data='{"email": "a@b.c",', content_type="application/json",
                                          headers=headers), 400)
        assert body["title"] == "Bad Request"
    # Not UTF-8 at all, and nested deeper than Python's parser goes: still a 400, not a 500.
    assert_problem(client.post("/api/v1/auth/token", data=b"\xff\xfe{", content_type="application/json"), 400)
    deep = "[" * 100_000 + "]" * 100_000
    assert_problem(client.post("/api/v1/cases", data=deep, content_type="application/json", headers=referent), 400)


def test_nine_megabyte_body_is_413(client, seeded):
    designer = login(client, DESIGNER)
    big = json.dumps({"bpmn_xml": "x" * (9 * 1024 * 1024)})
    body = assert_problem(client.post("/api/v1/pathways", data=big, content_type="application/json",
                                      headers=designer), 413)
    assert body["title"] == "Request Entity Too Large"
    # Anonymous endpoints are bounded too.
    assert_problem(client.post("/api/v1/auth/token", data=big, content_type="application/json"), 413)


def test_wrong_types_are_422_with_field_errors(client, seeded):
    referent = login(client, ML_REFERENT)
    body = assert_problem(client.post("/api/v1/cases", headers=referent, json={
        "person": {**EVRY_PERSON, "birth_date": "02/01/2001", "commune_insee": 91228}, "pathway_key": 12,
        "data": ["not", "an", "object"]}), 422)
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"person/birth_date", "person/commune_insee", "pathway_key", "data"}, body["errors"]
    assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])

    # Missing required fields, a list where an object is expected, unknown query values.
    body = assert_problem(client.post("/api/v1/cases", headers=referent, json={}), 422)
    assert {e["field"] for e in body["errors"]} == {"person", "pathway_key"}
    assert_problem(client.post("/api/v1/cases", headers=referent, json=[1, 2]), 422)
    body = assert_problem(client.get("/api/v1/tasks?scope=everyone&per_page=0", headers=referent), 422)
    assert {e["field"] for e in body["errors"]} == {"scope", "per_page"}
    # A body that is not JSON at all is a body without the required fields.
    assert_problem(client.post("/api/v1/auth/token", data="email=a&password=b",
                               content_type="application/x-www-form-urlencoded"), 422)


def test_values_the_database_cannot_hold_are_refused_not_crashed(client, seeded):
    """Numbers beyond 64 bits, NUL characters: refused at the door on SQLite and PostgreSQL alike."""
    referent, admin = login(client, ML_REFERENT), login(client, ADMIN)
    huge = 2**64
    assert_problem(client.get(f"/api/v1/cases/{huge}", headers=referent), 404)
    assert_problem(client.get(f"/api/v1/tasks/{huge}", headers=referent), 404)
    assert_problem(client.get("/api/v1/cases/3000000000", headers=referent), 404)  # > 32 bits, < 64 bits
    assert_problem(client.get(f"/api/v1/pathways/jeune-sortant-mission-locale/versions/{2**40}",
                              headers=referent), 404)
    body = assert_problem(client.get(f"/api/v1/audit?case={huge}", headers=admin), 422)
    assert body["errors"][0]["field"] == "case"
    assert client.get("/api/v1/audit?case=3000000000", headers=admin).json == []
    body = assert_problem(client.post("/api/v1/auth/token", json={"email": "a\x00@b.c", "password": "x"}), 422)
    assert body["errors"][0]["field"] == "email"
    body = assert_problem(client.post("/api/v1/cases", headers=referent, json={
        "person": {**EVRY_PERSON, "last_name": "Mar\x00tin"}, "pathway_key": "jeune-sortant-mission-locale"}), 422)
    assert body["errors"][0]["field"] == "person/last_name"
    assert_problem(client.post("/api/v1/tasks/1/assign", headers=admin, json={"user_id": huge}), 422)


def test_unknown_route_is_404_problem(client, seeded):
    referent = login(client, ML_REFERENT)
    body = assert_problem(client.get("/api/v1/nothing-here", headers=referent), 404)
    assert body["title"] == "Not Found"
    assert_problem(client.get("/no/such/page"), 404)
    assert_problem(client.get("/api/v1/cases/not-a-number", headers=referent), 404)


def test_method_not_allowed_is_405_problem(client, seeded):
    referent = login(client, ML_REFERENT)
    response = client.delete("/api/v1/cases", headers=referent)
    body = assert_problem(response, 405)
    assert body["title"] == "Method Not Allowed"
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}
    assert_problem(client.put("/api/v1/auth/token", json={}), 405)


@pytest.mark.parametrize("method, path", [
    ("get", "/api/v1/users"), ("get", "/api/v1/structures"), ("get", "/api/v1/pathways"),
    ("post", "/api/v1/pathways"), ("get", "/api/v1/cases"), ("post", "/api/v1/cases"),
    ("get", "/api/v1/cases/1"), ("post", "/api/v1/cases/1/messages/droit-rsa-ouvert"), ("get", "/api/v1/tasks"),
    ("post", "/api/v1/tasks/1/complete"), ("post", "/api/v1/tasks/1/claim"), ("get", "/api/v1/supervision/overdue"),
    ("post", "/api/v1/simulation/advance"), ("get", "/api/v1/audit"), ("delete", "/api/v1/auth/token"),
])
def test_no_token_is_401_before_anything_else(client, method, path):
    """Authentication comes first: an anonymous call learns nothing, not even that its body is invalid."""
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YTpi"}):
        response = getattr(client, method)(path, headers=headers, data="{", content_type="application/json")
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_unexpected_error_is_a_500_problem_without_details(app, client):
    def boom():
        raise RuntimeError("secret internals")

    app.add_url_rule("/api/v1/boom-for-test", "boom", boom)
    body = assert_problem(client.get("/api/v1/boom-for-test"), 500)
    assert "secret" not in json.dumps(body)
