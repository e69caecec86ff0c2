#!/usr/bin/env python
"""Faults under load: SIGKILL a timer worker, SIGKILL a web worker, restart PostgreSQL; then check everything.

    python bench/faults.py [--quick] [--timers 3000] [--duration 40] [--web-workers 3] [--clients 4]
                           [--postgres-url URL] [--cluster 15/main] [--no-restart-postgres] [--json FILE]

Set-up: a fresh database (dropped at the end) with the Essonne directory, the
six pathways and ``--timers`` cases whose timers come due one after the other
over the run (COPY, as bench/timer_storm.py), so the timer workers are busy all
along. Then ``gunicorn -w W 'api.app:create_app()'`` and two ``spie worker``
processes, and C HTTP clients (loopback) that each log in once, then start
``entree-diagnostic`` cases and complete their tasks, without pause.

Faults, at fractions of ``--duration``:

- 20 %: SIGKILL one ``spie worker`` (likely mid-batch); a new one is started 2 s later, as a
  process supervisor would;
- 40 %: SIGKILL one gunicorn worker process; the gunicorn master starts another;
- 60 %: restart PostgreSQL (``pg_ctlcluster --skip-systemctl-redirect <version> <name> restart``,
  fast shutdown: every connection is cut). Skipped with ``--no-restart-postgres``.

Every request's outcome is recorded. A request cut by a fault (connection
reset, 5xx) is *uncertain*: it may or may not have committed. Afterwards:

1. uncertain case starts: at most one case per person (each request names a new person);
2. uncertain task completions are sent again: the answer must be 200 (it had not
   committed) or 409 "already completed" (it had) — never a second completion;
3. every acknowledged start and completion is in the database;
4. every timer that came due fired exactly once (``fired_count`` 1, one ``timer_fired``
   event per timer row), and none is left due;
5. ``engine.consistency.check_database`` over the whole database reports nothing.

PostgreSQL is always left running (restarted in a ``finally`` if it is down).
Exit status 0 when every check passes.
"""
from __future__ import annotations

import sys
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

from sqlalchemy import text  # noqa: E402

from bench.http_load import CLIENT_ACCOUNTS, EVRY, HOST, PATHWAY, BIRTH_DATE, Server, form_for  # noqa: E402
from bench.scale_common import US, admin_url, create_database, database_url, drop_database  # noqa: E402
from bench.timer_storm import load_storm, spawn_worker, stop_processes  # noqa: E402
from engine.db import make_engine  # noqa: E402


def postgres_cluster(requested: str | None) -> tuple[str, str]:
    if requested:
        version, name = requested.split("/", 1)
        return version, name
    versions = sorted(Path("/etc/postgresql").iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else 0)
    if not versions:
        raise SystemExit("no PostgreSQL cluster under /etc/postgresql; give --cluster VERSION/NAME")
    return versions[-1].name, "main"


def pg_ctl(cluster: tuple[str, str], action: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action], capture_output=True,
                          text=True, timeout=timeout, check=False)


def postgres_running(cluster: tuple[str, str]) -> bool:
    return pg_ctl(cluster, "status", 30).returncode == 0


def ensure_postgres(cluster: tuple[str, str]) -> None:
    if not postgres_running(cluster):
        result = pg_ctl(cluster, "start")
        if result.returncode != 0:
            print(f"WARNING: could not start PostgreSQL {cluster}: {result.stderr}", file=sys.stderr)


@dataclass
class Outcomes:
    """Every request of the run, by outcome."""

    started: dict[str, int] = field(default_factory=dict)  # person last name -> case id (201)
    uncertain_starts: list[str] = field(default_factory=list)  # person last names
    completed: list[int] = field(default_factory=list)  # task ids (200)
    uncertain_completions: list[tuple[int, str, int]] = field(default_factory=list)  # (task id, bpmn id, client)
    refused: list[str] = field(default_factory=list)  # 4xx on a first attempt: must not happen
    by_status: dict[str, int] = field(default_factory=dict)
    timeline: list[tuple[float, str, str]] = field(default_factory=list)  # (t, op, outcome)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, t: float, op: str, outcome: str) -> None:
        with self.lock:
            self.by_status[f"{op} {outcome}"] = self.by_status.get(f"{op} {outcome}", 0) + 1
            self.timeline.append((t, op, outcome))


