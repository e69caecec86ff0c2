"""Load a case's workflow, move it forward, save it: the core of every command.

Every command (start, complete, fire timers, deliver a message, retry) is
*load → act → settle → save*, in the caller's transaction.  Settling runs
SpiffWorkflow's engine steps until nothing but user tasks and waiting events
remain.  A script that fails, or breaks the sandbox's bounds, does not fail
the command: the case goes to ``incident`` with the error, its state is saved
with the failing task in ERROR, and :func:`engine.cases.retry_incident`
re-runs it later.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.util.task import TaskState

from engine import care_team, case_writes, projection, task_effects
from engine.case_writes import SavedRows
from engine.clock import workflow_time
from engine.context import EngineContext
from engine.errors import Conflict, EngineError, NotFound
from engine.models import Case, HumanTask
from engine.spec_cache import LoadedPathway
from engine.state import compact
from engine.workflow_cache import CachedWorkflow

# Engine steps that keep producing work after this many rounds are a runaway loop.
MAX_SETTLE_ROUNDS = 200


@dataclass
class LoadedCase:
    case: Case
    pathway: LoadedPathway
    workflow: BpmnWorkflow
    session: Session
    before: projection.Snapshot = field(default_factory=projection.Snapshot)  # as the projections have it
    task_rows: dict[str, HumanTask] = field(default_factory=dict)  # human_task rows the command holds, by uuid
    rows: SavedRows = field(default_factory=SavedRows)  # what save() writes besides the case row

    def record(self, kind: str, actor: str, at: datetime, *, task=None, bpmn_id=None, **summary) -> None:
        self.rows.events.append({
            "case_id": self.case.id,
            "at": at,
            "actor": actor,
            "kind": kind,
            "bpmn_id": bpmn_id or (task.task_spec.bpmn_id if task is not None else None),
            "task_uuid": str(task.id) if task is not None else None,
            "summary": summary,
        })


def new_workflow(ctx: EngineContext, pathway: LoadedPathway) -> BpmnWorkflow:
    return BpmnWorkflow(pathway.spec, pathway.subprocess_specs, script_engine=ctx.script_engine)


def load_case(session: Session, ctx: EngineContext, case_id: int, *, lock: bool = False) -> LoadedCase:
    case = session.get(Case, case_id, with_for_update=lock or None)
    if case is None:
        raise NotFound(f"case {case_id} does not exist")
    return load(session, ctx, case)


@contextmanager
def reading(session: Session, ctx: EngineContext, case_id: int) -> Iterator[LoadedCase]:
    """The case's workflow for a read that changes nothing (a page, an API read, a check).

    Afterwards the workflow goes to the cache of live workflows, keyed by the
    row it was read from, so that the next command on the case skips parsing.
    The caller must not change the workflow, its tasks or their data.
    """
    loaded = load_case(session, ctx, case_id)
    yield loaded
    case = loaded.case
    if case.status == "active" and not inspect(case).modified:
        ctx.workflows.give_back(case.id, CachedWorkflow(case.version, case.state, loaded.workflow, loaded.before))


def form_values(loaded: LoadedCase, row: HumanTask, schema: dict | None) -> dict:
    """An open task's current values for its form's fields only (the rest of the case data stays private).

    Copies: a workflow read through :func:`reading` goes back to the cache as it was read.
    """
    if row.state not in ("open", "claimed") or not schema:
        return {}
    task = loaded.workflow.get_task_from_id(UUID(row.task_uuid))
    if task is None:
        return {}
    return deepcopy({key: task.data[key] for key in schema.get("properties") or {} if key in task.data})


def load(session: Session, ctx: EngineContext, case: Case) -> LoadedCase:
    """The case's workflow: the one the last save kept at this version (engine.workflow_cache), else its state."""
    pathway = ctx.specs.get(session, case.pathway_version_id)
    cached = ctx.workflows.take(case.id, case.version, case.state)
    if cached is not None:
        return LoadedCase(case, pathway, cached.workflow, session, cached.snapshot)
    workflow = ctx.serializer.load(case.state, pathway.spec, pathway.subprocess_specs)
    workflow.script_engine = ctx.script_engine
    return LoadedCase(case, pathway, workflow, session, projection.snapshot(workflow))


