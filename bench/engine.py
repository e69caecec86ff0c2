#!/usr/bin/env python
"""Engine benchmark: the SPIE engine against raw SpiffWorkflow on the same database.

    python bench/engine.py [--db sqlite|postgresql|both] [--cases N] [--processes P] [--quick]
                           [--throughput-cases M] [--postgres-url URL] [--workflow-cache N] [--json FILE]
                           [--profile DIR]

One run measures, on SQLite (a temporary file) and on PostgreSQL (a database it
creates and drops on ``--postgres-url`` / ``SPIE_BENCH_POSTGRES_URL``):

1. latency (median, p95) of the three engine commands, each in its own
   transaction exactly as the API and the timer worker run them:
   ``start_case``, ``complete_task`` (no claim first) and ``fire_due_timers``
   (the worker's claim query + ``fire_case_timers``) at the case's due time;
2. the same work done by raw SpiffWorkflow (the *floor*): same BPMN parsed once,
   same sandboxed script engine, and per command one JSON row loaded, the
   workflow run, one JSON row saved with one INSERT/UPDATE in a transaction
   (plain SQLAlchemy Core).  Two floors: *specless* (the instance without its
   spec, the spec objects kept in memory: the storage design the engine uses,
   hence the reference for the ratio) and *full* (``serialize_json`` /
   ``deserialize_json`` with the spec in every row, as a naive application
   does);
3. the saved state size at mid-pathway;
4. on PostgreSQL, throughput with P processes (case starts/s, task
   completions/s), engine and specless floor, with the targets of the issue,
   and the CPU each operation costs the workers and the PostgreSQL backends.

See bench/README.md for what each figure means and the latest figures.
"""
from __future__ import annotations

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
# This file is called engine.py: run as a script, its folder comes first on
# sys.path and would shadow the `engine` package.  Put the project root there.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import cProfile  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402

from sqlalchemy import Column, Integer, MetaData, Table, Text, event, insert, select, text, update  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.exc import OperationalError  # noqa: E402
from SpiffWorkflow.bpmn import BpmnWorkflow  # noqa: E402
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer  # noqa: E402
from SpiffWorkflow.spiff.parser import SpiffBpmnParser  # noqa: E402
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402

from engine import cases, pathways  # noqa: E402
from engine.clock import FIRING_EPSILON, SystemClock, workflow_time  # noqa: E402
from engine.context import EngineContext  # noqa: E402
from engine.db import make_engine, make_session_factory, transaction  # noqa: E402
from engine.errors import Conflict  # noqa: E402
from engine.gc_policy import tune_for_service  # noqa: E402
from engine.models import Case, HumanTask  # noqa: E402
from engine.schema import upgrade_database  # noqa: E402
from engine.state import StateSerializer  # noqa: E402
from engine.timers import fire_due_timers  # noqa: E402
from engine.workflow_cache import WorkflowCache  # noqa: E402

PATHWAY_DIR = BENCH_DIR / "pathways"
BPMN_FILE = PATHWAY_DIR / "bench_linear10.bpmn"
FORMS_DIR = PATHWAY_DIR / "forms"
PATHWAY_KEY = "bench_linear10"
USER_TASKS = 10
MID_PATHWAY = 5  # tasks completed when sizes are taken and the timer fires
TIMER_DELAY = timedelta(days=7)  # the boundary timers' "P7D"

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TARGETS = {"starts_per_s": 300, "completions_per_s": 500, "complete_ratio": 2.0}
OPERATIONS = ("start_case", "complete_task", "fire_timer")


def form_data(position: int) -> dict:
    return {"note": f"étape {position} faite", "approved": True, "count": position}


# --- The floor: raw SpiffWorkflow, one JSON row per case ----------------------------------------


