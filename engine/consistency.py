"""Whole-database consistency check: each case's saved state against its projections and timeline.

The projections (``human_task``, ``timer``, ``case.next_timer_at``), the care
team and the timeline (``case_event``) are written in the same transaction as
a case's state. After a crash, a restore, a manual fix or a bug, this check
says which case disagrees with itself, by rule:

==================== =========================================================
rule                 what must hold
==================== =========================================================
state-loads          the saved state deserializes against its pathway version
state-reachable      SpiffWorkflow's own walk from the root (depth bound, finished
                     subprocesses skipped) reaches every READY user task and
                     WAITING timer the projections mirror
status               closed ⇔ the workflow is complete (and ``ended_at`` set);
                     an incident has its details; the status is known
task-missing         every READY user task has an open or claimed row
task-orphan          every open or claimed row has a READY user task
task-assignee        claimed rows have an assignee, open rows none
timer-missing        every WAITING timer event (with a due time) has a waiting row
timer-orphan         every waiting row has a WAITING timer event
timer-due            a waiting row's due time is its timer event's
next-timer           ``case.next_timer_at`` is the earliest due time
closed-open-task     a closed case has no open or claimed task
closed-waiting-timer a closed case has no waiting timer
closed-active-member a closed case has no active care-team member
no-referent          an active case (or one in incident) with a person has at
                     least one active référent (a member with a user)
case-started         exactly one ``case_started`` event
case-closed          one ``case_closed`` event if closed, none otherwise
task-created         each task row has exactly one ``task_created`` event, and
                     each such event a row
task-cancelled       as many ``task_cancelled`` events as cancelled rows
task-completed       each completed row has exactly one ``task_completed``
                     event, and each such event a completed row
timer-fired          ``timer_fired`` events of each timer row = its fired_count,
                     and each names a timer row of the case
==================== =========================================================

Memory is bounded by ``batch``: cases are read in id order (keyset
pagination), each batch with one query per table and grouped event counts, the
states are deserialized one at a time, and only plain rows (no ORM objects)
are kept. When the check owns the transaction (the session is not in one), each
batch is read in its own transaction (REPEATABLE READ on PostgreSQL, so a batch
is one snapshot) and a case found faulty is read again in a fresh transaction:
a command that committed between two reads is not reported, a real fault is.
The check never writes.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, select
from sqlalchemy.orm import Session, scoped_session

from engine.context import EngineContext
from engine.models import Case, CaseEvent, HumanTask, Timer
from engine.people import CareTeamMember
from engine.projection import ACTIVE_TASK_STATES, snapshot

RULES: dict[str, str] = {
    "state-loads": "the saved state deserializes against its pathway version",
    "state-reachable": "every READY user task and WAITING timer is reachable from the workflow's root",
    "status": "closed exactly when the workflow is complete; an incident has its details",
    "task-missing": "every READY user task has an open or claimed human_task row",
    "task-orphan": "every open or claimed human_task row has a READY user task",
    "task-assignee": "claimed rows have an assignee, open rows none",
    "timer-missing": "every WAITING timer event has a waiting timer row",
    "timer-orphan": "every waiting timer row has a WAITING timer event",
    "timer-due": "a waiting timer row's due time is its timer event's",
    "next-timer": "case.next_timer_at is the earliest due time of its waiting timers",
    "closed-open-task": "a closed case has no open or claimed task",
    "closed-waiting-timer": "a closed case has no waiting timer",
    "closed-active-member": "a closed case has no active care-team member",
    "no-referent": "an active case with a person has at least one active référent",
    "case-started": "exactly one case_started event",
    "case-closed": "one case_closed event when closed, none otherwise",
    "task-created": "one task_created event per task row, and no other",
    "task-cancelled": "as many task_cancelled events as cancelled task rows",
    "task-completed": "one task_completed event per completed task row, and no other",
    "timer-fired": "timer_fired events of each timer row match its fired_count",
}
CASE_STATUSES = ("active", "closed", "incident")
DEFAULT_MAX_PROBLEMS = 10_000
_IDS_PER_QUERY = 500
_CASE_COLUMNS = (Case.id, Case.status, Case.state, Case.pathway_version_id, Case.next_timer_at, Case.person_id,
                 Case.ended_at, Case.incident)


@dataclass(frozen=True)
class Problem:
    case_id: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"case {self.case_id}: [{self.rule}] {self.message}"


@dataclass
class ConsistencyReport:
    cases_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0  # every problem found; ``problems`` keeps the first ``max_problems``
    faulty_case_count: int = 0
    by_rule: Counter = field(default_factory=Counter)
    max_problems: int = DEFAULT_MAX_PROBLEMS

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, problems: list[Problem]) -> None:
        """The problems of one batch (a case's problems all come in the same batch)."""
        self.faulty_case_count += len({p.case_id for p in problems})
        for problem in problems:
            self.problem_count += 1
            self.by_rule[problem.rule] += 1
            if len(self.problems) < self.max_problems:
                self.problems.append(problem)

    def summary(self) -> str:
        if self.ok:
            return f"{self.cases_checked} case(s) checked: consistent"
        rules = ", ".join(f"{rule} {count}" for rule, count in sorted(self.by_rule.items()))
        return (f"{self.cases_checked} case(s) checked: {self.problem_count} problem(s) "
                f"in {self.faulty_case_count} case(s) ({rules})")

    def lines(self) -> list[str]:
        lines = [self.summary(), *map(str, self.problems)]
        if self.problem_count > len(self.problems):
            lines.append(f"... and {self.problem_count - len(self.problems)} more problem(s) not listed")
        return lines


def check_database(session: Session, ctx: EngineContext, *, batch: int = 500,
                   max_problems: int = DEFAULT_MAX_PROBLEMS) -> ConsistencyReport:
    """Check every case, ``batch`` cases at a time; read only."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    if isinstance(session, scoped_session):  # Flask-SQLAlchemy's db.session
        session = session()
    report = ConsistencyReport(max_problems=max_problems)
    owns_transaction = not session.in_transaction()
    after = None
    while True:
        with _read(session, owns_transaction):
            query = select(*_CASE_COLUMNS).order_by(Case.id).limit(batch)
            if after is not None:
                query = query.where(Case.id > after)
            cases = session.execute(query).all()
            if not cases:
                break
            problems = _check_batch(session, ctx, cases)
        if problems and owns_transaction:
            problems = _confirm(session, ctx, {p.case_id for p in problems})
        report.add(problems)
        report.cases_checked += len(cases)
        after = cases[-1].id
    return report


def check_cases(session: Session, ctx: EngineContext, case_ids: Iterable[int]) -> list[Problem]:
    """The problems of the given cases only (in the session's current transaction)."""
    ids = sorted(set(case_ids))
    problems: list[Problem] = []
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start:start + _IDS_PER_QUERY]
        cases = session.execute(select(*_CASE_COLUMNS).where(Case.id.in_(chunk)).order_by(Case.id)).all()
        problems.extend(_check_batch(session, ctx, cases))
    return problems


def _confirm(session: Session, ctx: EngineContext, case_ids: set[int]) -> list[Problem]:
    """Read the faulty cases again in a fresh transaction: only lasting faults count."""
    with _read(session, True):
        return check_cases(session, ctx, case_ids)


@contextmanager
def _read(session: Session, owns_transaction: bool) -> Iterator[None]:
    if not owns_transaction:
        yield
        return
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    try:
        yield
    finally:
        session.rollback()  # read only: nothing to keep, and no long-lived snapshot


# --------------------------------------------------------------------------- one batch


@dataclass
class _CaseRows:
    tasks: list = field(default_factory=list)  # (id, task_uuid, bpmn_id, state, assignee), every state
    timers: list = field(default_factory=list)  # (id, task_uuid, bpmn_id, state, due_at, fired_count)
    referents: int = 0  # active members with a user
    members: int = 0  # active members
    event_counts: Counter = field(default_factory=Counter)  # kind -> count (case_started/closed, task_cancelled)
    created_events: Counter = field(default_factory=Counter)  # task_uuid -> task_created events
    completed_events: Counter = field(default_factory=Counter)  # task_uuid -> task_completed events
    fired_events: Counter = field(default_factory=Counter)  # timer row id (or None) -> timer_fired events


def _check_batch(session: Session, ctx: EngineContext, cases: list) -> list[Problem]:
    if not cases:
        return []
    ids = {c.id for c in cases}
    rows = _batch_rows(session, sorted(ids))
    problems: list[Problem] = []
    for case in cases:
        problems.extend(_check_case(session, ctx, case, rows[case.id]))
    return problems


def _batch_rows(session: Session, ids: list[int]) -> dict[int, _CaseRows]:
    """Everything the batch's cases need, one query per table."""
    rows: dict[int, _CaseRows] = defaultdict(_CaseRows)

    def of_batch(column):
        return column.in_(ids)

    for r in session.execute(select(HumanTask.case_id, HumanTask.id, HumanTask.task_uuid, HumanTask.bpmn_id,
                                    HumanTask.state, HumanTask.assignee)
                             .where(of_batch(HumanTask.case_id))):
        rows[r.case_id].tasks.append(r)
    for r in session.execute(select(Timer.case_id, Timer.id, Timer.task_uuid, Timer.bpmn_id, Timer.state,
                                    Timer.due_at, Timer.fired_count).where(of_batch(Timer.case_id))):
        rows[r.case_id].timers.append(r)
    for case_id, members, referents in session.execute(
            select(CareTeamMember.case_id, func.count(), func.count(CareTeamMember.user_id))
            .where(of_batch(CareTeamMember.case_id), CareTeamMember.ended_at.is_(None))
            .group_by(CareTeamMember.case_id)):
        rows[case_id].members, rows[case_id].referents = members, referents
    for case_id, kind, count in session.execute(
            select(CaseEvent.case_id, CaseEvent.kind, func.count())
            .where(of_batch(CaseEvent.case_id), CaseEvent.kind.in_(("case_started", "case_closed", "task_cancelled")))
            .group_by(CaseEvent.case_id, CaseEvent.kind)):
        rows[case_id].event_counts[kind] += count
    for case_id, kind, task_uuid, count in session.execute(
            select(CaseEvent.case_id, CaseEvent.kind, CaseEvent.task_uuid, func.count())
            .where(of_batch(CaseEvent.case_id), CaseEvent.kind.in_(("task_created", "task_completed")))
            .group_by(CaseEvent.case_id, CaseEvent.kind, CaseEvent.task_uuid)):
        target = rows[case_id].created_events if kind == "task_created" else rows[case_id].completed_events
        target[task_uuid] += count
    timer_id = CaseEvent.summary["timer_id"].as_integer()
    for case_id, fired_timer, count in session.execute(
            select(CaseEvent.case_id, timer_id, func.count())
            .where(of_batch(CaseEvent.case_id), CaseEvent.kind == "timer_fired")
            .group_by(CaseEvent.case_id, timer_id)):
        rows[case_id].fired_events[fired_timer] += count
    return rows


def _check_case(session: Session, ctx: EngineContext, case, rows: _CaseRows) -> list[Problem]:
    problems: list[Problem] = []

    def problem(rule: str, message: str) -> None:
        problems.append(Problem(case.id, rule, message))

    closed = case.status == "closed"
    if case.status not in CASE_STATUSES:
        problem("status", f"unknown status {case.status!r}")
    if case.status == "incident" and not case.incident:
        problem("status", "in incident without the incident's details")
    if closed and case.ended_at is None:
        problem("status", "closed without an end date")

    workflow_view = _load_state(session, ctx, case, problem)
    open_rows = [t for t in rows.tasks if t.state in ACTIVE_TASK_STATES]
    waiting_rows = [t for t in rows.timers if t.state == "waiting"]

    if workflow_view is not None:
        ready, waiting, completed = workflow_view
        if closed and not completed:
            problem("status", "closed but its workflow is not complete")
        if not closed and completed:
            problem("status", f"{case.status} but its workflow is complete")
        _check_tasks(ready, open_rows, closed, problem)
        _check_timers(waiting, waiting_rows, closed, problem)
        dues = [d for d in waiting.values() if d is not None]
    else:
        dues = [t.due_at for t in waiting_rows]
    expected_next = min(dues) if dues else None
    if case.next_timer_at != expected_next:
        problem("next-timer", f"next_timer_at is {_iso(case.next_timer_at)}, the earliest waiting timer is due "
                              f"{_iso(expected_next)}")

    if closed:
        for row in open_rows:
            problem("closed-open-task", f"task {row.id} ({row.bpmn_id}) is still {row.state}")
        for row in waiting_rows:
            problem("closed-waiting-timer", f"timer {row.id} ({row.bpmn_id}) is still waiting, due {_iso(row.due_at)}")
        if rows.members:
            problem("closed-active-member", f"{rows.members} care-team member(s) still active")
    for row in rows.tasks:
        if row.state == "claimed" and not row.assignee:
            problem("task-assignee", f"task {row.id} ({row.bpmn_id}) is claimed by nobody")
        elif row.state == "open" and row.assignee:
            problem("task-assignee", f"task {row.id} ({row.bpmn_id}) is open but assigned to {row.assignee}")
    if case.status in ("active", "incident") and case.person_id is not None and rows.referents == 0:
        problem("no-referent", f"{case.status} case of person {case.person_id} without an active référent")

    _check_timeline(case, rows, closed, problem)
    return problems


def _load_state(session: Session, ctx: EngineContext, case, problem):
    """(READY user tasks, WAITING timers with due time, complete?) of the saved state, or None."""
    try:
        pathway = ctx.specs.get(session, case.pathway_version_id)
        workflow = ctx.serializer.load(case.state, pathway.spec, pathway.subprocess_specs)
        if workflow.task_tree is None:
            raise ValueError("the state has no root task")
        view = snapshot(workflow)
    except Exception as exc:  # noqa: BLE001 - any failure to load is what this rule reports
        message = str(exc).splitlines()[0][:300] if str(exc) else ""
        problem("state-loads", f"the saved state does not load: {type(exc).__name__}: {message}")
        return None
    # What SpiffWorkflow itself reaches walking from the root (its depth bound, finished subprocesses
    # skipped) must include every task the projections show: otherwise the engine never moves past it.
    reachable = {str(t.id) for t in workflow.get_tasks(state=TaskState.READY | TaskState.WAITING)}
    for task_uuid in sorted((view.ready.keys() | view.timers.keys()) - reachable):
        task = view.ready.get(task_uuid) or workflow.get_task_from_id(UUID(task_uuid))
        problem("state-reachable", f"{task.task_spec.bpmn_id or task.task_spec.name} ({task_uuid}) is "
                                   f"{TaskState.get_name(task.state)} but not reachable from the workflow's root")
    return set(view.ready), dict(view.timers), bool(workflow.completed)


def _check_tasks(ready: set[str], open_rows: list, closed: bool, problem) -> None:
    by_uuid: dict[str, list] = defaultdict(list)
    for row in open_rows:
        by_uuid[row.task_uuid].append(row)
    for task_uuid in sorted(ready - by_uuid.keys()):
        problem("task-missing", f"READY user task {task_uuid} has no open or claimed row")
    if closed:
        return  # reported as closed-open-task
    for task_uuid, found in sorted(by_uuid.items()):
        if task_uuid not in ready:
            for row in found:
                problem("task-orphan", f"task {row.id} ({row.bpmn_id}) is {row.state} but the workflow has no "
                                       f"READY task {task_uuid}")


def _check_timers(waiting: dict[str, datetime | None], waiting_rows: list, closed: bool, problem) -> None:
    by_uuid = {row.task_uuid: row for row in waiting_rows}
    for task_uuid, due in sorted(waiting.items()):
        row = by_uuid.get(task_uuid)
        if row is None:
            if due is not None:
                problem("timer-missing", f"WAITING timer event {task_uuid} due {_iso(due)} has no waiting row")
        elif row.due_at != due:
            problem("timer-due", f"timer {row.id} ({row.bpmn_id}) is due {_iso(row.due_at)} in its row, "
                                 f"{_iso(due)} in the workflow")
    if closed:
        return  # reported as closed-waiting-timer
    for task_uuid, row in sorted(by_uuid.items()):
        if task_uuid not in waiting:
            problem("timer-orphan", f"timer {row.id} ({row.bpmn_id}) is waiting but no timer event waits for it")


def _check_timeline(case, rows: _CaseRows, closed: bool, problem) -> None:
    started = rows.event_counts["case_started"]
    if started != 1:
        problem("case-started", f"{started} case_started event(s), expected 1")
    closings = rows.event_counts["case_closed"]
    if closings != (1 if closed else 0):
        problem("case-closed", f"{closings} case_closed event(s) for a {case.status} case")
    created = {row.task_uuid: row for row in rows.tasks}
    for task_uuid, row in sorted(created.items()):
        count = rows.created_events.get(task_uuid, 0)
        if count != 1:
            problem("task-created", f"task {row.id} ({row.bpmn_id}) has {count} task_created event(s), expected 1")
    for task_uuid, count in sorted(rows.created_events.items(), key=lambda item: str(item[0])):
        if task_uuid not in created:
            problem("task-created", f"{count} task_created event(s) for task {task_uuid}, which has no row")
    cancelled = sum(1 for row in rows.tasks if row.state == "cancelled")
    if rows.event_counts["task_cancelled"] != cancelled:
        problem("task-cancelled", f"{cancelled} cancelled task row(s) but {rows.event_counts['task_cancelled']} "
                                  f"task_cancelled event(s)")
    completed = {row.task_uuid: row for row in rows.tasks if row.state == "completed"}
    for task_uuid, row in sorted(completed.items()):
        count = rows.completed_events.get(task_uuid, 0)
        if count != 1:
            problem("task-completed", f"task {row.id} ({row.bpmn_id}) is completed with {count} "
                                      f"task_completed event(s), expected 1")
    for task_uuid, count in sorted(rows.completed_events.items(), key=lambda item: str(item[0])):
        if task_uuid not in completed:
            problem("task-completed", f"{count} task_completed event(s) for task {task_uuid}, "
                                      f"which has no completed row")
    timers = {row.id: row for row in rows.timers}
    for timer_id, row in sorted(timers.items()):
        count = rows.fired_events.get(timer_id, 0)
        if count != row.fired_count:
            problem("timer-fired", f"timer {row.id} ({row.bpmn_id}) fired {row.fired_count} time(s) but has "
                                   f"{count} timer_fired event(s)")
    for timer_id, count in sorted(rows.fired_events.items(), key=lambda item: (item[0] is None, item[0] or 0)):
        if timer_id not in timers:
            problem("timer-fired", f"{count} timer_fired event(s) for timer {timer_id}, not a timer of this case")


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else "none"
