#!/usr/bin/env python
"""Read benchmarks on a generated data set: the inboxes, the overdue boards and the case page.

    python bench/queries.py [--database spie_scale] [--postgres-url URL] [--users 300] [--quick]
                            [--explain] [--json FILE]

Each query is the API's own: the Flask views are called through the test
client with real bearer tokens of sampled users (routing, token check, the
view's SQL, the presenters' queries, JSON serialization, the access log
insert of a case read — everything but the HTTP socket, which
bench/http_load.py measures). For every request the SQL statements it ran are
counted and timed with a ``before/after_cursor_execute`` listener.

- ``inbox_mine``: ``GET /api/v1/tasks?scope=mine`` for a référent (their open tasks);
- ``inbox_structure``: ``GET /api/v1/tasks?scope=structure`` (the structure's queue);
- ``overdue_structure``: ``GET /api/v1/supervision/overdue`` for a structure supervisor;
- ``overdue_pilot``: the same for a Département pilot (the territory view);
- ``case_page``: ``GET /api/v1/cases/<id>`` (``access.case_for`` + ``presenters.case_out``) for a user
  who may see the case (the assignee of one of its open tasks, or a référent of the structure whose
  queue holds it).

The two overdue boards are ``engine.supervision``'s query, which the API view
calls (the supervision pages share it). A case with a sensitive structure on its
care team (bench/generate.py puts one on 1 active case in 30) is opened by that
structure's référent, the only one who may.

Users are drawn at random (fixed seed) among those who have something to see;
p50/p95/max are over one request per sampled user, in random order, after a
short warm-up. Target: p95 <= 50 ms each. ``CPU p50`` is this process's CPU
time per request (Python: routing, ORM, serialization), which other jobs on
the machine do not inflate as they do the wall-clock figures; ``capped`` is
the number of requests whose ``X-Total-Count`` stopped at the API's bound
(``X-Total-Count-Capped``).

``--explain`` re-runs the SELECTs of the median and of the slowest request of
each kind under ``EXPLAIN (ANALYZE, BUFFERS)`` and writes them to
bench/results/explain-<database>-<kind>.txt (a one-line summary per statement
is printed).
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
import random  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

from sqlalchemy import event, text  # noqa: E402

from bench.scale_common import RESULTS_DIR, admin_url, database_url, percentile  # noqa: E402

KINDS = ("inbox_mine", "inbox_structure", "overdue_structure", "overdue_pilot", "case_page")
TARGET_P95_MS = 50.0


class SqlRecorder:
    """Statements of the current request, with their duration."""

    def __init__(self, engine) -> None:
        self.statements: list[tuple[str, object, float]] = []
        self.active = False
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        if self.active:
            self.statements.append((statement, parameters, time.perf_counter() - conn.info.pop("bench_started")))

    def start(self) -> None:
        self.statements, self.active = [], True

    def stop(self) -> list[tuple[str, object, float]]:
        self.active = False
        return self.statements


def sample_users(connection, count: int, rng: random.Random) -> dict[str, list]:
    """(kind -> list of (user email, path)) drawn from the data."""

    def pick(rows, n):
        rows = list(rows)
        if not rows:
            return []
        return [rows[int(rng.random() * len(rows))] for _ in range(n)] if len(rows) < n else rng.sample(rows, n)

    # Référents holding open tasks of their own (the ones whose "mine" inbox is not empty), and all référents.
    holders = connection.execute(text(
        "SELECT u.email FROM app_user u WHERE u.role = 'referent' AND u.active AND EXISTS ("
        " SELECT 1 FROM human_task h WHERE h.assignee = u.email AND h.state IN ('open', 'claimed'))"
        " AND u.id % 7 < 3")).scalars().all()  # a pseudo-random third, to keep the EXISTS scan short
    referents = connection.execute(text(
        "SELECT u.email FROM app_user u JOIN structure s ON s.id = u.structure_id "
        "WHERE u.role = 'referent' AND u.active AND NOT s.is_pilot")).scalars().all()
    supervisors = connection.execute(text(
        "SELECT u.email FROM app_user u JOIN structure s ON s.id = u.structure_id "
        "WHERE u.role = 'supervisor' AND u.active AND NOT s.is_pilot")).scalars().all()
    pilots = connection.execute(text(
        "SELECT u.email FROM app_user u JOIN structure s ON s.id = u.structure_id "
        "WHERE u.role = 'supervisor' AND u.active AND s.is_pilot")).scalars().all()
    # Case pages: a random sample of open tasks (TABLESAMPLE keeps it cheap on millions of rows). A case with a
    # sensitive structure on its care team is opened by that structure's référent (the others may not see it).
    columns = ("h.case_id, h.assignee, h.structure_id, (SELECT u.email FROM care_team_member m "
               "JOIN structure s ON s.id = m.structure_id JOIN app_user u ON u.id = m.user_id "
               "WHERE m.case_id = h.case_id AND m.ended_at IS NULL AND s.sensitive LIMIT 1)")
    sampled = connection.execute(text(
        f"SELECT {columns} FROM human_task h TABLESAMPLE SYSTEM (2) "
        "REPEATABLE (7) WHERE h.state IN ('open', 'claimed') AND h.audience = 'referent' LIMIT :n"),
        {"n": count * 4}).all()
    if len(sampled) < count:
        sampled = connection.execute(text(
            f"SELECT {columns} FROM human_task h "
            "WHERE h.state IN ('open', 'claimed') AND h.audience = 'referent' ORDER BY random() LIMIT :n"),
            {"n": count * 4}).all()
    referents_of = {}
    case_pages = []
    for case_id, assignee, structure_id, sensitive_member in pick(sampled, count):
        if sensitive_member is not None:
            assignee = sensitive_member
        elif assignee is None:
            if structure_id not in referents_of:
                referents_of[structure_id] = connection.execute(text(
                    "SELECT email FROM app_user WHERE structure_id = :s AND role = 'referent' AND active "
                    "ORDER BY id LIMIT 20"), {"s": structure_id}).scalars().all()
            if not referents_of[structure_id]:
                continue
            assignee = rng.choice(referents_of[structure_id])
        case_pages.append((assignee, f"/api/v1/cases/{case_id}"))
    return {
        "inbox_mine": [(u, "/api/v1/tasks?scope=mine&status=open") for u in pick(holders, count)],
        "inbox_structure": [(u, "/api/v1/tasks?scope=structure&status=open") for u in pick(referents, count)],
        "overdue_structure": [(u, "/api/v1/supervision/overdue") for u in pick(supervisors, count)],
        "overdue_pilot": [(u, "/api/v1/supervision/overdue") for u in pick(pilots, count)],
        "case_page": case_pages,
    }


def issue_tokens(app, emails: set[str]) -> dict[str, str]:
    """Bearer tokens issued as the login does (no argon2 per user: the login is measured by http_load)."""
    from api.extensions import db
    from engine.accounts import issue_token
    from engine.db import transaction
    from engine.directory import user_by_email

    tokens = {}
    with app.app_context(), transaction(db.session):
        now = datetime.now(timezone.utc)
        for email in sorted(emails):
            tokens[email] = issue_token(db.session, user_by_email(db.session, email), now)
    return tokens


def explain(engine, statements, out, label: str) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) every SELECT of a request; the plans to ``out``, one summary line each."""
    lines = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for number, (statement, parameters, seconds) in enumerate(statements, 1):
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            plan = [row[0] for row in cursor.fetchall()]
            raw.rollback()
            out.write(f"--- {label} statement {number} ({seconds * 1000:.2f} ms in the request)\n{statement}\n"
                      f"-- parameters: {parameters!r}\n" + "\n".join(plan) + "\n\n")
            execution = next((p for p in plan if p.startswith("Execution Time")), "")
            top = plan[0].split("  (")[0].strip()
            buffers = next((p.strip() for p in plan if p.strip().startswith("Buffers:")), "")
            scans = sorted({f"{m.group(1)}{' ' + m.group(2) if m.group(2) else ''} on {m.group(3)}"
                            for p in plan for m in [re.search(r"(Index Only Scan|Index Scan|Bitmap Heap Scan|"
                                                              r"Bitmap Index Scan|Seq Scan)(?: using (\S+))? on "
                                                              r"(\S+)", p)] if m})
            ms = float(execution.split()[-2]) if execution else 0.0
            summary = (f"    #{number} {execution.replace('Execution Time: ', ''):>12}  {top[:60]:<60} "
                       f"{buffers[:60]}  [{'; '.join(scans)[:200]}]")
            lines.append((ms, summary))
    finally:
        raw.close()
    # The four slowest statements in full; the rest summed (the presenters' look-ups by id, mostly).
    slowest = sorted(lines, key=lambda item: -item[0])[:4]
    rest = [ms for ms, _ in lines if (ms, _) not in slowest]
    out = [line for ms, line in sorted(slowest, key=lambda item: lines.index(item))]
    if rest:
        out.append(f"    (+ {len(rest)} other SELECT(s), {sum(rest):.2f} ms of execution in all)")
    return out


