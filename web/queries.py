"""The inbox's queries, built as in ``GET /api/v1/tasks``: only tasks of cases the user may see.

- ``mes-taches``: active tasks assigned to the user;
- ``structure``: active tasks of the user's structure (référents see the référents' tasks,
  supervisors also the escalations), whoever holds them;
- ``en-retard``: either of the above, past their due time.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from engine import access
from engine.directory import User
from engine.models import Case, HumanTask, PathwayVersion
from engine.people import Person
from engine.spec_cache import dependencies_of

VIEWS = {"mes-taches": "Mes tâches", "structure": "File de ma structure", "en-retard": "En retard"}
SORTS = {"echeance": "Échéance la plus proche", "creation": "Les plus récentes d'abord"}
ACTIVE = ("open", "claimed")


def _mine(user: User):
    return HumanTask.assignee == user.email


def _structure_queue(user: User):
    condition = HumanTask.structure_id == user.structure_id
    if user.role != "supervisor":
        condition = and_(condition, HumanTask.audience == "referent")
    return condition


def inbox_query(user: User, view: str, now: datetime, *, sort: str = "echeance", pathway: str | None = None) -> Select:
    """SELECT of the HumanTask rows of one inbox view, sorted."""
    query = select(HumanTask).where(
        HumanTask.case_id.in_(access.visible_cases(user).with_only_columns(Case.id)),
        HumanTask.state.in_(ACTIVE),
    )
    if view == "mes-taches":
        query = query.where(_mine(user))
    elif view == "structure":
        query = query.where(_structure_queue(user))
    else:
        query = query.where(or_(_mine(user), _structure_queue(user)), HumanTask.due_at < now)
    if pathway:
        query = query.where(HumanTask.case_id.in_(
            select(Case.id).join(PathwayVersion, PathwayVersion.id == Case.pathway_version_id)
            .where(PathwayVersion.key == pathway)))
    if sort == "creation":
        return query.order_by(HumanTask.created_at.desc(), HumanTask.id.desc())
    return query.order_by(HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.id)


def count(session: Session, query: Select) -> int:
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0


def counts(session: Session, user: User, now: datetime, pathway: str | None = None) -> dict[str, int]:
    return {view: count(session, inbox_query(user, view, now, pathway=pathway)) for view in VIEWS}


def pathway_choices(session: Session) -> list[tuple[str, str]]:
    """(key, name of its latest version) of every deployed pathway, by name."""
    latest = (select(PathwayVersion.key, func.max(PathwayVersion.version).label("version"))
              .group_by(PathwayVersion.key).subquery())
    rows = session.execute(select(PathwayVersion.key, PathwayVersion.name).join(
        latest, and_(PathwayVersion.key == latest.c.key, PathwayVersion.version == latest.c.version)))
    return sorted(((key, name or key) for key, name in rows), key=lambda row: row[1].lower())


def case_labels(session: Session, case_ids) -> dict[int, dict]:
    """For each case: the person's name and the pathway's name (one query for a page of tasks)."""
    ids = {i for i in case_ids if i is not None}
    if not ids:
        return {}
    rows = session.execute(
        select(Case.id, Person.first_name, Person.last_name, PathwayVersion.name, PathwayVersion.key)
        .join(PathwayVersion, PathwayVersion.id == Case.pathway_version_id)
        .outerjoin(Person, Person.id == Case.person_id)
        .where(Case.id.in_(ids)))
    return {case_id: {"person": f"{first} {last}" if first else None, "pathway": name or key}
            for case_id, first, last, name, key in rows}


def form_schema(session: Session, specs, version_id: int, key: str) -> dict | None:
    """The JSON Schema of form ``key`` for a case of this pathway version, or of a pathway it calls.

    Workaround: ``LoadedPathway.forms`` holds only the forms of the version's own diagram, so the
    tasks of a called pathway (the hand-off's designation, tripartite meeting, exit) find theirs here.
    """
    schema = specs.get(session, version_id).forms.get(key)
    if schema is not None:
        return schema
    for dependency in dependencies_of(session, session.get(PathwayVersion, version_id)):
        if key in (dependency.forms or {}):
            return dependency.forms[key]
    return None
