"""The inbox's queries, built as in ``GET /api/v1/tasks``: only tasks of cases the user may see.

- ``mes-taches``: active tasks assigned to the user;
- ``structure``: active tasks of the user's structure (référents see the référents' tasks,
  supervisors also the escalations), whoever holds them;
- ``en-retard``: either of the above, past their due time.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, or_, select, union_all
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import Select

from api.v1.common import COUNT_CAP
from engine import access
from engine.directory import User
from engine.models import Case, HumanTask, PathwayVersion
from engine.people import Person

VIEWS = {"mes-taches": "Mes tâches", "structure": "File de ma structure", "en-retard": "En retard"}
SORTS = {"echeance": "Échéance la plus proche", "creation": "Les plus récentes d'abord"}


def _mine(user: User):
    """The user's own active tasks, of cases they may see (a task of another structure may be assigned to them)."""
    return and_(HumanTask.assignee == user.email, HumanTask.state.in_(access.OPEN),
                HumanTask.case_id.in_(access.visible_cases(user).with_only_columns(Case.id)))


def inbox_query(user: User, view: str, now: datetime, *, sort: str = "echeance", pathway: str | None = None) -> Select:
    """SELECT of the HumanTask rows of one inbox view, sorted."""
    filters = []
    if pathway:
        filters.append(HumanTask.case_id.in_(
            select(Case.id).join(PathwayVersion, PathwayVersion.id == Case.pathway_version_id)
            .where(PathwayVersion.key == pathway)))
    task = HumanTask
    if view == "mes-taches":
        query = select(HumanTask).where(_mine(user), *filters)
    elif view == "structure":
        query = select(HumanTask).where(access.queue(user), *filters)
    else:
        # Two disjoint halves in UNION ALL rather than an OR, each read through its own index (the OR of the two
        # scanned every open task: 1.5 s on the national data set); the page sorts what they give.
        elsewhere = or_(HumanTask.structure_id.is_distinct_from(user.structure_id),
                        HumanTask.audience.not_in(access.audiences(user)))
        task = aliased(HumanTask, union_all(
            select(HumanTask).where(access.queue(user), HumanTask.due_at < now, *filters),
            select(HumanTask).where(_mine(user), elsewhere, HumanTask.due_at < now, *filters)).subquery())
        query = select(task)
    if sort == "creation":
        return query.order_by(task.created_at.desc(), task.id.desc())
    return query.order_by(task.due_at.asc().nulls_last(), task.id)


class Count(int):
    """A number of tasks counted up to ``COUNT_CAP`` (the API's bound): beyond it counting stopped, and it
    reads « 1 000+ » wherever a page prints it."""

    @property
    def capped(self) -> bool:
        return self > COUNT_CAP

    def __str__(self) -> str:
        return f"{COUNT_CAP:,}+".replace(",", "\u202f") if self.capped else int.__str__(self)


def count(session: Session, query: Select) -> Count:
    """How many rows ``query`` gives, up to ``COUNT_CAP`` + 1: a queue of thousands is not counted to the end."""
    return Count(session.scalar(_capped_count(query)) or 0)


def _capped_count(query: Select) -> Select:
    return select(func.count()).select_from(query.order_by(None).limit(COUNT_CAP + 1).subquery())


def pager(total: Count, page: int, shown: int, per_page: int) -> dict:
    """The pager of a list: ``pages`` (None when the count stopped at the bound: « Page 3 », not « Page 3 sur
    41 ») and ``has_next`` (without a total, when this page is full)."""
    pages = None if total.capped else max(1, -(-total // per_page))
    return {"page": page, "pages": pages, "has_next": page < pages if pages else shown == per_page}


def counts(session: Session, user: User, now: datetime, pathway: str | None = None) -> dict[str, Count]:
    """The count of each inbox view, in one statement (the tabs show them on every page and every action)."""
    views = [_capped_count(inbox_query(user, view, now, pathway=pathway)).scalar_subquery() for view in VIEWS]
    return {view: Count(total or 0) for view, total in zip(VIEWS, session.execute(select(*views)).one())}


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
    """The JSON Schema of form ``key`` for a case of this pathway version, or of a pathway it calls
    (``LoadedPathway.forms`` holds both)."""
    return specs.get(session, version_id).forms.get(key)
