"""Keep ``human_task`` and ``timer`` rows in step with a workflow, in the same transaction."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.util.task import TaskState

from engine import assignment
from engine.db import UTCDateTime
from engine.models import HumanTask, Timer
from engine.timeutil import add_iso_duration

if TYPE_CHECKING:
    from engine.runtime import LoadedCase

ACTIVE_TASK_STATES = ("open", "claimed")
ESCALATION_LEVELS = {"referent": 0, "supervisor": 1, "pilot": 2}

# Statements built once (building one costs more than running it).  Core statements, as the ORM's
# bulk UPDATE costs several times more; commands hold no ORM object of the timers they update.
_timers = Timer.__table__.c
_WAITING_TIMERS = update(Timer.__table__).where(
    _timers.case_id == bindparam("of_case"), _timers.task_uuid.in_(bindparam("task_uuids", expanding=True)),
    _timers.state == "waiting")
CANCEL_TIMERS = _WAITING_TIMERS.values(state="cancelled")  # written with the case (engine.case_writes)
_FIRE_TIMERS = _WAITING_TIMERS.values(
    state="fired", fired_count=_timers.fired_count + 1, last_fired_at=bindparam("now", type_=UTCDateTime),
).returning(_timers.id, _timers.bpmn_id, _timers.due_at)


@dataclass(frozen=True)
class Snapshot:
    """What the projections mirror: READY user tasks and WAITING timers (with due time)."""

    ready: dict[str, object] = field(default_factory=dict)
    timers: dict[str, datetime | None] = field(default_factory=dict)


def snapshot(workflow) -> Snapshot:
    """One pass over every task of the workflow and its subprocesses."""
    ready, timers = {}, {}
    for task in all_tasks(workflow):
        if task.state == TaskState.READY and task.task_spec.manual:
            ready[str(task.id)] = task
        elif task.state == TaskState.WAITING and _timer_of(task) is not None:
            timers[str(task.id)] = _timer_due_at(task)
    return Snapshot(ready, timers)


def all_tasks(workflow):
    yield from workflow.tasks.values()
    for subprocess in workflow.subprocesses.values():
        yield from subprocess.tasks.values()


def sync(session: Session, loaded: LoadedCase, now: datetime, actor: str) -> datetime | None:
    """Bring the rows in step with the workflow by diffing it against its state at load.

    Returns the case's next due timer (``case.next_timer_at``).

    The rows mirror the state saved in the same transaction, so only what
    changed since the load is read or written: usually nothing is read.  Timer
    transitions are written here with prepared Core statements; new rows go to
    ``loaded.rows`` (with the timers to cancel), which save() writes.  What the command
    changed through the ORM (care team, a cancelled task) is flushed by the
    first query that needs it.
    """
    after = snapshot(loaded.workflow)
    _sync_human_tasks(session, loaded, loaded.before, after, now, actor)
    _sync_timers(session, loaded, loaded.before, after, now, actor)
    loaded.before = after
    return min((d for d in after.timers.values() if d is not None), default=None)


def _sync_human_tasks(session, loaded: LoadedCase, before: Snapshot, after: Snapshot, now, actor) -> None:
    case = loaded.case
    gone = before.ready.keys() - after.ready.keys()
    held = [loaded.task_rows[uuid] for uuid in gone if uuid in loaded.task_rows]
    unknown = gone.difference(loaded.task_rows)
    if gone:
        for row in held + (_rows(session, HumanTask, case.id, unknown) if unknown else []):
            if row.state in ACTIVE_TASK_STATES:
                row.state, row.ended_at = "cancelled", now
                loaded.record("task_cancelled", actor, now, bpmn_id=row.bpmn_id, name=row.name)
    created = []
    for task_uuid, task in after.ready.items():
        if task_uuid in before.ready:
            continue
        row, unassigned_reason = _new_human_task(session, loaded, task, now)
        created.append(row)
        loaded.record("task_created", actor, now, task=task, name=row["name"], lane=row["lane"],
                      structure_id=row["structure_id"], assignee=row["assignee"])
        if unassigned_reason:
            loaded.record("task_unassigned", actor, now, task=task, reason=unassigned_reason)
        if row["escalation_level"]:
            _escalate(session, case.id, row["escalation_level"])  # the case's earlier rows, not these new ones
    loaded.rows.tasks.extend(created)


def _rows(session: Session, model, case_id: int, task_uuids) -> list:
    return list(session.scalars(select(model).where(model.case_id == case_id, model.task_uuid.in_(task_uuids))))


def _new_human_task(session: Session, loaded: LoadedCase, task, now: datetime) -> tuple[dict, str | None]:
    """The values of a new ``human_task`` row, and why it is unassigned if it is."""
    info = loaded.pathway.task_info(task)
    audience = info.get("audience") or "referent"
    lane_types = assignment.lane_structure_types(loaded.pathway.lane_info(task), task.data, task.task_spec.lane)
    assigned = assignment.assign(session, case=loaded.case, lane_types=lane_types, audience=audience)
    row = {
        "case_id": loaded.case.id,
        "task_uuid": str(task.id),
        "bpmn_id": task.task_spec.bpmn_id,
        "name": task.task_spec.bpmn_name or task.task_spec.bpmn_id,
        "lane": task.task_spec.lane,
        "form_key": info.get("form_key"),
        "state": "claimed" if assigned.assignee else "open",
        "assignee": assigned.assignee,
        "structure_id": assigned.structure_id,
        "audience": audience,
        "unassigned": assigned.unassigned_reason is not None,
        "escalation_level": ESCALATION_LEVELS.get(audience, 0),
        "created_at": now,
        "due_at": _task_due_at(task, info, now),
        "version": 1,
    }
    return row, assigned.unassigned_reason


def _escalate(session: Session, case_id: int, level: int) -> None:
    """An escalation task raises the level shown on the case's open référent tasks."""
    rows = session.scalars(select(HumanTask).where(
        HumanTask.case_id == case_id, HumanTask.state.in_(ACTIVE_TASK_STATES), HumanTask.audience == "referent"))
    for row in rows:
        row.escalation_level = max(row.escalation_level, level)


