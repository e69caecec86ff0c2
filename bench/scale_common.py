"""Shared plumbing of the scale benchmarks (generate, queries, http_load, timer_storm, faults).

Not a benchmark itself: database creation, the admin URL, percentiles, fast
timestamp formatting and COPY text escaping.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"


def fix_sys_path() -> None:
    """bench/engine.py would shadow the ``engine`` package when a script of bench/ runs: put the root first."""
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
    sys.path.insert(0, str(ROOT))


fix_sys_path()

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from engine.db import make_engine  # noqa: E402

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# Password of every synthetic account the generator creates (the Essonne demo accounts keep DEMO_PASSWORD).
BENCH_PASSWORD = "bench-scale-2026"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def admin_url(url: str | None = None) -> str:
    return url or os.environ.get("SPIE_BENCH_POSTGRES_URL") or os.environ.get("SPIE_TEST_POSTGRES_URL") \
        or DEFAULT_POSTGRES_URL


def database_url(admin: str, name: str) -> str:
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The URL psycopg itself takes (no ``+psycopg`` driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def database_exists(admin: str, name: str) -> bool:
    engine = make_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            return connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}) is not None
    finally:
        engine.dispose()


def create_database(admin: str, name: str, *, drop_first: bool = False) -> None:
    engine = make_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            if drop_first:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def drop_database(admin: str, name: str) -> None:
    engine = make_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def database_size(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return connection.scalar(text("SELECT pg_database_size(current_database())"))
    finally:
        engine.dispose()


def table_sizes(url: str, tables: list[str]) -> dict[str, tuple[int, int]]:
    """{table: (rows estimate, total bytes with indexes and TOAST)}."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            out = {}
            for table in tables:
                rows, size = connection.execute(text(
                    "SELECT c.reltuples::bigint, pg_total_relation_size(c.oid) FROM pg_class c "
                    "WHERE c.relname = :t AND c.relkind = 'r'"), {"t": table}).one()
                out[table] = (rows, size)
            return out
    finally:
        engine.dispose()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1] if 1 <= q <= 99 else ordered[-1]


def summary_ms(samples_s: list[float]) -> dict:
    ms = [s * 1000 for s in samples_s]
    return {"n": len(ms), "p50": percentile(ms, 50), "p95": percentile(ms, 95), "max": max(ms) if ms else None}


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


# --- COPY text format ---------------------------------------------------------------------------

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_escape(value: str) -> str:
    return value.translate(_COPY_ESCAPES)


NULL = "\\N"


class TimestampFormatter:
    """Epoch microseconds → PostgreSQL text timestamptz, fast (days and seconds of day cached)."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}
        self._sod = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)]

    def __call__(self, epoch_us: int | None) -> str:
        if epoch_us is None:
            return NULL
        day, rest = divmod(epoch_us, 86_400_000_000)
        second, micro = divmod(rest, 1_000_000)
        text_day = self._days.get(day)
        if text_day is None:
            text_day = self._days[day] = (EPOCH + timedelta(days=day)).strftime("%Y-%m-%d ")
        if micro:
            return f"{text_day}{self._sod[second]}.{micro:06d}+00"
        return text_day + self._sod[second] + "+00"


US = 1_000_000
DAY_US = 86_400 * US


def to_epoch_us(value: datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * US + delta.microseconds


def from_epoch_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start