class FaultClient:
    """Starts cases and completes their tasks until told to stop; survives resets."""

    def __init__(self, port: int, number: int, outcomes: Outcomes, t0: float, today: str):
        self.port, self.number, self.outcomes, self.t0, self.today = port, number, outcomes, t0, today
        self.connection = None
        self.token = None
        self.pending: list[tuple[int, str]] = []

    def _call(self, method: str, path: str, body: dict | None):
        """(status, json body) or (None, error text) on a connection failure."""
        if self.connection is None:
            self.connection = http.client.HTTPConnection(HOST, self.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            self.connection.request(method, path, body=json.dumps(body) if body is not None else None,
                                    headers=headers)
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.connection.close()
            self.connection = None
            return None, f"{type(exc).__name__}: {exc}"
        try:
            return response.status, json.loads(data) if data else {}
        except ValueError:
            return response.status, {"raw": data[:200].decode(errors="replace")}

    def login(self, password: str) -> None:
        for _ in range(20):
            status, body = self._call("POST", "/api/v1/auth/token", {
                "email": CLIENT_ACCOUNTS[self.number % len(CLIENT_ACCOUNTS)], "password": password})
            if status == 201:
                self.token = body["token"]
                return
            time.sleep(0.5)
        raise RuntimeError(f"client {self.number} could not log in: {status} {body}")

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if self.pending and (len(self.pending) > 2 or self.number % 2):
                self._complete(*self.pending.pop(0))
            else:
                self._start()

    def _start(self) -> None:
        name = f"Panne{uuid.uuid4().hex[:12]}"
        person = {"first_name": f"Client{self.number}", "last_name": name, "birth_date": BIRTH_DATE,
                  "commune_insee": EVRY}
        status, body = self._call("POST", "/api/v1/cases", {"person": person, "pathway_key": PATHWAY})
        t = time.monotonic() - self.t0
        if status == 201:
            self.outcomes.started[name] = body["id"]
            self.pending.extend((task["id"], task["bpmn_id"]) for task in body["open_tasks"]
                                if form_for(task["bpmn_id"], self.today))
            self.outcomes.note(t, "start", "201")
        elif status is None or status >= 500:
            self.outcomes.uncertain_starts.append(name)
            self.outcomes.note(t, "start", str(status or "reset"))
            time.sleep(0.2)
        else:
            self.outcomes.refused.append(f"start {name}: {status} {body}")
            self.outcomes.note(t, "start", str(status))

    def _complete(self, task_id: int, bpmn_id: str) -> None:
        status, body = self._call("POST", f"/api/v1/tasks/{task_id}/complete",
                                  {"data": form_for(bpmn_id, self.today)})
        t = time.monotonic() - self.t0
        if status == 200:
            self.outcomes.completed.append(task_id)
            self.pending.extend((task["id"], task["bpmn_id"]) for task in body["open_tasks"]
                                if form_for(task["bpmn_id"], self.today)
                                and task["id"] not in {p for p, _ in self.pending})
            self.outcomes.note(t, "complete", "200")
        elif status is None or status >= 500:
            self.outcomes.uncertain_completions.append((task_id, bpmn_id, self.number))
            self.outcomes.note(t, "complete", str(status or "reset"))
            time.sleep(0.2)
        else:
            self.outcomes.refused.append(f"complete {task_id} ({bpmn_id}): {status} {body}")
            self.outcomes.note(t, "complete", str(status))


def verify(url: str, outcomes: Outcomes, retry_clients: dict[int, FaultClient], storm_first_case: int) -> dict:
    """The checks of the module docstring; returns figures and the list of failures."""
    failures: list[str] = []
    engine = make_engine(url)
    figures: dict = {}
    with engine.connect() as connection:
        # 1. At most one case per person named by a start request.
        doubles = connection.execute(text(
            "SELECT p.last_name, count(c.id) FROM person p JOIN \"case\" c ON c.person_id = p.id "
            "WHERE p.last_name LIKE 'Panne%' GROUP BY p.last_name HAVING count(c.id) > 1")).all()
        if doubles:
            failures.append(f"persons with two cases (a start applied twice): {doubles[:5]}")
        uncertain_found = connection.execute(text(
            "SELECT count(DISTINCT p.last_name) FROM person p JOIN \"case\" c ON c.person_id = p.id "
            "WHERE p.last_name = ANY(:names)"), {"names": outcomes.uncertain_starts}).scalar()
        figures["uncertain_starts"] = len(outcomes.uncertain_starts)
        figures["uncertain_starts_committed"] = uncertain_found
        # 3. Every acknowledged start is there.
        ids = list(outcomes.started.values())
        found = connection.execute(text('SELECT count(*) FROM "case" WHERE id = ANY(:ids)'), {"ids": ids}).scalar()
        figures["acknowledged_starts"] = len(ids)
        if found != len(ids):
            failures.append(f"{len(ids) - found} acknowledged case start(s) missing")
    # 2. Uncertain completions, sent again by the same user: 200 (had not committed) or 409 (had).
    resent = {"200": 0, "409": 0}
    for task_id, bpmn_id, number in outcomes.uncertain_completions:
        retry_client = retry_clients[number]
        status, body = retry_client._call("POST", f"/api/v1/tasks/{task_id}/complete",
                                          {"data": form_for(bpmn_id, retry_client.today)})
        if status == 200:
            resent["200"] += 1
            outcomes.completed.append(task_id)
        elif status == 409:
            resent["409"] += 1
            resent.setdefault("409_details", []).append(f"task {task_id}: {body.get('detail')}")
            outcomes.completed.append(task_id)
        else:
            failures.append(f"uncertain completion of task {task_id} sent again: {status} {body}")
    figures["uncertain_completions"] = len(outcomes.uncertain_completions)
    figures["uncertain_completions_resent"] = resent
    with engine.connect() as connection:
        completed = connection.execute(text(
            "SELECT count(*) FROM human_task WHERE id = ANY(:ids) AND state = 'completed'"),
            {"ids": outcomes.completed}).scalar()
        figures["acknowledged_completions"] = len(set(outcomes.completed))
        if completed != len(set(outcomes.completed)):
            missing = connection.execute(text(
                "SELECT id, case_id, bpmn_id, state, assignee, version FROM human_task WHERE id = ANY(:ids) "
                "AND state <> 'completed'"), {"ids": outcomes.completed}).all()
            failures.append(f"{len(set(outcomes.completed)) - completed} acknowledged completion(s) not completed: "
                            f"{[tuple(m) for m in missing][:5]}")
        double_events = connection.execute(text(
            "SELECT count(*) FROM (SELECT case_id, task_uuid FROM case_event WHERE kind = 'task_completed' "
            "GROUP BY case_id, task_uuid HAVING count(*) > 1) s")).scalar()
        if double_events:
            failures.append(f"{double_events} task(s) completed twice in the timeline")
        # 4. Timers: fired exactly once, none left due.
        timers = connection.execute(text(
            "SELECT count(*), count(*) FILTER (WHERE t.state = 'fired' AND t.fired_count = 1) FROM timer t "
            "WHERE t.case_id >= :f AND t.due_at <= now()"), {"f": storm_first_case}).one()
        events = connection.execute(text(
            "SELECT count(*) FROM (SELECT t.id FROM timer t JOIN case_event e ON e.case_id = t.case_id "
            "AND e.kind = 'timer_fired' AND (e.summary->>'timer_id')::bigint = t.id WHERE t.case_id >= :f "
            "AND t.due_at <= now() GROUP BY t.id HAVING count(*) = 1) s"), {"f": storm_first_case}).scalar()
        left = connection.execute(text('SELECT count(*) FROM "case" WHERE next_timer_at <= now() - interval '
                                       "'5 seconds'")).scalar()
        figures["timers_due"], figures["timers_fired_once"], figures["timers_with_one_event"] = timers[0], \
            timers[1], events
        figures["cases_with_a_due_timer_left"] = left
        if not (timers[0] == timers[1] == events):
            failures.append(f"timers due {timers[0]}, fired once {timers[1]}, with exactly one event {events}")
        if left:
            failures.append(f"{left} case(s) still have a due timer")
    engine.dispose()
    # 5. The whole database.
    from engine.consistency import check_database
    from engine.context import EngineContext
    from engine.db import make_session_factory

    engine = make_engine(url)
    started = time.perf_counter()
    with make_session_factory(engine)() as session:
        report = check_database(session, EngineContext())
    engine.dispose()
    figures["consistency"] = {"ok": report.ok, "cases": report.cases_checked, "seconds": time.perf_counter() - started,
                              "summary": report.summary(), "problems": [str(p) for p in report.problems[:20]]}
    if not report.ok:
        failures.append("consistency check: " + report.summary())
    if outcomes.refused:
        failures.append(f"{len(outcomes.refused)} first attempt(s) refused (4xx): {outcomes.refused[:3]}")
    figures["failures"] = failures
    return figures


def wait_drained(url: str, timeout: float) -> float:
    engine = make_engine(url)
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            try:
                with engine.connect() as connection:
                    if not connection.execute(text('SELECT count(*) FROM "case" WHERE next_timer_at <= now()')).scalar():
                        return time.monotonic() - started
            except Exception:  # noqa: BLE001 - PostgreSQL may still be coming back: poll again
                time.sleep(0.5)
                continue
            time.sleep(0.5)
        return time.monotonic() - started
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timers", type=int, default=3000, help="cases whose timers come due during the run")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of load")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--cluster", default=None, help="VERSION/NAME for pg_ctlcluster (default: newest, main)")
    parser.add_argument("--no-restart-postgres", action="store_true")
    parser.add_argument("--quick", action="store_true", help="800 timers, 30 s of load")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.timers, args.duration = min(args.timers, 800), min(args.duration, 30.0)

    cluster = postgres_cluster(args.cluster)
    admin = admin_url(args.postgres_url)
    name = f"spie_faults_{uuid.uuid4().hex[:8]}"
    url = database_url(admin, name)
    workdir = Path(tempfile.mkdtemp(prefix="spie-faults-"))
    figures: dict = {"database": name, "cluster": "/".join(cluster), "duration": args.duration,
                     "timers": args.timers, "faults": []}
    server, timer_workers, failures = None, [], ["did not finish"]
    ensure_postgres(cluster)
    create_database(admin, name)
    try:
        # Timers due from 60 s ago to the end of the run: the workers fire all along.
        loaded = load_storm(url, args.timers, spread_us=int(args.duration * 0.9 * US) + 60 * US,
                            log=lambda *_: None)
        print(f"database {name}: {args.timers} cases with timers due over the run, loaded in "
              f"{loaded['load_s']:.1f} s (set-up {sum(loaded['setup_s'].values()):.1f} s)", flush=True)
        server = Server(url, args.web_workers)
        server.wait_ready()
        timer_workers = [spawn_worker(url, workdir, n)[0] for n in range(2)]
        from engine.demo import DEMO_PASSWORD

        outcomes = Outcomes()
        t0 = time.monotonic()
        today = time.strftime("%Y-%m-%d", time.gmtime())
        clients = [FaultClient(server.port, n, outcomes, t0, today) for n in range(args.clients)]
        for client in clients:
            client.login(DEMO_PASSWORD)
        stop = threading.Event()
        threads = [threading.Thread(target=c.run, args=(stop,), daemon=True) for c in clients]
        for thread in threads:
            thread.start()
        print(f"load: gunicorn -w {args.web_workers}, 2 spie workers, {args.clients} clients for "
              f"{args.duration:.0f} s", flush=True)

        def at(fraction: float) -> None:
            delay = t0 + args.duration * fraction - time.monotonic()
            if delay > 0:
                time.sleep(delay)

        def fault(label: str, **detail) -> None:
            t = time.monotonic() - t0
            figures["faults"].append({"t": round(t, 1), "fault": label, **detail})
            print(f"  {t:5.1f} s  {label} {detail or ''}", flush=True)

        at(0.2)
        victim = timer_workers[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        fault("SIGKILL spie worker", pid=victim.pid)
        time.sleep(2)
        timer_workers[0] = spawn_worker(url, workdir, 2)[0]
        fault("spie worker restarted", pid=timer_workers[0].pid)

        at(0.4)
        web_pids = server.worker_pids()
        os.kill(web_pids[0], signal.SIGKILL)
        fault("SIGKILL gunicorn worker", pid=web_pids[0], workers_before=len(web_pids))

        if not args.no_restart_postgres:
            at(0.6)
            started = time.monotonic()
            result = pg_ctl(cluster, "restart")
            fault("PostgreSQL restarted", seconds=round(time.monotonic() - started, 1), rc=result.returncode)
            if result.returncode != 0:
                print(result.stdout, result.stderr, file=sys.stderr)

        at(1.0)
        stop.set()
        for thread in threads:
            thread.join(60)
        web_after = server.worker_pids()
        figures["gunicorn"] = {"master_alive": server.process.poll() is None, "workers_after": len(web_after),
                               "killed_worker_replaced": web_pids[0] not in web_after and
                               len(web_after) == args.web_workers}
        drain_s = wait_drained(url, 120)
        figures["timers_drained_after_load_s"] = drain_s
        time.sleep(1)
        stop_processes([p for p in timer_workers])
        for status, count in sorted(outcomes.by_status.items()):
            print(f"  {status:<16} {count}")
        figures["requests"] = outcomes.by_status
        figures["errors_window_s"] = _error_windows(outcomes)
        print("  failed requests by time window (from s, to s, count): "
              + (", ".join(f"{a}-{b} s: {n}" for a, b, n in figures["errors_window_s"]) or "none"))
        results = verify(url, outcomes, {c.number: _retry_client(server.port, c, today) for c in clients},
                         loaded["first_case"])
        figures.update(results)
        failures = results["failures"]
        print(f"uncertain starts {results['uncertain_starts']} (committed {results['uncertain_starts_committed']}), "
              f"uncertain completions {results['uncertain_completions']} resent -> "
              f"{results['uncertain_completions_resent']}; acknowledged: starts {results['acknowledged_starts']}, "
              f"completions {results['acknowledged_completions']}")
        print(f"timers due {results['timers_due']}, fired exactly once {results['timers_fired_once']}, "
              f"with one timer_fired event {results['timers_with_one_event']}; left due "
              f"{results['cases_with_a_due_timer_left']}; drained {drain_s:.1f} s after the load")
        print(f"gunicorn: {figures['gunicorn']}")
        print(f"consistency check ({results['consistency']['seconds']:.1f} s): {results['consistency']['summary']}")
        for problem in results["consistency"]["problems"]:
            print(f"    {problem}")
        print("RESULT: " + ("all checks passed" if not failures else "FAILED: " + "; ".join(failures)))
        return 0 if not failures else 1
    finally:
        stop_processes(timer_workers)
        if server is not None:
            server.stop()
        ensure_postgres(cluster)
        try:
            drop_database(admin, name)
        except Exception as exc:  # noqa: BLE001 - reported, never hides the result
            print(f"could not drop {name}: {exc}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
        if args.json:
            figures["failures"] = failures
            Path(args.json).write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")


def _retry_client(port: int, like: FaultClient, today: str) -> FaultClient:
    client = FaultClient(port, like.number, Outcomes(), time.monotonic(), today)
    client.token = like.token
    return client


def _error_windows(outcomes: Outcomes) -> list[tuple[float, float, int]]:
    """Spans of consecutive failed requests: (first t, last t, count)."""
    windows: list[list[float]] = []
    for t, _, outcome in sorted(outcomes.timeline):
        if outcome in ("200", "201"):
            continue
        if windows and t - windows[-1][1] < 2.0:
            windows[-1][1] = t
            windows[-1][2] += 1
        else:
            windows.append([t, t, 1])
    return [(round(a, 1), round(b, 1), int(n)) for a, b, n in windows]


if __name__ == "__main__":
    sys.exit(main())