def _sync_timers(session, loaded: LoadedCase, before: Snapshot, after: Snapshot, now, actor) -> None:
    changed = [uuid for uuid, due in before.timers.items() if after.timers.get(uuid, "gone") != due]
    rescheduled = [uuid for uuid in changed if uuid in after.timers]  # a cycle timer fired and rescheduled itself
    ended = [uuid for uuid in changed if uuid not in after.timers]
    fired = [uuid for uuid in ended if _completed(loaded.workflow, uuid)]
    cancelled = [uuid for uuid in ended if uuid not in fired]
    case_id = loaded.case.id
    loaded.rows.cancelled_timers.extend(cancelled)
    if fired:
        rows = session.execute(_FIRE_TIMERS, {"of_case": case_id, "task_uuids": fired, "now": now}).all()
        for row in sorted(rows):
            _record_fired(loaded, row, now, actor)
    for row in _rows(session, Timer, loaded.case.id, rescheduled) if rescheduled else []:
        if row.state == "waiting":
            _record_fired(loaded, row, now, actor)
            row.fired_count += 1
            row.last_fired_at = now
            row.due_at = after.timers[row.task_uuid]
    created = []
    for task_uuid, due in after.timers.items():
        if before.timers.get(task_uuid) is not None or due is None:
            continue
        task = loaded.workflow.get_task_from_id(UUID(task_uuid))
        created.append({"case_id": case_id, "task_uuid": task_uuid, "bpmn_id": task.task_spec.bpmn_id,
                        "kind": _timer_kind(_timer_of(task)), "due_at": due, "state": "waiting", "fired_count": 0})
    loaded.rows.timers.extend(created)


def _completed(workflow, task_uuid: str) -> bool:
    """A timer that left the waiting state fired if its event completed; else it was cancelled."""
    task = workflow.get_task_from_id(UUID(task_uuid))
    return task is not None and task.has_state(TaskState.COMPLETED)


def _record_fired(loaded: LoadedCase, row, now: datetime, actor: str) -> None:
    """``row``: the timer's id, bpmn_id and due_at before it fired."""
    loaded.record("timer_fired", actor, now, bpmn_id=row.bpmn_id, due_at=row.due_at.isoformat(), timer_id=row.id)


def _timer_of(task) -> TimerEventDefinition | None:
    definition = getattr(task.task_spec, "event_definition", None)
    return definition if isinstance(definition, TimerEventDefinition) else None


def _timer_kind(definition: TimerEventDefinition) -> str:
    if isinstance(definition, CycleTimerEventDefinition):
        return "cycle"
    if isinstance(definition, TimeDateEventDefinition):
        return "date"
    return "duration"


def _timer_due_at(task) -> datetime | None:
    value = task.internal_data.get("event_value")
    if isinstance(value, dict):
        if value.get("cycles") == 0:
            return None
        value = value.get("next")
    if value is None:
        return None
    return TimerEventDefinition.get_datetime(value) if isinstance(value, str) else None


def _task_due_at(task, info: dict, now: datetime) -> datetime | None:
    """Due time from ``spie:dueIn``, else the earliest timer on the task or on a subprocess around it."""
    if info.get("due_in"):
        return add_iso_duration(now, info["due_in"])
    while task is not None:
        dues = [_timer_due_at(sibling) for sibling in _boundary_timers(task)]
        dues = [d for d in dues if d is not None]
        if dues:
            return min(dues)
        task = _enclosing_activity(task)
    return None


def _boundary_timers(task) -> list:
    parent = task.parent
    if parent is None:
        return []
    return [s for s in parent.children
            if s is not task and _timer_of(s) is not None and s.has_state(TaskState.WAITING)]


def _enclosing_activity(task):
    """The subprocess or call activity task whose workflow ``task`` runs in, if any."""
    parent_task_id = getattr(task.workflow, "parent_task_id", None)
    if parent_task_id is None:
        return None
    return task.workflow.top_workflow.get_task_from_id(parent_task_id)
