"""Keep ``human_task`` and ``timer`` rows in step with a workflow, in the same transaction."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.util.task import TaskState

from engine import assignment
from engine.models import HumanTask, Timer
from engine.timeutil import add_iso_duration

if TYPE_CHECKING:
    from engine.runtime import LoadedCase

ACTIVE_TASK_STATES = ("open", "claimed")
ESCALATION_LEVELS = {"referent": 0, "supervisor": 1, "pilot": 2}


def sync_human_tasks(session: Session, loaded: LoadedCase, now: datetime, actor: str) -> None:
    case, workflow = loaded.case, loaded.workflow
    ready = {str(t.id): t for t in workflow.get_tasks(state=TaskState.READY, manual=True)}
    rows = session.scalars(
        select(HumanTask).where(HumanTask.case_id == case.id, HumanTask.state.in_(ACTIVE_TASK_STATES))
    ).all()
    known = set()
    for row in rows:
        known.add(row.task_uuid)
        if row.task_uuid not in ready:
            row.state, row.ended_at = "cancelled", now
            loaded.record("task_cancelled", actor, now, bpmn_id=row.bpmn_id, name=row.name)
    for task_uuid, task in ready.items():
        if task_uuid in known:
            continue
        row, unassigned_reason = _new_human_task(session, loaded, task, now)
        session.add(row)
        loaded.record("task_created", actor, now, task=task, name=row.name, lane=row.lane,
                      structure_id=row.structure_id, assignee=row.assignee)
        if unassigned_reason:
            loaded.record("task_unassigned", actor, now, task=task, reason=unassigned_reason)
        if row.escalation_level:
            _escalate(rows, row.escalation_level)


def _new_human_task(session: Session, loaded: LoadedCase, task, now: datetime) -> tuple[HumanTask, str | None]:
    info = loaded.pathway.task_info(task)
    audience = info.get("audience") or "referent"
    lane_types = assignment.lane_structure_types(loaded.pathway.lane_info(task), task.data, task.task_spec.lane)
    assigned = assignment.assign(session, case=loaded.case, lane_types=lane_types, audience=audience)
    row = HumanTask(
        case_id=loaded.case.id,
        task_uuid=str(task.id),
        bpmn_id=task.task_spec.bpmn_id,
        name=task.task_spec.bpmn_name or task.task_spec.bpmn_id,
        lane=task.task_spec.lane,
        form_key=info.get("form_key"),
        state="claimed" if assigned.assignee else "open",
        assignee=assigned.assignee,
        structure_id=assigned.structure_id,
        audience=audience,
        unassigned=assigned.unassigned_reason is not None,
        escalation_level=ESCALATION_LEVELS.get(audience, 0),
        created_at=now,
        due_at=_task_due_at(task, info, now),
    )
    return row, assigned.unassigned_reason


def _escalate(open_rows, level: int) -> None:
    """An escalation task raises the level shown on the case's overdue tasks."""
    for row in open_rows:
        if row.state in ACTIVE_TASK_STATES and row.audience == "referent":
            row.escalation_level = max(row.escalation_level, level)


def sync_timers(session: Session, loaded: LoadedCase, now: datetime, actor: str) -> None:
    case, workflow = loaded.case, loaded.workflow
    waiting = {str(t.id): t for t in workflow.get_tasks(state=TaskState.WAITING) if _timer_of(t) is not None}
    rows = {
        row.task_uuid: row
        for row in session.scalars(select(Timer).where(Timer.case_id == case.id, Timer.state == "waiting"))
    }
    for task_uuid, row in rows.items():
        task = waiting.get(task_uuid)
        if task is None:
            _close_timer(loaded, row, now, actor)
        else:
            due = _timer_due_at(task)
            if due is not None and due != row.due_at:  # a cycle timer fired and rescheduled
                _mark_fired(loaded, row, now, actor)
                row.due_at = due
    for task_uuid, task in waiting.items():
        due = _timer_due_at(task)
        if task_uuid in rows or due is None:
            continue
        session.add(
            Timer(
                case_id=case.id,
                task_uuid=task_uuid,
                bpmn_id=task.task_spec.bpmn_id,
                kind=_timer_kind(_timer_of(task)),
                due_at=due,
                state="waiting",
            )
        )
    dues = [d for d in (_timer_due_at(t) for t in waiting.values()) if d is not None]
    case.next_timer_at = min(dues) if dues else None


def _close_timer(loaded: LoadedCase, row: Timer, now: datetime, actor: str) -> None:
    task = loaded.workflow.get_task_from_id(UUID(row.task_uuid))
    if task is not None and task.has_state(TaskState.COMPLETED):
        _mark_fired(loaded, row, now, actor)
        row.state = "fired"
    else:
        row.state = "cancelled"


def _mark_fired(loaded: LoadedCase, row: Timer, now: datetime, actor: str) -> None:
    row.fired_count += 1
    row.last_fired_at = now
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
    """Due time from ``spie:dueIn``, else the earliest boundary timer on the task."""
    if info.get("due_in"):
        return add_iso_duration(now, info["due_in"])
    parent = task.parent
    if parent is None:
        return None
    dues = [
        _timer_due_at(sibling)
        for sibling in parent.children
        if sibling is not task and _timer_of(sibling) is not None and sibling.has_state(TaskState.WAITING)
    ]
    dues = [d for d in dues if d is not None]
    return min(dues) if dues else None
