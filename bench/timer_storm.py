#!/usr/bin/env python
"""Timer storm: N timers due at the same instant, M ``spie worker`` processes, time to drain, exactly once.

    python bench/timer_storm.py [--timers 100000] [--workers 2] [--postgres-url URL] [--database NAME]
                                [--keep] [--check] [--json FILE]

1. A fresh database (``spie_storm_<random>``, dropped at the end unless
   ``--keep``): migrated, Essonne seeded, pathways deployed, templates walked
   (as bench/generate.py does).
2. N cases loaded with COPY from one real template, ``brsa-oriente-social`` just
   started (first meeting open, one waiting timer: the P1M boundary timer that
   asks the structure's supervisors), every case shifted so that its timer came
   due one minute ago: ``timer`` rows, ``case.next_timer_at`` and the due date in
   each saved state all say so.
3. M ``spie worker`` processes (``SELECT ... FOR UPDATE SKIP LOCKED`` batches of
   50) are started together; the storm is drained when no case of the storm has
   a due ``next_timer_at`` left.
4. Exactly-once verification over the storm's cases: every timer row is
   ``fired`` with ``fired_count`` 1, one ``timer_fired`` event names each timer
   row, every case got exactly one escalation task and one open first-meeting
   task; ``--check`` also runs ``engine.consistency.check_database`` on the
   whole database.

Prints the load time, the drain time (from the workers' start, and from the
first to the last firing), timers/s, the share of each worker and their CPU.
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
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

from sqlalchemy import text  # noqa: E402

from bench.scale_common import ROOT, US, admin_url, create_database, database_url, drop_database, to_epoch_us  # noqa: E402
from engine.db import make_engine  # noqa: E402

STORM_TEMPLATE = "brsa-review#0"  # brsa-oriente-social just started: one waiting timer (P1M boundary)
ESCALATION_TASK = "relancer-entree-accompagnement"
OPEN_TASK = "premier-rendez-vous"
LATE_BY_US = 60 * US  # every timer came due one minute before the workers start


def spawn_worker(url: str, workdir: Path, number: int, interval: float = 0.2) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, "DATABASE_URL": url, "SPIE_INSTANCE_PATH": str(workdir)}
    env.pop("SPIE_SIMULATION", None)  # real time
    # `spie worker`, run as the console script does, from the project root (as tests/test_workers.py does).
    command = [sys.executable, "-c", "from api.cli import main; main()", "worker", "--interval", str(interval)]
    log_path = workdir / f"worker-{number}.log"
    log = open(log_path, "ab")  # noqa: SIM115 - the process keeps it
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True), log_path


def stop_processes(processes) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def process_cpu(pid: int) -> float:
    try:
        fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def load_storm(url: str, timers: int, *, spread_us: int = 0, log=print) -> dict:
    """Seed, walk the templates, COPY ``timers`` cases of the storm template; their timers due at once (or spread
    over the next ``spread_us``)."""
    from bench import generate

    templates, timings = generate.prepare(url)
    [template] = [t for t in templates if t.name == STORM_TEMPLATE]
    if len(template.timers) != 1 or template.next_timer_off is None:
        raise SystemExit(f"template {STORM_TEMPLATE} should wait on exactly one timer")
    weights = generate.template_weights(templates)
    directory = generate.expand_directory(url, 1, timers, generate.involvement(templates, weights), log=log)
    compiled = [generate.compile_template(template, 1.0)]
    generate._finish_compile(compiled)
    engine = make_engine(url)
    with engine.connect() as connection:
        first_case = connection.scalar(text('SELECT coalesce(max(id), 0) + 1 FROM "case"'))
    engine.dispose()
    now_us = to_epoch_us(datetime.now(timezone.utc))

    def age(rng, c):
        # next_timer_at = now - LATE_BY (all due at once), or spread over the coming ``spread_us``.
        offset = int(rng.random() * spread_us) // US * US if spread_us else 0
        return c.template.next_timer_off + LATE_BY_US - offset

    started = time.perf_counter()
    counters, copy_s = generate.load_cases(url, compiled, directory, timers, chunk=5000, seed=7, now_us=now_us,
                                           writers=1, age_us=age, log=lambda *_: None)
    engine = make_engine(url)
    with engine.begin() as connection:
        for table in generate.BULK_TABLES:
            connection.execute(text(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                                    f"(SELECT max(id) FROM \"{table}\"))"))
        connection.execute(text("ANALYZE"))
    engine.dispose()
    return {"first_case": first_case, "rows": dict(counters.rows), "copy_s": copy_s,
            "load_s": time.perf_counter() - started, "setup_s": timings, "due_at_us": now_us - LATE_BY_US}


def wait_drained(url: str, first_case: int, expected: int, timeout: float, log=print) -> dict:
    """Poll until no storm case has a timer due; print progress every few seconds (survives a lost connection)."""
    engine = make_engine(url)
    started, last = time.monotonic(), 0.0
    try:
        while True:
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                raise SystemExit(f"storm not drained after {timeout:.0f} s")
            try:
                with engine.connect() as connection:
                    remaining = connection.execute(text(
                        'SELECT count(*) FROM "case" WHERE id >= :f AND next_timer_at <= now()'),
                        {"f": first_case}).scalar()
            except Exception as exc:  # noqa: BLE001 - the server restarting: the workers retry, so do we
                log(f"  {elapsed:6.1f} s: cannot count ({type(exc).__name__}); retrying")
                time.sleep(2)
                continue
            if remaining == 0:
                return {"drain_s": elapsed}
            if elapsed - last >= 10:
                log(f"  {elapsed:6.1f} s: {expected - remaining:>7,} of {expected:,} cases fired "
                    f"({(expected - remaining) / elapsed:,.0f}/s)", flush=True)
                last = elapsed
            time.sleep(0.25)
    finally:
        engine.dispose()


def verify_exactly_once(url: str, first_case: int, expected: int) -> dict:
    """Every storm timer fired once, one event per timer, one escalation task per case."""
    engine = make_engine(url)
    with engine.connect() as connection:
        q = lambda sql: connection.execute(text(sql), {"f": first_case}).scalar()  # noqa: E731
        figures = {
            "cases": q('SELECT count(*) FROM "case" WHERE id >= :f'),
            "timers": q("SELECT count(*) FROM timer WHERE case_id >= :f"),
            "timers_fired_once": q("SELECT count(*) FROM timer WHERE case_id >= :f AND state = 'fired' "
                                   "AND fired_count = 1"),
            "timer_fired_events": q("SELECT count(*) FROM case_event WHERE case_id >= :f AND kind = 'timer_fired'"),
            "timers_with_one_event": q(
                "SELECT count(*) FROM (SELECT t.id FROM timer t JOIN case_event e ON e.case_id = t.case_id "
                "AND e.kind = 'timer_fired' AND (e.summary->>'timer_id')::bigint = t.id WHERE t.case_id >= :f "
                "GROUP BY t.id HAVING count(*) = 1) s"),
            "escalation_tasks": q(f"SELECT count(*) FROM human_task WHERE case_id >= :f AND bpmn_id = "
                                  f"'{ESCALATION_TASK}'"),
            "cases_with_one_escalation": q(
                f"SELECT count(*) FROM (SELECT case_id FROM human_task WHERE case_id >= :f AND bpmn_id = "
                f"'{ESCALATION_TASK}' GROUP BY case_id HAVING count(*) = 1) s"),
            "open_first_meetings": q(f"SELECT count(*) FROM human_task WHERE case_id >= :f AND bpmn_id = "
                                     f"'{OPEN_TASK}' AND state IN ('open', 'claimed')"),
            "cases_in_incident": q("SELECT count(*) FROM \"case\" WHERE id >= :f AND status <> 'active'"),
            "first_fired": connection.execute(text(
                "SELECT min(at), max(at) FROM case_event WHERE case_id >= :f AND kind = 'timer_fired'"),
                {"f": first_case}).one(),
        }
    engine.dispose()
    first, last = figures.pop("first_fired")
    figures["firing_span_s"] = (last - first).total_seconds() if first and last else None
    checks = ("cases", "timers", "timers_fired_once", "timer_fired_events", "timers_with_one_event",
              "escalation_tasks", "cases_with_one_escalation", "open_first_meetings")
    figures["exactly_once"] = all(figures[k] == expected for k in checks) and figures["cases_in_incident"] == 0
    return figures


def worker_shares(log_paths: list[Path]) -> list[int]:
    shares = []
    for path in log_paths:
        found = re.findall(r"fired timers of (\d+) case", path.read_text(errors="replace"))
        shares.append(sum(int(n) for n in found))
    return shares


def run_check(url: str) -> tuple[bool, str, float]:
    from engine.consistency import check_database
    from engine.context import EngineContext
    from engine.db import make_session_factory

    engine = make_engine(url)
    started = time.perf_counter()
    with make_session_factory(engine)() as session:
        report = check_database(session, EngineContext())
    engine.dispose()
    return report.ok, "\n".join(report.lines()[:20]), time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--database", default=None, help="name of the database to create (default: random)")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--check", action="store_true", help="also run engine.consistency.check_database")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)

    admin = admin_url(args.postgres_url)
    name = args.database or f"spie_storm_{uuid.uuid4().hex[:8]}"
    url = database_url(admin, name)
    workdir = Path(tempfile.mkdtemp(prefix="spie-storm-"))
    create_database(admin, name)
    workers, figures = [], {"timers": args.timers, "workers": args.workers, "database": name}
    try:
        print(f"database {name}: loading {args.timers:,} cases whose timer is due at the same instant", flush=True)
        loaded = load_storm(url, args.timers)
        figures["load"] = {k: v for k, v in loaded.items() if k != "first_case"}
        rows = sum(loaded["rows"].values())
        print(f"loaded {args.timers:,} cases ({rows:,} rows) with COPY in {loaded['copy_s']:.1f} s "
              f"({rows / loaded['copy_s']:,.0f} rows/s); set-up {sum(loaded['setup_s'].values()):.1f} s", flush=True)

        started = time.perf_counter()
        spawned = [spawn_worker(url, workdir, n) for n in range(args.workers)]
        workers = [p for p, _ in spawned]
        print(f"{args.workers} `spie worker` processes started", flush=True)
        drained = wait_drained(url, loaded["first_case"], args.timers, args.timeout)
        drain_s = time.perf_counter() - started
        cpu = [process_cpu(p.pid) for p in workers]
        time.sleep(1.0)  # a double firing, if there were one, would land now
        stop_processes(workers)
        shares = worker_shares([path for _, path in spawned])
        verified = verify_exactly_once(url, loaded["first_case"], args.timers)
        figures.update({"drain_s": drain_s, "timers_per_s": args.timers / drain_s, "worker_cases": shares,
                        "worker_cpu_s": cpu, "verification": verified, **drained})
        span = verified["firing_span_s"]
        print(f"drained {args.timers:,} timers in {drain_s:.1f} s from the workers' start "
              f"({args.timers / drain_s:,.0f} timers/s); first to last firing {span:.1f} s "
              f"({args.timers / span:,.0f} timers/s)")
        print(f"per worker: cases fired {shares}, CPU {', '.join(f'{c:.0f} s' for c in cpu)} "
              f"({sum(cpu) / drain_s:.2f} cores)")
        print("exactly once: " + ", ".join(f"{k} {v:,}" for k, v in verified.items()
                                           if isinstance(v, int) and not isinstance(v, bool))
              + f" -> {'OK' if verified['exactly_once'] else 'FAILED'}")
        if args.check:
            ok, lines, seconds = run_check(url)
            figures["consistency"] = {"ok": ok, "seconds": seconds}
            print(f"consistency check ({seconds:.1f} s): {lines}")
            if not ok:
                return 1
        return 0 if verified["exactly_once"] else 1
    finally:
        stop_processes(workers)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
        if not args.keep:
            drop_database(admin, name)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
