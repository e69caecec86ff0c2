"""Helpers for SPIE scenario tests: the seeded Essonne directory and the real pathways."""
from __future__ import annotations

from sqlalchemy import select

from engine import cases
from engine.care_team import active_members
from engine.clock import DatabaseClock
from engine.context import EngineContext
from engine.db import transaction
from engine.directory import Structure, User, structures_covering
from engine.directory_io import seed_demo
from engine.models import CaseEvent, HumanTask
from engine.demo import deploy_pathways
from tests.conftest import SIMULATION_START

EVRY = "91228"


def spie_context() -> EngineContext:
    return EngineContext(clock=DatabaseClock(start=SIMULATION_START))


def seed_and_deploy(session_factory, ctx) -> None:
    with session_factory() as session, transaction(session):
        seed_demo(session)
    with session_factory() as session:
        deploy_pathways(session, ctx, deployed_by="designer")


def structure(session_factory, structure_type: str, commune: str) -> Structure:
    with session_factory() as session:
        [found] = structures_covering(session, structure_type, commune)
        return found


def staff(session_factory, structure_id: int, role: str = "referent") -> User:
    with session_factory() as session:
        return session.scalars(select(User).where(User.structure_id == structure_id, User.role == role)
                               .order_by(User.id)).first()


def start_for(session_factory, ctx, key: str, person: dict, referent: User, data: dict | None = None) -> int:
    with session_factory() as session, transaction(session):
        found = cases.find_or_create_person(session, ctx, person)
        starter = session.get(User, referent.id)
        return cases.start_case(session, ctx, key, actor=starter.email, data=data, person=found,
                                referent=starter).id


def open_rows(session_factory, case_id: int) -> dict[str, HumanTask]:
    with session_factory() as session:
        rows = session.scalars(select(HumanTask).where(
            HumanTask.case_id == case_id, HumanTask.state.in_(("open", "claimed"))).order_by(HumanTask.id))
        return {row.bpmn_id: row for row in rows}


def complete(session_factory, ctx, row: HumanTask, user: User, data: dict):
    with session_factory() as session, transaction(session):
        return cases.complete_task(session, ctx, row.id, data, user=user.email)


def team(session_factory, case_id: int) -> list[tuple[str, str | None]]:
    """Active care team as (structure type, user email)."""
    with session_factory() as session:
        return [(m.structure.type, m.user.email if m.user else None) for m in active_members(session, case_id)]


def events(session_factory, case_id: int, kind: str | None = None) -> list[CaseEvent]:
    with session_factory() as session:
        query = select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
        if kind:
            query = query.where(CaseEvent.kind == kind)
        return list(session.scalars(query))