class Floor:
    """What a plain application on SpiffWorkflow does per command, and nothing more.

    ``specless`` (reported as *floor*): the instance without the spec; the parsed
    spec objects stay in memory and are handed back on load, as the engine does.
    ``full`` (reported as *naive floor*): ``serialize_json``/``deserialize_json``,
    the spec in every row.
    No form validation, no task/timer projections, no timeline, no locking.
    """

    def __init__(self, db: Engine, variant: str, spec, subprocess_specs, script_engine):
        self.db, self.variant = db, variant
        self.spec, self.subprocess_specs, self.script_engine = spec, subprocess_specs, script_engine
        self.table = Table(f"bench_floor_{variant}", MetaData(), Column("id", Integer, primary_key=True),
                           Column("state", Text, nullable=False))
        self.table.create(db, checkfirst=True)
        # The floor stores state the way the engine does (engine.state: Spiff's serializer without
        # the spec), or, for the naive floor, with Spiff's plain serialize_json.
        self.full = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
        self.specless = StateSerializer()

    def dump(self, workflow: BpmnWorkflow) -> str:
        return self.full.serialize_json(workflow) if self.variant == "full" else self.specless.dump(workflow)

    def load(self, state: str) -> BpmnWorkflow:
        if self.variant == "full":
            workflow = self.full.deserialize_json(state)
        else:
            workflow = self.specless.load(state, self.spec, self.subprocess_specs)
        workflow.script_engine = self.script_engine
        return workflow

    def start(self) -> int:
        workflow = BpmnWorkflow(self.spec, self.subprocess_specs, script_engine=self.script_engine)
        workflow.do_engine_steps()
        with self.db.begin() as connection:
            return connection.execute(insert(self.table).values(state=self.dump(workflow))).inserted_primary_key[0]

    def complete(self, case_id: int, data: dict) -> None:
        with self.db.begin() as connection:
            workflow = self._select(connection, case_id)
            task = workflow.get_next_task(state=TaskState.READY, manual=True)
            task.set_data(**data)
            task.run()
            workflow.do_engine_steps()
            self._update(connection, case_id, workflow)

    def fire_timers(self, case_id: int, now: datetime) -> None:
        with self.db.begin() as connection:
            workflow = self._select(connection, case_id)
            with workflow_time(now):
                workflow.refresh_timers()
                workflow.do_engine_steps()
            self._update(connection, case_id, workflow)

    def state(self, case_id: int) -> str:
        with self.db.connect() as connection:
            return connection.scalar(select(self.table.c.state).where(self.table.c.id == case_id))

    def _select(self, connection, case_id: int) -> BpmnWorkflow:
        return self.load(connection.scalar(select(self.table.c.state).where(self.table.c.id == case_id)))

    def _update(self, connection, case_id: int, workflow: BpmnWorkflow) -> None:
        connection.execute(update(self.table).where(self.table.c.id == case_id).values(state=self.dump(workflow)))


def parse_floor_spec():
    """Raw SpiffWorkflow parsing of the benchmark BPMN (the spie: attributes are ignored)."""
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(BPMN_FILE.read_bytes(), filename=BPMN_FILE.name)
    return parser.get_spec(PATHWAY_KEY), parser.get_subprocess_specs(PATHWAY_KEY)


# --- The engine, exactly as the API and the timer worker call it -------------------------------


def engine_context(workflow_cache: int | None = None) -> EngineContext:
    """The production clock; ``workflow_cache``: capacity of the cache of live workflows (None: the engine's)."""
    ctx = EngineContext(clock=SystemClock(), forms_dir=FORMS_DIR)
    if workflow_cache is not None:
        ctx.workflows = WorkflowCache(capacity=workflow_cache)
    return ctx


def cache_counts(ctx: EngineContext) -> tuple[int, int]:
    return ctx.workflows.hits, ctx.workflows.misses


def deploy_pathway(session_factory, ctx: EngineContext) -> None:
    forms = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in FORMS_DIR.glob("*.json")}
    with session_factory() as session, transaction(session):
        pathways.deploy(session, ctx, BPMN_FILE.read_bytes(), forms=forms, deployed_by="bench")


def engine_start(session_factory, ctx: EngineContext) -> int:
    with session_factory() as session, transaction(session):
        return cases.start_case(session, ctx, PATHWAY_KEY, actor="bench@referent").id


