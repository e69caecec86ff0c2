"""The supervisors' overdue board, its figures and reassignment, scoped by who asks (no Flask).

A supervisor sees the open tasks of their structure; the Département pilot (a
supervisor of the pilot structure) sees the whole territory except the tasks of
sensitive structures (addiction care, justice), hidden outside their care team.
The board shows what supervision needs: task, pathway, structure, due date, age,
escalation level and the person's initials; the full name only where
:mod:`engine.access` lets the asker see the case.

A page of the board is one SELECT joining the task to its case, pathway version,
person, structure and assignee (indexes ``ix_human_task_open_structure`` and
``ix_human_task_open_due`` serve the order), plus one query for the names the
asker may see: no load per row, whatever the number of cases.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import ColumnElement, Select

from engine import access, cases
from engine.context import EngineContext
from engine.directory import Structure, User
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import Case, HumanTask, PathwayVersion
from engine.people import Person
from engine.spie_lint import HAND_OFF_PROCESS

ACTIVE = ("open", "claimed")
# The hand-off's receiving lane: the engine names the receiving structure type in this variable (engine.spec_cache).
RECEIVING_LANE_VARIABLE = "receiving_structure_type"
# Who may be given a task, by its audience: référents work référent tasks, supervisors the escalations.
ASSIGNABLE_ROLES = {"referent": "referent", "supervisor": "supervisor", "pilot": "supervisor"}


@dataclass(frozen=True)
class BoardFilters:
    structure_id: int | None = None
    pathway: str | None = None
    min_age_days: int = 0  # overdue by at least this many whole days
    escalation_level: int | None = None
    hand_offs_only: bool = False


@dataclass(frozen=True)
class BoardRow:
    task_id: int
    case_id: int
    version: int  # the task row's version: a reassignment sent from an older page is refused
    name: str
    bpmn_id: str
    state: str
    audience: str
    assignee: str | None
    assignee_name: str | None
    structure_id: int | None
    structure_name: str | None
    structure_type: str | None
    pathway: str
    pathway_name: str
    due_at: datetime
    age_days: float  # rounded to a tenth, as the API gives it
    late_days: int  # whole days past due: what the minimum-age filter compares
    escalation_level: int
    initials: str
    person_name: str | None  # None unless the asker may see the case (engine.access)


@dataclass(frozen=True)
class TaskCount:
    """Open (open or claimed) tasks of one structure or pathway, and how many of them are overdue."""

    key: int | str | None
    label: str
    open: int
    overdue: int


def is_pilot(user: User) -> bool:
    return user.role == "supervisor" and user.structure is not None and user.structure.is_pilot


def _scope(user: User, structure_id: ColumnElement = HumanTask.structure_id) -> ColumnElement[bool]:
    """The tasks ``user`` supervises (use with ``Structure`` outer-joined on ``structure_id``, the task's structure)."""
    if user.role != "supervisor" or user.structure_id is None:
        return false()
    if is_pilot(user):
        return or_(Structure.sensitive.is_not(True), structure_id == user.structure_id)
    return structure_id == user.structure_id


def structure_choices(session: Session, user: User) -> list[tuple[int, str]]:
    """(id, name) of the structures whose tasks ``user`` supervises, by name."""
    query = select(Structure.id, Structure.name).order_by(Structure.name, Structure.id)
    if not is_pilot(user):
        query = query.where(Structure.id == user.structure_id)
    else:
        query = query.where(or_(Structure.sensitive.is_not(True), Structure.id == user.structure_id))
    return [(sid, name) for sid, name in session.execute(query)]


def hand_off_tasks(session: Session) -> list[tuple[str, str | None]]:
    """(BPMN id, lane) of the hand-off's receiving side: the designation by the receiving structure and its escalations.

    A called pathway's tasks belong to the caller's case, so they are told apart by
    their element and lane in the deployed versions of ``passage-de-relais``.
    """
    found = set()
    for meta in session.scalars(select(PathwayVersion.meta).where(PathwayVersion.key == HAND_OFF_PROCESS)):
        lanes = meta.get("lanes", {})
        for bpmn_id, info in meta.get("user_tasks", {}).items():
            receiving = lanes.get(info.get("lane") or "", {}).get("structure_type_variable") == RECEIVING_LANE_VARIABLE
            if receiving or info.get("audience", "referent") != "referent":
                found.add((bpmn_id, info.get("lane")))
    return sorted(found, key=lambda pair: (pair[0], pair[1] or ""))


def _filtered(session: Session, user: User, now: datetime, filters: BoardFilters) -> list[ColumnElement[bool]]:
    conditions = [HumanTask.state.in_(ACTIVE), HumanTask.due_at < now, _scope(user)]
    if filters.structure_id is not None:
        conditions.append(HumanTask.structure_id == filters.structure_id)
    if filters.pathway:
        conditions.append(PathwayVersion.key == filters.pathway)
    if filters.min_age_days > 0:
        conditions.append(HumanTask.due_at <= now - timedelta(days=filters.min_age_days))
    if filters.escalation_level is not None:
        conditions.append(HumanTask.escalation_level == filters.escalation_level)
    if filters.hand_offs_only:
        pairs = hand_off_tasks(session)
        conditions.append(or_(*(and_(HumanTask.bpmn_id == bpmn_id, HumanTask.lane == lane) for bpmn_id, lane in pairs))
                          if pairs else false())
    return conditions


def _board_select(session: Session, user: User, now: datetime, filters: BoardFilters) -> Select:
    assignee = aliased(User)
    return (
        select(HumanTask.id, HumanTask.case_id, HumanTask.version, HumanTask.name, HumanTask.bpmn_id,
               HumanTask.state, HumanTask.audience, HumanTask.assignee, assignee.name, HumanTask.structure_id,
               Structure.name, Structure.type, PathwayVersion.key, PathwayVersion.name, HumanTask.due_at,
               HumanTask.escalation_level, Person.first_name, Person.last_name)
        .join(Case, Case.id == HumanTask.case_id)
        .join(PathwayVersion, PathwayVersion.id == Case.pathway_version_id)
        .outerjoin(Person, Person.id == Case.person_id)
        .outerjoin(Structure, Structure.id == HumanTask.structure_id)
        .outerjoin(assignee, assignee.email == HumanTask.assignee)
        .where(*_filtered(session, user, now, filters))
        .order_by(HumanTask.due_at, HumanTask.id)
    )


def count_overdue(session: Session, user: User, now: datetime, filters: BoardFilters = BoardFilters(), *,
                  cap: int | None = None) -> int:
    """How many tasks the board holds; with ``cap``, counting stops after ``cap`` + 1 (the pilot's board is the
    whole territory: 717,000 tasks on the national data set, 0.6 s to count to the end)."""
    query = (select(HumanTask.id)
             .outerjoin(Structure, Structure.id == HumanTask.structure_id)
             .where(*_filtered(session, user, now, filters)))
    if filters.pathway:
        query = query.join(Case, Case.id == HumanTask.case_id).join(
            PathwayVersion, PathwayVersion.id == Case.pathway_version_id)
    if cap is not None:
        query = query.limit(cap + 1)
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def overdue_page(session: Session, user: User, now: datetime, filters: BoardFilters = BoardFilters(), *,
                 page: int = 1, per_page: int = 50) -> list[BoardRow]:
    """One page of the board, most overdue first (due date, then id)."""
    query = _board_select(session, user, now, filters).limit(per_page).offset((page - 1) * per_page)
    return _rows(session, user, now, session.execute(query).all())


def iter_overdue(session: Session, user: User, now: datetime, filters: BoardFilters = BoardFilters(), *,
                 chunk: int = 1000) -> Iterator[BoardRow]:
    """The whole board in board order, ``chunk`` rows per query (keyset paging: no growing OFFSET)."""
    query = _board_select(session, user, now, filters)
    last: tuple[datetime, int] | None = None
    while True:
        page = query if last is None else query.where(or_(
            HumanTask.due_at > last[0], and_(HumanTask.due_at == last[0], HumanTask.id > last[1])))
        rows = _rows(session, user, now, session.execute(page.limit(chunk)).all())
        yield from rows
        if len(rows) < chunk:
            return
        last = (rows[-1].due_at, rows[-1].task_id)


def board_row(session: Session, user: User, now: datetime, task_id: int) -> BoardRow | None:
    """The board's row of one task, if it is still on ``user``'s board."""
    query = _board_select(session, user, now, BoardFilters()).where(HumanTask.id == task_id)
    rows = _rows(session, user, now, session.execute(query).all())
    return rows[0] if rows else None


def _rows(session: Session, user: User, now: datetime, results) -> list[BoardRow]:
    visible = _visible_cases(session, user, {r[1] for r in results})
    rows = []
    for (task_id, case_id, version, name, bpmn_id, state, audience, assignee, assignee_name, structure_id,
         structure_name, structure_type, key, pathway_name, due_at, level, first, last) in results:
        rows.append(BoardRow(
            task_id=task_id, case_id=case_id, version=version, name=name, bpmn_id=bpmn_id, state=state,
            audience=audience, assignee=assignee, assignee_name=assignee_name, structure_id=structure_id,
            structure_name=structure_name, structure_type=structure_type, pathway=key,
            pathway_name=pathway_name or key, due_at=due_at,
            age_days=round((now - due_at).total_seconds() / 86400, 1), late_days=(now - due_at) // timedelta(days=1),
            escalation_level=level,
            initials=f"{first[:1]}. {last[:1]}." if first else "",
            person_name=f"{first} {last}" if first and case_id in visible else None,
        ))
    return rows


def _visible_cases(session: Session, user: User, case_ids: set[int]) -> set[int]:
    """Which of these cases ``user`` may open (engine.access): one query for a page."""
    if not case_ids:
        return set()
    query = access.visible_cases(user).with_only_columns(Case.id).where(Case.id.in_(case_ids))
    return set(session.scalars(query))


# --- Figures ----------------------------------------------------------------------------------------------------


def _counts(session: Session, user: User, now: datetime, *, by_pathway: bool = False) -> list:
    """(structure id, structure name, pathway version id or None, open, overdue) of the active tasks ``user``
    supervises.

    Grouped on the task rows alone, read through the partial index on open tasks, then
    the scope is applied to the groups: the pilot's territory is every open task (1.9
    million on the national data set), so no structure is joined per task. The pathway
    is the case's (a called pathway's tasks belong to the caller's case): only that
    needs a join, to ``case``.
    """
    overdue = func.count().filter(HumanTask.due_at < now)
    columns = (HumanTask.structure_id, Case.pathway_version_id) if by_pathway else (HumanTask.structure_id,)
    grouped = select(*columns, func.count().label("open"), overdue.label("overdue")).where(HumanTask.state.in_(ACTIVE))
    if not is_pilot(user):
        grouped = grouped.where(_scope(user))
    if by_pathway:
        grouped = grouped.join(Case, Case.id == HumanTask.case_id)
    groups = grouped.group_by(*columns).subquery()
    query = (select(groups.c.structure_id, Structure.name, groups.c.pathway_version_id if by_pathway else None,
                    groups.c.open, groups.c.overdue)
             .outerjoin(Structure, Structure.id == groups.c.structure_id)
             .where(_scope(user, groups.c.structure_id)))
    return session.execute(query).all()


def counts_by_structure(session: Session, user: User, now: datetime) -> list[TaskCount]:
    """Open and overdue tasks per structure of ``user``'s scope, most overdue first."""
    counts = [TaskCount(sid, name or "Sans structure", total, late) for sid, name, _, total, late in _counts(session, user, now)]
    return _most_overdue(counts)


def counts_by_pathway(session: Session, user: User, now: datetime) -> list[TaskCount]:
    """Open and overdue tasks per pathway (key) of ``user``'s scope, most overdue first; label is the key."""
    keys = dict(session.execute(select(PathwayVersion.id, PathwayVersion.key)).tuples().all())
    totals: dict[str, list[int]] = {}
    for _, _, version_id, total, late in _counts(session, user, now, by_pathway=True):
        figures = totals.setdefault(keys[version_id], [0, 0])
        figures[0] += total
        figures[1] += late
    return _most_overdue([TaskCount(key, key, total, late) for key, (total, late) in totals.items()])


def _most_overdue(counts: list[TaskCount]) -> list[TaskCount]:
    return sorted(counts, key=lambda c: (-c.overdue, -c.open, c.label.lower()))


# --- Reassignment -----------------------------------------------------------------------------------------------


def assignable_users(session: Session, structure_ids) -> dict[tuple[int, str], list[User]]:
    """Active users by (structure, role), by name: whom a supervisor may give a task of that structure to."""
    wanted = {i for i in structure_ids if i is not None}
    if not wanted:
        return {}
    found: dict[tuple[int, str], list[User]] = {}
    query = (select(User).where(User.structure_id.in_(wanted), User.active.is_(True),
                                User.role.in_(set(ASSIGNABLE_ROLES.values())))
             .order_by(User.name, User.id))
    for user in session.scalars(query):
        found.setdefault((user.structure_id, user.role), []).append(user)
    return found


def assignable_role(task_audience: str) -> str:
    return ASSIGNABLE_ROLES.get(task_audience, "referent")


def reassign(session: Session, ctx: EngineContext, task_id: int, *, assignee_id: int, actor: User,
             expected_version: int | None = None) -> HumanTask:
    """A supervisor gives an open or claimed task of their structure to one of its active users.

    Référent tasks go to a référent, escalations to a supervisor. ``expected_version`` is
    the version the supervisor saw: if the task changed since, nothing is done (Conflict).
    """
    task = session.get(HumanTask, task_id)
    if task is None or not access.may_work_task(actor, task) or actor.role != "supervisor":
        raise NotFound(f"task {task_id} does not exist")
    if expected_version is not None and task.version != expected_version:
        raise Conflict(f"task {task_id} was changed by someone else; reload")
    target = session.get(User, assignee_id)
    role = assignable_role(task.audience)
    if target is None or not target.active or target.structure_id != task.structure_id or target.role != role:
        raise InvalidInput(f"the new assignee must be an active {role} of the task's structure",
                           [{"field": "assignee", "message": f"not an active {role} of the task's structure"}])
    return cases.assign_task(session, ctx, task_id, user=target.email, actor=actor.email)

