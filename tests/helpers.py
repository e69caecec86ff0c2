"""Small helpers shared by engine tests."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event, select

from engine import cases, pathways
from engine.db import transaction
from engine.models import CaseEvent, HumanTask
from tests.conftest import fixture_bytes


@contextmanager
def database_work(engine) -> Iterator[dict]:
    """The statements (their SQL), connection checkouts and commits seen on ``engine`` inside the block."""
    seen = {"statements": [], "checkouts": 0, "commits": 0}

    def statement(conn, cursor, sql, params, context, executemany):
        seen["statements"].append(sql)

    def checkout(dbapi_connection, record, proxy):
        seen["checkouts"] += 1

    def commit(conn):
        seen["commits"] += 1

    listeners = [(engine, "before_cursor_execute", statement), (engine.pool, "checkout", checkout),
                 (engine, "commit", commit)]
    for target, name, listener in listeners:
        event.listen(target, name, listener)
    try:
        yield seen
    finally:
        for target, name, listener in listeners:
            event.remove(target, name, listener)


def deploy_fixture(session_factory, ctx, name: str, by: str = "designer@test"):
    with session_factory() as session, transaction(session):
        return pathways.deploy(session, ctx, fixture_bytes(f"engine/{name}"), deployed_by=by).version


def start(session_factory, ctx, key: str, data=None, actor: str = "referent@test"):
    with session_factory() as session, transaction(session):
        return cases.start_case(session, ctx, key, data=data or {}, actor=actor).id


def open_tasks(session_factory, case_id: int) -> list[HumanTask]:
    with session_factory() as session:
        query = (
            select(HumanTask)
            .where(HumanTask.case_id == case_id, HumanTask.state.in_(("open", "claimed")))
            .order_by(HumanTask.id)
        )
        return list(session.scalars(query))


def complete(session_factory, ctx, task_id: int, data: dict, user: str = "referent@test"):
    with session_factory() as session, transaction(session):
        return cases.complete_task(session, ctx, task_id, data, user=user)


def timeline(session_factory, case_id: int) -> list[CaseEvent]:
    with session_factory() as session:
        query = select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
        return list(session.scalars(query))
