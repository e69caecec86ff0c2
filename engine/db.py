"""Database plumbing shared by the engine, the API and the tests.

The engine's models live on a plain :class:`Base`; ``api/`` binds them to Flask
with ``SQLAlchemy(model_class=Base)``.  Everything else takes a session.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, bindparam, create_engine, event, insert, inspect, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, make_transient_to_detached, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.types import TypeDecorator

from engine.errors import Conflict

# Deterministic constraint names, so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT keys on PostgreSQL (national volumes), INTEGER on SQLite (where only
# INTEGER PRIMARY KEY auto-increments).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def make_engine(url: str, **kwargs) -> Engine:
    """Create an engine with the settings every backend needs here."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", apply_sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def apply_sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(session: Session) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error.

    A lost optimistic-locking race (a version column that moved under us,
    detected at any flush) becomes :class:`~engine.errors.Conflict`, and so does
    a transaction PostgreSQL chose to abort to break a deadlock or a
    serialization failure (say a completion and a timer firing on the same case,
    each holding a row the other needs): nothing of it was written, trying again
    works.
    """
    try:
        yield session
        session.commit()
    except StaleDataError as exc:
        session.rollback()
        raise Conflict("this record was changed by someone else at the same time; reload and try again") from exc
    except DBAPIError as exc:
        session.rollback()
        if getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
            raise Conflict("this record was being changed by someone else at the same time; try again") from exc
        raise
    except BaseException:
        session.rollback()
        raise


# PostgreSQL's deadlock_detected and serialization_failure: the transaction was aborted, not refused.
RETRYABLE_SQLSTATES = ("40P01", "40001")


def write_versioned(session: Session, obj: Base, **values) -> None:
    """UPDATE one row of a versioned model now, with one Core statement, as a flush would.

    The row gets ``values`` and the object's pending changes; the version is
    checked and moved on (a lost race is a :class:`~engine.errors.Conflict`) and
    the object ends up as if just loaded with the new values.  A flush does the
    same through the unit of work, which costs several times the statement: the
    engine's commands use this for the rows they write on every call.
    """
    changes = versioned_changes(obj, values)
    if changes is None:  # a relationship changed: let the ORM do it
        for key, value in values.items():
            setattr(obj, key, value)
        session.flush()
        return
    state = inspect(obj)
    mapper = state.mapper
    statement = _versioned_updates.get(mapper.local_table)
    if statement is None:
        statement = _versioned_updates[mapper.local_table] = _versioned_update(mapper)
    params = {mapper.column_attrs[key].columns[0].key: value for key, value in changes.items()}
    version = state.dict[_version_key(mapper)]
    result = session.execute(statement, {**params, "_id": state.identity[0], "_version": version})
    if result.rowcount != 1:
        raise Conflict(f"{mapper.local_table.name} {state.identity[0]} was changed by someone else at the same"
                       " time; reload and try again")
    mark_written(obj, changes)


def versioned_changes(obj: Base, values: dict) -> dict | None:
    """``values``, the object's pending changes and its next version, by attribute; None if a relationship changed."""
    state = inspect(obj)
    mapper = state.mapper
    changes = {key: state.dict[key] for key in state.committed_state}
    if not all(key in mapper.column_attrs for key in changes):
        return None
    changes.update(values)
    version_key = _version_key(mapper)
    changes[version_key] = state.dict[version_key] + 1
    return changes


def mark_written(obj: Base, changes: dict) -> None:
    """The object as if just loaded with ``changes`` (by attribute): a flush will not write them again."""
    for key, value in changes.items():
        set_committed_value(obj, key, value)


def _version_key(mapper) -> str:
    return mapper.get_property_by_column(mapper.version_id_col).key


def insert_now(session: Session, obj: Base) -> None:
    """INSERT a new object now with one Core statement and make it persistent, as a flush would.

    Like a flush, it sends the attributes that were set and the scalar column
    defaults (an unset column is NULL), and sets the new primary key; the
    object joins the session as if just loaded.  Pending changes of the
    session are flushed first, so rows it refers to exist.  For models whose
    defaults are plain values (``Case``).
    """
    session.flush()
    mapper = inspect(obj).mapper
    [primary_key] = mapper.primary_key
    sent = insert_values(obj)
    statement = _inserts.get(mapper.local_table)
    if statement is None:
        statement = _inserts[mapper.local_table] = insert(mapper.local_table).returning(primary_key)
    new_key = session.execute(
        statement, {mapper.column_attrs[key].columns[0].key: value for key, value in sent.items()}).scalar_one()
    add_as_inserted(session, obj, {**sent, mapper.get_property_by_column(primary_key).key: new_key})


def insert_values(obj: Base) -> dict:
    """What a flush would INSERT for a new object, by attribute: the attributes set and the scalar defaults.

    A column neither set nor with a default is left out (NULL).
    """
    state = inspect(obj)
    sent = {}
    for attr in state.mapper.column_attrs:
        column = attr.columns[0]
        if attr.key in state.dict:
            sent[attr.key] = state.dict[attr.key]
        elif column.default is not None and column.default.is_scalar:
            sent[attr.key] = column.default.arg
        elif column.default is not None or column.server_default is not None:
            raise ValueError(f"insert_now cannot apply the default of {column}: add the object to the session")
    return sent


def add_as_inserted(session: Session, obj: Base, values: dict) -> None:
    """A new object just inserted with ``values`` (by attribute, its key included) joins the session as if
    loaded; its other columns are NULL."""
    for attr in inspect(obj).mapper.column_attrs:
        setattr(obj, attr.key, values.get(attr.key))
    make_transient_to_detached(obj)
    session.add(obj)


# Per table: INSERT ... RETURNING id, and UPDATE ... WHERE id = :_id AND version = :_version; the
# VALUES and SET clauses come from the parameters.
_inserts: dict = {}
_versioned_updates: dict = {}


def _versioned_update(mapper):
    table = mapper.local_table
    [primary_key] = mapper.primary_key
    return update(table).where(primary_key == bindparam("_id"), mapper.version_id_col == bindparam("_version"))


def supports_skip_locked(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