def engine_complete(session_factory, ctx: EngineContext, task_id: int, data: dict) -> None:
    with session_factory() as session, transaction(session):
        cases.complete_task(session, ctx, task_id, data, user="bench@referent")


def engine_fire(session_factory, ctx: EngineContext, due: datetime) -> int:
    return fire_due_timers(session_factory, ctx, due + FIRING_EPSILON)


def open_task_ids(session_factory, case_ids: list[int]) -> dict[int, int]:
    """{case id: id of its open human task} (not timed: the client knows its task ids)."""
    with session_factory() as session:
        rows = session.execute(
            select(HumanTask.case_id, HumanTask.id).where(HumanTask.case_id.in_(case_ids),
                                                          HumanTask.state.in_(("open", "claimed")))
        ).all()
    found = dict(rows)
    if len(rows) != len(case_ids) or set(found) != set(case_ids):
        raise RuntimeError(f"expected one open task per case, found {len(rows)} for {len(case_ids)} cases")
    return found


# --- CPU accounting (to tell a quiet machine from a busy one) ----------------------------------


def machine_busy_seconds() -> float | None:
    """CPU seconds spent busy by the whole machine since boot (Linux /proc/stat), None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def database_cpu_seconds(db: Engine) -> dict[int, float] | None:
    """{backend pid: CPU seconds so far} of this database's PostgreSQL backends; None unless the server is local."""
    with db.connect() as connection:
        pids = connection.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).all()
    used = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return used


class GcMeter:
    """CPU seconds this process spent in the garbage collector since it was made."""

    def __init__(self) -> None:
        self.seconds, self._started = 0.0, 0.0
        gc.callbacks.append(self._on_collection)

    def _on_collection(self, phase: str, _info) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds += time.process_time() - self._started


class CpuMeter:
    """Cores used by this process and by the whole machine over a stretch of wall time."""

    def __init__(self) -> None:
        self.wall, self.own, self.machine = time.perf_counter(), time.process_time(), machine_busy_seconds()

    def read(self) -> dict:
        wall = time.perf_counter() - self.wall
        machine = machine_busy_seconds()
        busy = None if machine is None or self.machine is None else machine - self.machine
        return {
            "own_cores": round((time.process_time() - self.own) / wall, 2),
            "machine_cores": None if busy is None else round(busy / wall, 2),
        }


# --- Latency ----------------------------------------------------------------------------------


@dataclass
class Samples:
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, seconds: float) -> None:
        self.values.setdefault(key, []).append(seconds * 1000)


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
    }