def _machine_cpu() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="spie_scale")
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--users", type=int, default=300, help="sampled users (requests) per query kind")
    parser.add_argument("--quick", action="store_true", help="30 users per kind, no EXPLAIN")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN (ANALYZE, BUFFERS) into bench/results/")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--label", default="", help="suffix of the EXPLAIN files (e.g. before, after)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    count = 30 if args.quick else args.users

    url = database_url(admin_url(args.postgres_url), args.database)
    os.environ.pop("SPIE_SIMULATION", None)
    os.environ.setdefault("SPIE_INSTANCE_PATH", tempfile.mkdtemp(prefix="spie-bench-"))
    from api.app import create_app
    from api.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SPIE_SIMULATION": False})
    client = app.test_client()
    rng = random.Random(args.seed)
    with app.app_context():
        engine = db.engine
        with engine.connect() as connection:
            cases = connection.scalar(text('SELECT reltuples::bigint FROM pg_class WHERE relname = \'case\''))
            tasks = connection.scalar(text("SELECT reltuples::bigint FROM pg_class WHERE relname = 'human_task'"))
            samples = sample_users(connection, count, rng)
        recorder = SqlRecorder(engine)
    tokens = issue_tokens(app, {u for requests in samples.values() for u, _ in requests})
    print(f"database {args.database}: ~{cases:,} cases, ~{tasks:,} task rows; "
          f"{sum(len(v) for v in samples.values())} requests over {len(tokens)} users", flush=True)

    # Warm-up: a few requests of each kind, not counted (connection pool, compiled statement caches).
    for kind in KINDS:
        for email, path in samples[kind][:5]:
            client.get(path, headers={"Authorization": f"Bearer {tokens[email]}"})

    jobs = [(kind, email, path) for kind in KINDS for email, path in samples[kind]]
    rng.shuffle(jobs)
    load_before = os.getloadavg()[0]
    busy0, total0 = _machine_cpu()
    own0 = time.process_time()
    run_started = time.perf_counter()
    results: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    for kind, email, path in jobs:
        recorder.start()
        cpu_started, started = time.process_time(), time.perf_counter()
        response = client.get(path, headers={"Authorization": f"Bearer {tokens[email]}"})
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        statements = recorder.stop()
        if response.status_code != 200:
            raise SystemExit(f"{kind} {path} as {email}: HTTP {response.status_code} {response.get_data(True)[:300]}")
        body = response.get_json()
        results[kind].append({"ms": elapsed * 1000, "cpu_ms": cpu * 1000,
                              "sql_ms": sum(s for _, _, s in statements) * 1000,
                              "statements": len(statements), "items": len(body) if isinstance(body, list) else 1,
                              "total": int(response.headers.get("X-Total-Count", 1)),
                              "capped": "X-Total-Count-Capped" in response.headers, "email": email, "path": path,
                              "sql": statements})

    run_s = time.perf_counter() - run_started
    busy1, total1 = _machine_cpu()
    cores = os.cpu_count() or 1
    machine = (busy1 - busy0) / max(1, total1 - total0) * cores
    own = (time.process_time() - own0) / run_s
    figures = {"database": args.database, "cases": cases, "task_rows": tasks, "kinds": {},
               "cpu": {"benchmark_cores": own, "machine_cores": machine, "load_average_before": load_before,
                       "cpu_count": cores, "seconds": run_s}}
    print(f"{len(jobs)} requests in {run_s:.1f} s; CPU cores busy: this process {own:.2f}, whole machine "
          f"{machine:.2f} of {cores} (load average before: {load_before:.1f}) - when the machine figure is far "
          f"above this process + PostgreSQL, other jobs were running and the latencies are pessimistic")
    print(f"\n{'query':<18} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} | {'CPU p50':>8} | {'SQL p50':>8} "
          f"{'SQL p95':>8} {'stmts':>5} | {'rows p50':>8} {'total p50':>9} {'total max':>9} {'capped':>6}  "
          f"target p95 <= {TARGET_P95_MS:.0f} ms")
    for kind in KINDS:
        rows = results[kind]
        ms = [r["ms"] for r in rows]
        sql = [r["sql_ms"] for r in rows]
        figure = {"n": len(rows), "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "max_ms": max(ms),
                  "cpu_p50_ms": percentile([r["cpu_ms"] for r in rows], 50),
                  "sql_p50_ms": percentile(sql, 50), "sql_p95_ms": percentile(sql, 95),
                  "statements_p50": percentile([r["statements"] for r in rows], 50),
                  "items_p50": percentile([r["items"] for r in rows], 50),
                  "total_p50": percentile([r["total"] for r in rows], 50), "total_max": max(r["total"] for r in rows),
                  "capped": sum(r["capped"] for r in rows)}
        figures["kinds"][kind] = figure
        verdict = "ok" if figure["p95_ms"] <= TARGET_P95_MS else "OVER"
        print(f"{kind:<18} {figure['n']:>4} {figure['p50_ms']:8.1f} {figure['p95_ms']:8.1f} {figure['max_ms']:8.1f} | "
              f"{figure['cpu_p50_ms']:8.1f} | {figure['sql_p50_ms']:8.1f} {figure['sql_p95_ms']:8.1f} "
              f"{figure['statements_p50']:5.0f} | "
              f"{figure['items_p50']:8.0f} {figure['total_p50']:9.0f} {figure['total_max']:9.0f} {figure['capped']:6}  "
              f"{verdict}")

    if args.explain and not args.quick:
        RESULTS_DIR.mkdir(exist_ok=True)
        suffix = f"-{args.label}" if args.label else ""
        print("\nEXPLAIN (ANALYZE, BUFFERS) of the median and the slowest request of each kind "
              f"(bench/results/explain-{args.database}-<kind>{suffix}.txt):")
        with app.app_context():
            for kind in KINDS:
                ordered = sorted(results[kind], key=lambda r: r["ms"])
                median, slowest = ordered[len(ordered) // 2], ordered[-1]
                path = RESULTS_DIR / f"explain-{args.database}-{kind}{suffix}.txt"
                with path.open("w", encoding="utf-8") as out:
                    for label, request in (("median", median), ("slowest", slowest)):
                        out.write(f"=== {kind} {label}: {request['path']} as {request['email']} "
                                  f"{request['ms']:.1f} ms, {request['statements']} statements\n\n")
                        print(f"  {kind} {label} ({request['ms']:.1f} ms, {request['statements']} statements; "
                              f"X-Total-Count {request['total']}):")
                        for line in explain(db.engine, request["sql"], out, f"{kind} {label}"):
                            print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    over = [k for k, f in figures["kinds"].items() if f["p95_ms"] > TARGET_P95_MS]
    print(f"\n{'all p95 within' if not over else 'p95 over'} {TARGET_P95_MS:.0f} ms{': ' + ', '.join(over) if over else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
