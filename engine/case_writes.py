"""The rows a command writes as it saves a case: one statement on PostgreSQL.

Every command ends by writing its case (state, next timer, version) and what its
projections and timeline gained: new ``human_task``, ``timer`` and ``case_event``
rows, waiting timers now cancelled.  One at a time that is up to five statements,
and SQLAlchemy and psycopg spend about 0.2 ms of CPU on each, more than
PostgreSQL spends running it (bench/README.md).  On PostgreSQL they go as one
statement: the case row first, written or inserted with its version check, then
data-modifying CTEs that all read the case's id from it, so nothing else is
written when the version check fails, and every command that saves a case takes
that row's lock before any other.  New rows travel as one JSON array per table
(``json_populate_recordset``; ``json``, not ``jsonb``, so a row's JSON values
keep their text).  Other databases run the statements one by one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache

from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.orm import Session

from engine import row_hooks
from engine.db import add_as_inserted, insert_now, insert_values, mark_written, versioned_changes, write_versioned
from engine.errors import Conflict
from engine.models import Case, CaseEvent, HumanTask, Timer
from engine.projection import CANCEL_TIMERS

# The tables whose new rows a save writes, in this order (events last: their ids follow the command).
ROW_TABLES = (HumanTask.__table__, Timer.__table__, CaseEvent.__table__)


@dataclass
class SavedRows:
    """What a command's save writes besides the case row, as column values."""

    tasks: list[dict] = field(default_factory=list)
    timers: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    cancelled_timers: list[str] = field(default_factory=list)  # task uuids of waiting timers to cancel

    def by_table(self) -> list[tuple]:
        return [(table, rows) for table, rows in zip(ROW_TABLES, (self.tasks, self.timers, self.events)) if rows]


def write(session: Session, case: Case, values: dict, rows: SavedRows) -> None:
    """Write (or insert, when it has no id yet) the case with ``values`` and its pending changes, and ``rows``.

    A case changed by someone else since it was read is a :class:`~engine.errors.Conflict`.
    Listeners of :mod:`engine.row_hooks` see the new rows, with the case's id, before they are written.
    """
    if session.get_bind().dialect.name != "postgresql":
        _write_one_by_one(session, case, values, rows)
    elif case.id is None:
        for key, value in values.items():
            setattr(case, key, value)
        changes = insert_values(case)
        case.id = session.execute(_NEXT_CASE_ID).scalar_one()  # first, so that listeners and the rows have it
        _set_case_id(rows, case.id)
        _write_in_one_statement(session, case, changes, rows)
        add_as_inserted(session, case, {**changes, "id": case.id})
    else:
        changes = versioned_changes(case, values)
        if changes is None:  # a relationship changed: the ORM writes the case
            _write_one_by_one(session, case, values, rows)
            return
        version = case.version
        mark_written(case, changes)  # the flush before the statement must not write it: the statement does
        _write_in_one_statement(session, case, changes, rows, version)


def _write_one_by_one(session: Session, case: Case, values: dict, rows: SavedRows) -> None:
    if case.id is None:
        for key, value in values.items():
            setattr(case, key, value)
        insert_now(session, case)
        _set_case_id(rows, case.id)
    else:
        write_versioned(session, case, **values)
    if rows.cancelled_timers:
        session.execute(CANCEL_TIMERS, {"of_case": case.id, "task_uuids": rows.cancelled_timers})
    row_hooks.notify(session, rows.tasks, rows.events)
    session.flush()  # what else the command changed through the ORM (care team, timeline...), before its events
    for table, table_rows in rows.by_table():
        # One row: a plain execute, cheaper than an executemany of one.
        session.execute(insert(table), table_rows[0] if len(table_rows) == 1 else table_rows)


def _write_in_one_statement(session: Session, case: Case, changes: dict, rows: SavedRows,
                            version: int | None = None) -> None:
    """``changes`` by column; ``version``: the one read, for an update (None: the case is inserted)."""
    row_hooks.notify(session, rows.tasks, rows.events)
    session.flush()
    tables = rows.by_table()
    statement = _statement(version is None, tuple(changes), bool(rows.cancelled_timers),
                           tuple((table.name, _columns(table_rows)) for table, table_rows in tables))
    params = {f"c_{key}": value for key, value in changes.items()}
    params.update({"case_id": case.id, "case_version": version, "cancelled": rows.cancelled_timers})
    params.update({table.name: json.dumps(table_rows, default=_json_value) for table, table_rows in tables})
    if session.execute(statement, params).first() is None:
        raise Conflict(f"case {case.id} was changed by someone else; reload and try again")


def _set_case_id(rows: SavedRows, case_id: int) -> None:
    for row in [*rows.tasks, *rows.timers, *rows.events]:  # recorded before the case had an id
        row["case_id"] = case_id


def _columns(rows: list[dict]) -> tuple[str, ...]:
    return tuple(sorted({key for row in rows for key in row} - {"case_id"}))


def _json_value(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@lru_cache(maxsize=256)
def _statement(new: bool, case_columns: tuple[str, ...], cancel: bool, inserts: tuple[tuple[str, tuple], ...]):
    """The one statement of a save of this shape (which columns, which tables): built once, prepared by psycopg."""
    case_table = Case.__table__
    if new:
        names = ", ".join(["id", *case_columns])
        placeholders = ", ".join([":case_id", *(f":c_{c}" for c in case_columns)])
        case_part = f'INSERT INTO "case" ({names}) VALUES ({placeholders}) RETURNING id'
    else:
        assignments = ", ".join(f"{c} = :c_{c}" for c in case_columns)
        case_part = f'UPDATE "case" SET {assignments} WHERE id = :case_id AND version = :case_version RETURNING id'
    parts = [f"c AS ({case_part})"]
    if cancel:
        parts.append("cancelled AS (UPDATE timer SET state = 'cancelled' FROM c WHERE timer.case_id = c.id"
                     " AND timer.task_uuid = ANY(:cancelled) AND timer.state = 'waiting')")
    for table, columns in inserts:
        names = ", ".join(columns)
        picked = ", ".join(f"r.{c}" for c in columns)
        parts.append(f"new_{table} AS (INSERT INTO {table} (case_id, {names}) SELECT c.id, {picked} FROM c,"
                     f" json_populate_recordset(NULL::{table}, CAST(:{table} AS json)) WITH ORDINALITY AS r"
                     " ORDER BY r.ordinality)")
    statement = text("WITH " + ",\n".join(parts) + "\nSELECT id FROM c")
    return statement.bindparams(*(bindparam(f"c_{c}", type_=case_table.c[c].type) for c in case_columns))


_NEXT_CASE_ID = select(func.nextval("case_id_seq"))
