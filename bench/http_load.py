#!/usr/bin/env python
"""Throughput and latency over HTTP: gunicorn workers, a bounded load generator on loopback.

    python bench/http_load.py [--db postgresql|sqlite] [--database NAME] [--workers 4] [--clients 8]
                              [--duration 30] [--max-requests 4000] [--quick] [--json FILE]

Starts ``gunicorn -w W -b 127.0.0.1:<free port> 'api.app:create_app()'`` on a
PostgreSQL database (``--database``: an existing one, e.g. the generated
national data set; default: a fresh database seeded with the Essonne demo
directory and the six pathways, dropped at the end) or, with ``--db sqlite``,
on a fresh SQLite file seeded the same way, then C client threads, each with
one keep-alive ``http.client`` connection:

1. **logins**: each client logs in once (``POST /api/v1/auth/token``, argon2) as
   one of the Département référents of MDS Centre (Évry-Courcouronnes);
2. **case starts**: ``POST /api/v1/cases`` of ``entree-diagnostic`` for a new
   person of Évry-Courcouronnes, for ``--duration`` seconds or until the request
   budget is spent;
3. **task completions**: each client then completes the tasks of the cases it
   started, in order — diagnostic, orientation, first meeting, contract: the
   four tasks its référent gets one after the other (each completion's response,
   the case, names the next task) — for ``--duration`` seconds or until done.

Nothing leaves 127.0.0.1; the run is bounded by time and by ``--max-requests``.
Prints ops/s, p50/p95 latency and errors (any non-2xx or connection error: must
be 0) per phase, and the CPU the server side used.

``--workers 1 --clients 1 --db sqlite`` is the set-up of the peer measurement
in ``shared/research/peer-spiff-arena-bench.md`` (one client, one keep-alive
connection, SQLite): the report then sets the median completion beside the
spiff-arena backend's (46.9 ms per ``PUT`` of a user task, a lighter form).
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
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

from bench.scale_common import ROOT, admin_url, create_database, database_url, drop_database, percentile  # noqa: E402

HOST = "127.0.0.1"
EVRY = "91228"
# Département référents of MDS Centre (covers Évry-Courcouronnes): they hold every task of the flow below.
CLIENT_ACCOUNTS = ("referent.mds-centre@example.org", "referent2.mds-centre@example.org")
PATHWAY = "entree-diagnostic"
BIRTH_DATE = "1986-09-14"
# spiff-arena backend, median HTTP completion of a user task, one client on SQLite (shared/research/);
# measured on another machine of this kind: --peer-completion-ms gives this machine's figure.
PEER_COMPLETION_MS = 46.9


def _answers() -> dict:
    freins = {key: {"valeur": "OUI" if key in ("contraintes_familiales", "logement", "difficulte_financiere")
                    else "NON"}
              for key in ("mobilite", "contraintes_familiales", "sante", "maitrise_langue", "logement",
                          "difficulte_financiere", "difficulte_administrative")}
    return {"situation_professionnelle": "au_foyer", "niveau_formation": "NV4", "rqth": False, "freins": freins,
            "besoins": ["trouver_un_emploi"], "synthese": "Diagnostic d'entrée.", "consentement_partage": True}


def form_for(bpmn_id: str, today: str) -> dict | None:
    """The answers for each task the Département référent gets on this flow (social orientation)."""
    return {
        "diagnostic": {**_answers(), "date_diagnostic": today},
        "valider-orientation": {"orientation": "social", "target_structure_type": "departement",
                                "date_decision": today, "motif": "Proposition confirmée."},
        "premier-rendez-vous": {"date_entretien": today, "modalite": "presentiel", "notes": "Premier entretien."},
        "signer-contrat": {"type_contrat": "CER", "date_signature": today, "heures_activite_hebdomadaires": 15,
                           "objectifs": [{"libelle": "Trouver un mode de garde", "theme": "contraintes_familiales"}]},
    }.get(bpmn_id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def seed_fresh_database(url: str) -> None:
    from engine import pathways
    from engine.clock import SystemClock
    from engine.context import EngineContext
    from engine.db import make_engine, make_session_factory, transaction
    from engine.demo import DEMO_PASSWORD, pathway_files, set_demo_passwords
    from engine.directory_io import seed_demo
    from engine.schema import upgrade_database

    engine = make_engine(url)
    upgrade_database(engine)
    factory = make_session_factory(engine)
    ctx = EngineContext(clock=SystemClock())
    with factory() as session, transaction(session):
        seed_demo(session)
        set_demo_passwords(session, DEMO_PASSWORD)
    for bpmn, dmns in pathway_files():
        with factory() as session, transaction(session):
            pathways.deploy(session, ctx, bpmn.read_bytes(), [d.read_bytes() for d in dmns], deployed_by="bench")
    engine.dispose()


class Server:
    """gunicorn on loopback, its log in a temporary file."""

    def __init__(self, url: str, workers: int, port: int | None = None, extra_env: dict | None = None):
        self.port = port or free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="spie-http-"))
        self.log_path = self.workdir / "gunicorn.log"
        env = {**os.environ, "DATABASE_URL": url, "SPIE_INSTANCE_PATH": str(self.workdir),
               "SPIE_SECRET_KEY": "bench-" + uuid.uuid4().hex, **(extra_env or {})}
        env.pop("SPIE_SIMULATION", None)
        gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
        self.command = [gunicorn, "-w", str(workers), "-b", f"{HOST}:{self.port}", "--timeout", "60",
                        "--graceful-timeout", "10", "api.app:create_app()"]
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_path.read_text(errors='replace')[-3000:]}")
            try:
                connection = http.client.HTTPConnection(HOST, self.port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not become ready")

    def worker_pids(self) -> list[int]:
        """The gunicorn worker processes (children of the master)."""
        try:
            out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.process.pid)], capture_output=True,
                                 text=True, check=False).stdout
        except OSError:
            return []
        return [int(p) for p in out.split()]

    def cpu_seconds(self) -> float:
        """CPU time of the master and its workers (user + system), from /proc."""
        total = 0.0
        for pid in [self.process.pid, *self.worker_pids()]:
            try:
                fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, IndexError, ValueError):
                continue
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.log.close()


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, op: str, seconds: float, error: str | None = None) -> None:
        with self.lock:
            if error is None:
                self.latencies.setdefault(op, []).append(seconds)
            else:
                self.errors.setdefault(op, []).append(error)

    def count(self, op: str) -> int:
        return len(self.latencies.get(op, [])) + len(self.errors.get(op, []))


class Budget:
    """At most ``limit`` requests in all, and each phase until its deadline."""

    def __init__(self, limit: int):
        self.remaining = limit
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
            return True


class Client:
    def __init__(self, port: int, number: int, stats: Stats, budget: Budget, today: str):
        self.port, self.number, self.stats, self.budget, self.today = port, number, stats, budget, today
        self.connection = http.client.HTTPConnection(HOST, port, timeout=60)
        self.token = None
        self.pending: list[int] = []  # next task id of each started case
        self.started = 0
        self.completed = 0

    def request(self, op: str, method: str, path: str, body: dict | None = None, expect=(200, 201)):
        if not self.budget.take():
            return None
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        started = time.perf_counter()
        try:
            self.connection.request(method, path, body=payload, headers=headers)
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.stats.add(op, time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
            self.connection.close()
            self.connection = http.client.HTTPConnection(HOST, self.port, timeout=60)
            return None
        elapsed = time.perf_counter() - started
        if response.status not in expect:
            self.stats.add(op, elapsed, f"HTTP {response.status}: {data[:300]!r}")
            return None
        self.stats.add(op, elapsed)
        return json.loads(data) if data else {}

    def login(self, email: str, password: str) -> None:
        answer = self.request("login", "POST", "/api/v1/auth/token", {"email": email, "password": password},
                              expect=(201,))
        if answer is None:
            raise RuntimeError(f"login of {email} failed: {self.stats.errors.get('login')}")
        self.token = answer["token"]

    def start_cases(self, deadline: float, limit: int) -> None:
        while time.monotonic() < deadline and self.started < limit:
            person = {"first_name": f"Charge{self.number}", "last_name": f"Http{uuid.uuid4().hex[:12]}",
                      "birth_date": BIRTH_DATE, "commune_insee": EVRY}
            case = self.request("case_start", "POST", "/api/v1/cases", {"person": person, "pathway_key": PATHWAY},
                                expect=(201,))
            if case is None:
                if self.budget.remaining <= 0:
                    return
                continue
            self.started += 1
            self.pending.extend(t["id"] for t in case["open_tasks"] if form_for(t["bpmn_id"], self.today))
            self._names = getattr(self, "_names", {})
            self._names.update({t["id"]: t["bpmn_id"] for t in case["open_tasks"]})

    def complete_tasks(self, deadline: float) -> None:
        while self.pending and time.monotonic() < deadline:
            task_id = self.pending.pop(0)
            data = form_for(self._names[task_id], self.today)
            case = self.request("task_complete", "POST", f"/api/v1/tasks/{task_id}/complete", {"data": data})
            if case is None:
                if self.budget.remaining <= 0:
                    return
                continue
            self.completed += 1
            for task in case["open_tasks"]:
                if task["id"] not in self._names and form_for(task["bpmn_id"], self.today):
                    self._names[task["id"]] = task["bpmn_id"]
                    self.pending.append(task["id"])


class Database:
    """The database of a run: an existing PostgreSQL one, or a fresh one (PostgreSQL or SQLite file) seeded here."""

    def __init__(self, kind: str, postgres_url: str | None = None, existing: str | None = None):
        """``kind``: "sqlite" or "postgresql"; ``existing``: a PostgreSQL database to use as it is."""
        self.fresh = existing is None
        self.admin = admin_url(postgres_url)
        if kind == "sqlite":
            self.folder = Path(tempfile.mkdtemp(prefix="spie-http-db-"))
            self.name = str(self.folder / "spie.sqlite3")
            self.url = f"sqlite:///{self.name}"
        else:
            self.folder = None
            self.name = existing or f"spie_http_{uuid.uuid4().hex[:8]}"
            self.url = database_url(self.admin, self.name)
            if self.fresh:
                create_database(self.admin, self.name)
        if self.fresh:
            seed_fresh_database(self.url)

    def drop(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        elif self.fresh:
            drop_database(self.admin, self.name)


def run_phase(clients: list[Client], target, *args) -> float:
    threads = [threading.Thread(target=target, args=(c, *args)) for c in clients]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def machine_cpu() -> tuple[float, float]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def report_line(name: str, stats: Stats, op: str, seconds: float, cpu: dict) -> dict:
    ok = stats.latencies.get(op, [])
    errors = stats.errors.get(op, [])
    ms = [s * 1000 for s in ok]
    figure = {"ops": len(ok), "errors": len(errors), "seconds": seconds, "ops_per_s": len(ok) / seconds if seconds
              else 0.0, "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "max_ms": max(ms) if ms else None,
              **cpu, "first_errors": errors[:5]}
    print(f"{name:<18} {figure['ops_per_s']:8.1f} ops/s  p50 {figure['p50_ms']:7.1f} ms  p95 {figure['p95_ms']:7.1f} ms"
          f"  max {figure['max_ms'] or 0:7.1f} ms  | {len(ok)} ok, {len(errors)} errors in {seconds:.1f} s"
          f"  | CPU cores: server {cpu['server_cores']:.2f}, machine {cpu['machine_cores']:.2f}", flush=True)
    for error in errors[:5]:
        print(f"    error: {error}")
    return figure


def measure(server: Server, body) -> tuple[float, dict]:
    cpu0, busy0, total0 = server.cpu_seconds(), *machine_cpu()
    started = time.perf_counter()
    body()
    seconds = time.perf_counter() - started
    cpu1, busy1, total1 = server.cpu_seconds(), *machine_cpu()
    cores = os.cpu_count() or 1
    return seconds, {"server_cores": (cpu1 - cpu0) / seconds,
                     "machine_cores": (busy1 - busy0) / max(1, total1 - total0) * cores}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--database", help="an existing PostgreSQL database (default: a fresh seeded one, "
                        "dropped after)")
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client connections")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per phase at most")
    parser.add_argument("--max-requests", type=int, default=4000, help="requests in all, at most")
    parser.add_argument("--cases-per-client", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="5 s phases, 400 requests at most")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--peer-completion-ms", type=float, default=PEER_COMPLETION_MS,
                        help="spiff-arena's median completion measured on this machine (default: the research "
                             "note's, from another machine)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.max_requests = min(args.duration, 5.0), min(args.max_requests, 400)

    if args.db == "sqlite" and args.database:
        parser.error("--database names a PostgreSQL database; --db sqlite always starts from a fresh file")
    database = Database(args.db, args.postgres_url, args.database)
    server = Server(database.url, args.workers)
    figures: dict = {"db": args.db, "database": database.name, "workers": args.workers, "clients": args.clients,
                     "phases": {}}
    try:
        server.wait_ready()
        from engine.demo import DEMO_PASSWORD

        stats, budget = Stats(), Budget(args.max_requests)
        today = time.strftime("%Y-%m-%d", time.gmtime())
        clients = [Client(server.port, n, stats, budget, today) for n in range(args.clients)]
        print(f"gunicorn -w {args.workers} on {HOST}:{server.port}, {args.db} database {database.name}"
              f"{' (fresh, Essonne demo)' if database.fresh else ''}; {args.clients} clients, phases of at most "
              f"{args.duration:.0f} s, at most {args.max_requests} requests", flush=True)
        seconds, cpu = measure(server, lambda: run_phase(
            clients, lambda c: c.login(CLIENT_ACCOUNTS[c.number % len(CLIENT_ACCOUNTS)], DEMO_PASSWORD)))
        figures["phases"]["login"] = report_line("logins (argon2)", stats, "login", seconds, cpu)
        seconds, cpu = measure(server, lambda: run_phase(
            clients, Client.start_cases, time.monotonic() + args.duration, args.cases_per_client))
        figures["phases"]["case_start"] = report_line("case starts", stats, "case_start", seconds, cpu)
        seconds, cpu = measure(server, lambda: run_phase(
            clients, Client.complete_tasks, time.monotonic() + args.duration))
        figures["phases"]["task_complete"] = report_line("task completions", stats, "task_complete", seconds, cpu)
        if args.clients == 1 and stats.latencies.get("task_complete"):
            median = figures["phases"]["task_complete"]["p50_ms"]
            peer = args.peer_completion_ms
            figures["peer_completion_ms"] = peer
            print(f"one client: median completion {median:.1f} ms, spiff-arena's backend {peer} ms "
                  f"(one client, SQLite, a 2-field form): {peer / median:.1f}x faster")
        errors = sum(len(v) for v in stats.errors.values())
        figures["errors"] = errors
        figures["requests"] = sum(stats.count(op) for op in ("login", "case_start", "task_complete"))
        print(f"requests {figures['requests']}, errors {errors}")
    finally:
        server.stop()
        database.drop()
        shutil.rmtree(server.workdir, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
    return 1 if figures.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