def timed(samples: Samples | None, key: str, fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    if samples is not None:
        samples.add(key, time.perf_counter() - started)
    return result


def latency_round(session_factory, ctx, floors: dict[str, Floor], n_cases: int, samples: Samples | None,
                  sizes: dict | None = None) -> None:
    """n_cases through the whole pathway: start, 5 tasks, timer, 5 tasks; engine and floors interleaved.

    Work is interleaved (case by case, the order rotating) so that all sides see
    the same machine noise and the same database growth.
    """
    sides = ["engine", *floors]
    ids: dict[str, list[int]] = {side: [] for side in sides}

    def rotated(i: int) -> list[str]:
        k = i % len(sides)
        return sides[k:] + sides[:k]

    for i in range(n_cases):
        for side in rotated(i):
            if side == "engine":
                ids[side].append(timed(samples, "engine/start_case", engine_start, session_factory, ctx))
            else:
                ids[side].append(timed(samples, f"{side}/start_case", floors[side].start))

    def complete_position(position: int) -> None:
        tasks = open_task_ids(session_factory, ids["engine"])
        data = form_data(position)
        for i in range(n_cases):
            for side in rotated(i + position):
                if side == "engine":
                    timed(samples, "engine/complete_task", engine_complete, session_factory, ctx,
                          tasks[ids["engine"][i]], data)
                else:
                    timed(samples, f"{side}/complete_task", floors[side].complete, ids[side][i], data)

    for position in range(1, MID_PATHWAY + 1):
        complete_position(position)

    with session_factory() as session:
        due = dict(session.execute(select(Case.id, Case.next_timer_at).where(Case.id.in_(ids["engine"]))).all())
        if sizes is not None:
            states = session.scalars(select(Case.state).where(Case.id.in_(ids["engine"]))).all()
            sizes["engine"] = int(statistics.median(len(s.encode()) for s in states))
    if sizes is not None:
        for side, floor in floors.items():
            sizes[side] = int(statistics.median(len(floor.state(c).encode()) for c in ids[side]))
    floor_now = datetime.now(timezone.utc) + TIMER_DELAY + timedelta(hours=1)
    for i in range(n_cases):
        for side in rotated(i):
            if side == "engine":
                fired = timed(samples, "engine/fire_timer", engine_fire, session_factory, ctx, due[ids[side][i]])
                if fired != 1:
                    raise RuntimeError(f"fire_due_timers processed {fired} cases, expected 1")
            else:
                timed(samples, f"{side}/fire_timer", floors[side].fire_timers, ids[side][i], floor_now)

    for position in range(MID_PATHWAY + 1, USER_TASKS + 1):
        complete_position(position)

    with session_factory() as session:
        rows = session.execute(select(Case.status, Case.ended_at).where(Case.id.in_(ids["engine"]))).all()
    if sum(ended is not None and status not in ("active", "incident") for status, ended in rows) != n_cases:
        raise RuntimeError(f"engine cases did not all reach the end: {sorted({status for status, _ in rows})}")
    for side, floor in floors.items():
        workflow = floor.load(floor.state(ids[side][-1]))
        late = [t for t in workflow.get_tasks() if t.task_spec.bpmn_id == f"step{MID_PATHWAY + 1:02d}_late"]
        if not workflow.completed or not late or not late[0].has_state(TaskState.COMPLETED):
            raise RuntimeError(f"floor {side}: the case did not complete or its timer did not fire")


def count_statements(db: Engine, session_factory, ctx) -> dict[str, float]:
    """SQL statements per engine command, on one extra case (not timed)."""
    counter = {"n": 0}

    def on_execute(*_args):
        counter["n"] += 1

    def measure(fn, *args):
        counter["n"] = 0
        result = fn(*args)
        return result, counter["n"]

    event.listen(db, "before_cursor_execute", on_execute)
    try:
        case_id, start_n = measure(engine_start, session_factory, ctx)
        complete_n = []
        for position in range(1, USER_TASKS + 1):
            if position == MID_PATHWAY + 1:
                with session_factory() as session:
                    due = session.get(Case, case_id).next_timer_at
                _, timer_n = measure(engine_fire, session_factory, ctx, due)
            task_id = open_task_ids(session_factory, [case_id])[case_id]
            complete_n.append(measure(engine_complete, session_factory, ctx, task_id, form_data(position))[1])
    finally:
        event.remove(db, "before_cursor_execute", on_execute)
    return {"start_case": start_n, "complete_task": statistics.fmean(complete_n), "fire_timer": timer_n}


def profile_completions(session_factory, ctx, n_cases: int, path: Path) -> None:
    """cProfile of the engine's complete_task over n_cases whole cases (after the timed runs)."""
    case_ids = [engine_start(session_factory, ctx) for _ in range(n_cases)]
    profiler = cProfile.Profile()
    for position in range(1, USER_TASKS + 1):
        tasks = open_task_ids(session_factory, case_ids)
        for case_id in case_ids:
            profiler.runcall(engine_complete, session_factory, ctx, tasks[case_id], form_data(position))
    profiler.dump_stats(path)


def run_latency(url: str, n_cases: int, warmup: int, profile: Path | None = None,
                workflow_cache: int | None = None) -> dict:
    db = make_engine(url)
    try:
        upgrade_database(db)
        session_factory = make_session_factory(db)
        ctx = engine_context(workflow_cache)
        deploy_pathway(session_factory, ctx)
        spec, subprocess_specs = parse_floor_spec()
        floors = {side: Floor(db, variant, spec, subprocess_specs, ctx.script_engine)
                  for side, variant in (("floor", "specless"), ("full", "full"))}
        # Whole cases, not timed: fill the spec cache, the connection pool, SQLAlchemy's statement cache.
        latency_round(session_factory, ctx, floors, warmup, None)
        tune_for_service()  # as `spie serve`, `spie worker` and gunicorn's workers do once ready
        samples, sizes = Samples(), {}
        started, meter, cache_before = time.perf_counter(), CpuMeter(), cache_counts(ctx)
        latency_round(session_factory, ctx, floors, n_cases, samples, sizes)
        elapsed, cpu = time.perf_counter() - started, meter.read()
        hits, misses = (now - before for now, before in zip(cache_counts(ctx), cache_before))
        statements = count_statements(db, session_factory, ctx)
        if profile is not None:
            profile_completions(session_factory, ctx, max(5, n_cases // 2), profile)
    finally:
        db.dispose()
    result = {"seconds": round(elapsed, 1), "cpu": cpu, "operations": {}, "state_bytes_mid_pathway": sizes,
              "engine_sql_statements": statements,
              "workflow_cache": {"capacity": ctx.workflows.capacity, "hits": hits, "misses": misses}}
    for op in OPERATIONS:
        entry = {side: summary(samples.values[f"{side}/{op}"]) for side in ("engine", "floor", "full")}
        entry["ratio"] = round(entry["engine"]["p50_ms"] / entry["floor"]["p50_ms"], 2)
        entry["ratio_vs_full"] = round(entry["engine"]["p50_ms"] / entry["full"]["p50_ms"], 2)
        result["operations"][op] = entry
    return result


# --- Throughput (PostgreSQL, P processes) -----------------------------------------------------


def throughput_child(url: str, index: int, n_cases: int, barrier, results, workflow_cache: int | None) -> None:
    """One worker process: its own engine, session factory and context; its own cases."""
    db = make_engine(url)
    session_factory = make_session_factory(db)
    ctx = engine_context(workflow_cache)
    spec, subprocess_specs = parse_floor_spec()
    floor = Floor(db, "specless", spec, subprocess_specs, ctx.script_engine)
    report = {"index": index, "phases": {}}
    collector = GcMeter()

    def phase(name: str, work) -> None:
        errors = {"conflict": 0, "error": 0, "first_error": None}
        barrier.wait()
        backends = database_cpu_seconds(db)
        started, own, machine = time.perf_counter(), time.process_time(), machine_busy_seconds()
        cache, collecting = cache_counts(ctx), collector.seconds
        done = work(errors)
        ended, own_cpu, machine_busy = time.perf_counter(), time.process_time() - own, machine_busy_seconds()
        gc_cpu = collector.seconds - collecting
        barrier.wait()  # every worker done, none gone: its backend's CPU is still there to read
        report["phases"][name] = {
            "start": started, "end": ended, "done": done, **errors,
            "own_cpu": own_cpu, "gc_cpu": gc_cpu, "machine_busy": (machine_busy, machine),
            "cache": [now - before for now, before in zip(cache_counts(ctx), cache)],
            "backends_cpu": (backends, database_cpu_seconds(db)),  # all backends of the database, not only ours
        }

    def attempt(errors, fn, *args) -> tuple[bool, object]:
        try:
            return True, fn(*args)
        except Conflict:
            errors["conflict"] += 1
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors["error"] += 1
            errors["first_error"] = errors["first_error"] or f"{type(exc).__name__}: {exc}"
        return False, None

    engine_ids: list[int] = []
    floor_ids: list[int] = []

    def engine_starts(errors) -> int:
        for _ in range(n_cases):
            ok, case_id = attempt(errors, engine_start, session_factory, ctx)
            if ok:
                engine_ids.append(case_id)
        return len(engine_ids)

    def engine_completes(errors) -> int:
        done = 0
        for position in range(1, USER_TASKS + 1):
            tasks = open_task_ids(session_factory, engine_ids)  # one query per round, inside the wall time
            for case_id in engine_ids:
                ok, _ = attempt(errors, engine_complete, session_factory, ctx, tasks[case_id], form_data(position))
                done += ok
        return done

    def floor_starts(errors) -> int:
        for _ in range(n_cases):
            ok, case_id = attempt(errors, floor.start)
            if ok:
                floor_ids.append(case_id)
        return len(floor_ids)

    def floor_completes(errors) -> int:
        done = 0
        for position in range(1, USER_TASKS + 1):
            data = form_data(position)
            for case_id in floor_ids:
                ok, _ = attempt(errors, floor.complete, case_id, data)
                done += ok
        return done

    try:
        # Warm up this process (spec cache, pool, imports) on two cases.
        for _ in range(2):
            case_id = engine_start(session_factory, ctx)
            engine_complete(session_factory, ctx, open_task_ids(session_factory, [case_id])[case_id], form_data(1))
            floor.complete(floor.start(), form_data(1))
        tune_for_service()
        phase("engine_start", engine_starts)
        phase("engine_complete", engine_completes)
        phase("floor_start", floor_starts)
        phase("floor_complete", floor_completes)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the run
        report["crash"] = f"{type(exc).__name__}: {exc}"
        barrier.abort()
    finally:
        db.dispose()
        results.put(report)


def run_throughput(url: str, processes: int, n_cases: int, workflow_cache: int | None = None) -> dict:
    # Make sure the table exists before the children race to create it.
    db = make_engine(url)
    spec, subprocess_specs = parse_floor_spec()
    Floor(db, "specless", spec, subprocess_specs, None)
    db.dispose()
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(processes), spawn.Queue()
    children = [spawn.Process(target=throughput_child, args=(url, i, n_cases, barrier, results, workflow_cache))
                for i in range(processes)]
    for child in children:
        child.start()
    reports = [results.get(timeout=900) for _ in children]
    for child in children:
        child.join(60)
    crashes = [r["crash"] for r in reports if "crash" in r]
    if crashes:
        raise RuntimeError(f"throughput worker failed: {crashes[0]}")
    out = {"processes": processes, "cases_per_process": n_cases}
    for name in ("engine_start", "engine_complete", "floor_start", "floor_complete"):
        parts = [r["phases"][name] for r in reports]
        wall = max(p["end"] for p in parts) - min(p["start"] for p in parts)
        done = sum(p["done"] for p in parts)
        first = parts[0]["machine_busy"]  # measured by worker 0 over its own stretch of the phase
        first_wall = parts[0]["end"] - parts[0]["start"]
        # PostgreSQL's share: its backends' CPU from the first worker's start to the end of the phase.
        before, after = min(parts, key=lambda p: p["start"])["backends_cpu"][0], parts[0]["backends_cpu"][1]
        workers_cpu = sum(p["own_cpu"] for p in parts)
        postgres_cpu = None if None in (before, after) else sum(t - before.get(pid, 0) for pid, t in after.items())
        out[name] = {
            "ops": done,
            "seconds": round(wall, 3),
            "per_s": round(done / wall, 1),
            "conflicts": sum(p["conflict"] for p in parts),
            "errors": sum(p["error"] for p in parts),
            "first_error": next((p["first_error"] for p in parts if p["first_error"]), None),
            "workers_cores": round(workers_cpu / wall, 2),
            "machine_cores": None if None in first else round((first[0] - first[1]) / first_wall, 2),
            "cpu_ms_per_op": {"workers": round(workers_cpu / done * 1000, 2),
                              "garbage_collector": round(sum(p["gc_cpu"] for p in parts) / done * 1000, 2),
                              "postgresql": None if postgres_cpu is None else round(postgres_cpu / done * 1000, 2)},
            "workflow_cache": {"hits": sum(p["cache"][0] for p in parts), "misses": sum(p["cache"][1] for p in parts)},
        }
    return out


# --- Databases --------------------------------------------------------------------------------


@contextmanager
def sqlite_database():
    directory = tempfile.mkdtemp(prefix="spie-bench-")
    try:
        yield f"sqlite:///{directory}/bench.sqlite3"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def postgres_database(admin_url: str):
    name = f"spie_bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        raise SystemExit(f"bench/engine.py: cannot create a database on {admin_url} ({exc.orig});"
                         " start PostgreSQL, pass --postgres-url, or use --db sqlite") from exc
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- Report -----------------------------------------------------------------------------------


def cpu_per_op(phase: dict) -> str:
    """Workers' and PostgreSQL's CPU per operation, and the rate that CPU allows on the machine's cores."""
    cpu = phase["cpu_ms_per_op"]
    workers = f"{cpu['workers']:.2f} workers (gc {cpu['garbage_collector']:.2f})"
    if cpu["postgresql"] is None:
        return f"{workers}, PostgreSQL's share not readable"
    total = cpu["workers"] + cpu["postgresql"]
    return (f"{total:.2f} ms = {workers} + {cpu['postgresql']:.2f} PostgreSQL"
            f" -> {os.cpu_count() * 1000 / total:.0f}/s on {os.cpu_count()} idle cores")


def print_report(figures: dict) -> None:
    print()
    print("Latency per command, each in its own transaction. floor = raw SpiffWorkflow storing the instance")
    print("without its spec (the engine's storage design); ratio = engine p50 / floor p50.")
    for db_name, result in figures["latency"].items():
        for op, entry in result["operations"].items():
            e, f = entry["engine"], entry["floor"]
            print(f"{db_name:<11} {op:<14} engine p50 {e['p50_ms']:5.2f} ms p95 {e['p95_ms']:5.2f} ms"
                  f" | floor p50 {f['p50_ms']:5.2f} ms p95 {f['p95_ms']:5.2f} ms | ratio {entry['ratio']:.1f}x"
                  f"  (n={e['n']})")
    for db_name, result in figures["latency"].items():
        cpu = result["cpu"]
        print(f"{db_name:<11} during the timed run: benchmark process {cpu['own_cores']} cores,"
              f" whole machine {cpu['machine_cores']} cores busy (of {figures['machine']['cpus']})")
    print()
    print("Naive floor: raw SpiffWorkflow with serialize_json/deserialize_json, the spec in every row.")
    for db_name, result in figures["latency"].items():
        for op, entry in result["operations"].items():
            u = entry["full"]
            print(f"{db_name:<11} {op:<14} naive floor p50 {u['p50_ms']:5.2f} ms p95 {u['p95_ms']:5.2f} ms"
                  f" | engine / naive floor {entry['ratio_vs_full']:.1f}x")
    print()
    print(f"Saved state at mid-pathway ({MID_PATHWAY} of {USER_TASKS} tasks done), bytes (median over cases):")
    for db_name, result in figures["latency"].items():
        s = result["state_bytes_mid_pathway"]
        print(f"{db_name:<11} engine {s['engine']} | floor without spec {s['floor']}"
              f" | naive floor with spec {s['full']}")
    print()
    print("SQL statements per engine command (floor: 1 per start, 2 per completion or timer):")
    for db_name, result in figures["latency"].items():
        n = result["engine_sql_statements"]
        print(f"{db_name:<11} start_case {n['start_case']} | complete_task {n['complete_task']:.1f}"
              f" | fire_timer {n['fire_timer']}")
    print()
    print("Engine's cache of live workflows (engine.workflow_cache) during the timed latency run:")
    for db_name, result in figures["latency"].items():
        c = result["workflow_cache"]
        print(f"{db_name:<11} capacity {c['capacity']} | {c['hits']} commands took the workflow kept by the last save,"
              f" {c['misses']} read it from case.state")
    throughput = figures.get("throughput")
    if throughput:
        print()
        print(f"Throughput on PostgreSQL, {throughput['processes']} processes x {throughput['cases_per_process']}"
              f" cases (wall clock across processes; floor = raw SpiffWorkflow without spec):")
        for kind, target, label in (("start", TARGETS["starts_per_s"], "case starts/s"),
                                    ("complete", TARGETS["completions_per_s"], "task completions/s")):
            e, f = throughput[f"engine_{kind}"], throughput[f"floor_{kind}"]
            print(f"postgresql  {label:<19} engine {e['per_s']:6.1f}/s (target >= {target}/s with 2 processes)"
                  f" | floor {f['per_s']:6.1f}/s | {e['ops']} ops, conflicts {e['conflicts']},"
                  f" errors {e['errors']}")
            print(f"{'':<11} {'':<19} CPU (cores busy): engine workers {e['workers_cores']}, machine"
                  f" {e['machine_cores']} | floor workers {f['workers_cores']}, machine {f['machine_cores']}")
            print(f"{'':<11} {'':<19} CPU per op: engine {cpu_per_op(e)} | floor {cpu_per_op(f)}")
            if kind == "complete":
                c = e["workflow_cache"]
                print(f"{'':<11} {'':<19} workflow cache: {c['hits']} hits, {c['misses']} misses"
                      f" (each process keeps its own cases; --workflow-cache 0 measures the cold path)")
            for side in (e, f):
                if side["first_error"]:
                    print(f"            first error: {side['first_error']}")
    complete = [r["operations"]["complete_task"]["ratio"] for r in figures["latency"].values()]
    print()
    print(f"Target: engine <= {TARGETS['complete_ratio']:.0f}x the floor per task completion"
          f" (measured: {', '.join(f'{r:.1f}x' for r in complete)}). Peer spiff-arena backend: 46.9 ms per"
          f" completion over HTTP.")
    loads = ", ".join(f"{db} {load:.2f}" for db, load in figures["machine"]["loadavg_1min_before"].items())
    print(f"Machine: {figures['machine']['cpus']} CPUs; 1-minute load average before each database: {loads}"
          f" (other work on the cores makes the figures noisy).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--cases", type=int, help="cases per latency run (each: 1 start, 10 completions,"
                        " 1 timer); default 100, 10 with --quick")
    parser.add_argument("--processes", type=int, default=2, help="throughput processes (default 2)")
    parser.add_argument("--throughput-cases", type=int,
                        help="cases per throughput process; default 100, 20 with --quick")
    parser.add_argument("--quick", action="store_true", help="small smoke run (about 10 s)")
    parser.add_argument("--postgres-url", default=os.environ.get("SPIE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
                        help="admin URL of a server where the benchmark creates and drops its database")
    parser.add_argument("--workflow-cache", type=int, metavar="N",
                        help="capacity of each engine context's cache of live workflows (default: the engine's;"
                        " 0 turns it off, every command then parses case.state)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="after the timed runs, cProfile the engine's complete_task into"
                        " DIR/<database>-complete_task.pstats (read it with python -m pstats)")
    args = parser.parse_args(argv)
    n_cases = args.cases or (10 if args.quick else 100)
    warmup = 2 if args.quick else 5
    throughput_cases = args.throughput_cases or (20 if args.quick else 100)
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]

    figures: dict = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "cases": n_cases,
        "targets": TARGETS,
        "latency": {},
    }
    print(f"bench/engine.py: {n_cases} cases per database (x1 start, x{USER_TASKS} completions, x1 timer),"
          f" databases: {', '.join(databases)}", flush=True)
    figures["machine"]["loadavg_1min_before"] = {}
    for db_name in databases:
        figures["machine"]["loadavg_1min_before"][db_name] = round(os.getloadavg()[0], 2)
        started = time.perf_counter()
        profile = None
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            profile = args.profile / f"{db_name}-complete_task.pstats"
        if db_name == "sqlite":
            with sqlite_database() as url:
                figures["latency"][db_name] = run_latency(url, n_cases, warmup, profile, args.workflow_cache)
        else:
            with postgres_database(args.postgres_url) as url:
                figures["latency"][db_name] = run_latency(url, n_cases, warmup, profile, args.workflow_cache)
                print(f"  postgresql throughput with {args.processes} processes...", flush=True)
                figures["throughput"] = run_throughput(url, args.processes, throughput_cases, args.workflow_cache)
        print(f"  {db_name}: done in {time.perf_counter() - started:.0f} s", flush=True)
    print_report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