def settle(loaded: LoadedCase, now: datetime, action: Callable[[], None] | None = None, *, actor: str) -> bool:
    """Run ``action`` then engine steps until stable; on a script failure, open an incident.

    Returns False when an incident was opened. An :class:`EngineError` (an exit
    refused by the hand-off invariant, say) is not an incident: it refuses the
    whole command.
    """
    workflow = loaded.workflow
    guard = task_effects.guard_exit_events(loaded.session, loaded)
    with workflow_time(now):
        try:
            if action is not None:
                action()
            for _ in range(MAX_SETTLE_ROUNDS):
                workflow.refresh_timers()
                _skip_missed_cycles(workflow, now)
                workflow.do_engine_steps(will_complete_task=guard)
                if not _engine_work_left(workflow):
                    break
            else:
                raise WorkflowException(f"engine steps did not settle after {MAX_SETTLE_ROUNDS} rounds")
        except EngineError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of BPMN code is an incident, never a crash
            _open_incident(loaded, exc, now, actor)
            return False
    return True


def save(session: Session, ctx: EngineContext, loaded: LoadedCase, now: datetime, actor: str) -> None:
    """Project tasks and timers, compact, serialize, write (engine.case_writes); a stale version is a conflict.

    The last thing a command does with its workflow: an active case's workflow
    is kept in memory for the next command once the transaction commits.
    """
    case, workflow = loaded.case, loaded.workflow
    values = {"next_timer_at": projection.sync(session, loaded, now, actor)}
    compact(workflow)
    values.update(state=ctx.serializer.dump(workflow), updated_at=now)
    if case.serializer_version != ctx.serializer.version:
        values["serializer_version"] = ctx.serializer.version
    if workflow.completed and case.status == "active":
        values.update(status="closed", ended_at=now)
        care_team.leave_structure(session, case.id, None, now, "case-closed", actor)
        loaded.record("case_closed", actor, now, exit_reason=case.exit_reason)
    try:
        case_writes.write(session, case, values, loaded.rows)
    except StaleDataError as exc:
        raise Conflict(f"case {case.id} was changed by someone else; reload and try again") from exc
    loaded.rows = SavedRows()
    if case.status == "active":
        ctx.workflows.keep_on_commit(session, case.id,
                                     CachedWorkflow(case.version, case.state, workflow, loaded.before))


def _open_incident(loaded: LoadedCase, exc: Exception, now: datetime, actor: str) -> None:
    task = getattr(exc, "task", None)
    incident = {
        "message": _error_message(exc),
        "type": type(exc).__name__,
        "bpmn_id": task.task_spec.bpmn_id if task is not None else None,
        "task_uuid": str(task.id) if task is not None else None,
        "line": getattr(exc, "line_number", None) or None,
        "at": now.isoformat(),
    }
    loaded.case.status = "incident"
    loaded.case.incident = incident
    loaded.record("incident_opened", actor, now, bpmn_id=incident["bpmn_id"], message=incident["message"])


def _error_message(exc: Exception) -> str:
    message = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) and str(cause) not in message:
        message = f"{message}: {cause}"
    return message[:2000]


def _engine_work_left(workflow: BpmnWorkflow) -> bool:
    """READY tasks the engine runs itself (a timer made READY by the last refresh, say)."""
    return any(t.state == TaskState.READY and not t.task_spec.manual for t in projection.all_tasks(workflow))


def _skip_missed_cycles(workflow: BpmnWorkflow, now: datetime) -> None:
    """A cycle timer missed during downtime fires once, then goes on from now."""
    for task in projection.all_tasks(workflow):
        if task.state != TaskState.WAITING:
            continue
        definition = getattr(task.task_spec, "event_definition", None)
        if not isinstance(definition, CycleTimerEventDefinition):
            continue
        value = task.internal_data.get("event_value")
        if not isinstance(value, dict) or value.get("cycles") == 0:
            continue
        if datetime.fromisoformat(value["next"]) <= now:
            value["next"] = (now + timedelta(seconds=value["duration"])).isoformat()


def find_task(loaded: LoadedCase, task_uuid: str):
    task = loaded.workflow.get_task_from_id(UUID(task_uuid))
    if task is None:
        raise Conflict("this task no longer exists in the case; reload")
    return task


def reopen_failed_tasks(loaded: LoadedCase) -> list:
    """Put tasks stopped by an error back to READY so the next settle re-runs them."""
    failed = loaded.workflow.get_tasks(state=TaskState.ERROR)
    for task in failed:
        task._set_state(TaskState.READY)
    return failed
