#!/usr/bin/env python
"""The pages a référent opens most, timed in-process: inbox, structure queue, case page, task page.

    python bench/web_pages.py [--db sqlite|postgresql] [--cases 30] [--requests 60] [--json FILE]

On a fresh database seeded with the Essonne demo (a SQLite file, or a PostgreSQL
database created and dropped here), a Département référent of MDS Centre starts
``--cases`` cases of ``entree-diagnostic`` through the API; then each page is
requested ``--requests`` times through Flask's test client (no HTTP server: what is
timed is the app, its queries and its templates) with the référent's web session.
Prints p50/p95 in ms and the SQL statements each page issues.
"""
from __future__ import annotations

import sys
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

from sqlalchemy import event  # noqa: E402

from bench.http_load import BIRTH_DATE, CLIENT_ACCOUNTS, EVRY, PATHWAY, Database  # noqa: E402
from bench.scale_common import percentile  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="sqlite")
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--cases", type=int, default=30)
    parser.add_argument("--requests", type=int, default=60, help="timed requests per page")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    database = Database(args.db, args.postgres_url)
    try:
        figures = _measure(database.url, args)
    finally:
        database.drop()
    figures["db"] = args.db
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


def _measure(url: str, args: argparse.Namespace) -> dict:
    os.environ["DATABASE_URL"] = url
    from api.app import create_app
    from api.auth import web_session_values
    from api.extensions import db
    from engine.demo import DEMO_PASSWORD
    from engine.directory import user_by_email
    from engine.gc_policy import tune_for_service

    app = create_app()
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={"email": CLIENT_ACCOUNTS[0], "password": DEMO_PASSWORD})
    headers = {"Authorization": f"Bearer {token.get_json()['token']}"}
    with app.test_request_context():
        values = web_session_values(user_by_email(db.session, CLIENT_ACCOUNTS[0]))
    with client.session_transaction() as session:
        session.update(values)
    cases = []
    for _ in range(args.cases):
        person = {"first_name": "Page", "last_name": f"Bench{uuid.uuid4().hex[:10]}", "birth_date": BIRTH_DATE,
                  "commune_insee": EVRY}
        cases.append(client.post("/api/v1/cases", json={"person": person, "pathway_key": PATHWAY},
                                 headers=headers).get_json())
    pages = {
        "inbox": lambda n: "/taches",
        "structure_queue": lambda n: "/taches?vue=structure",
        "case_page": lambda n: f"/dossiers/{cases[n % len(cases)]['id']}",
        "task_page": lambda n: f"/taches/{cases[n % len(cases)]['open_tasks'][0]['id']}",
    }
    with app.app_context():
        engine = db.engine
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    tune_for_service()
    figures: dict = {"cases": args.cases, "requests": args.requests, "pages": {}}
    print(f"{args.db}: {args.cases} cases, {args.requests} requests per page (test client, in-process)")
    for name, path in pages.items():
        for n in range(5):  # warm-up: templates compiled, statements cached
            client.get(path(n))
        statements.clear()
        client.get(path(0))
        count = len(statements)
        timings = []
        for n in range(args.requests):
            started = time.perf_counter()
            response = client.get(path(n))
            timings.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{path(n)}: HTTP {response.status_code}")
        figure = {"p50_ms": percentile(timings, 50), "p95_ms": percentile(timings, 95), "statements": count}
        figures["pages"][name] = figure
        print(f"{name:<16} p50 {figure['p50_ms']:6.2f} ms  p95 {figure['p95_ms']:6.2f} ms  {count} statements")
    with app.app_context():
        db.engine.dispose()
    return figures


if __name__ == "__main__":
    sys.exit(main())
