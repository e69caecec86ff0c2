"""Case commands: start, claim, release, complete, deliver a message, retry an incident.

Each command works inside the caller's transaction and ends with a flush, so a
lost race surfaces here as :class:`~engine.errors.Conflict` and the caller
rolls back: no lost or doubled update.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import bindparam, func, inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError
from SpiffWorkflow.bpmn import BpmnEvent
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from engine import care_team, runtime, task_effects
from engine.context import EngineContext
from engine.db import insert_now, write_versioned
from engine.errors import Conflict, InvalidInput, NotFound
from engine.forms import validate_form_data
from engine.directory import User
from engine.models import Case, CaseEvent, HumanTask
from engine.people import Person
from engine.pathways import version_ref


def start_case(
    session: Session,
    ctx: EngineContext,
    pathway_key: str,
    *,
    actor: str,
    data: dict[str, Any] | None = None,
    version: int | None = None,
    person: Person | None = None,
    referent: User | None = None,
) -> Case:
    """Start a case; with a person, the starting référent joins its care team first.

    With a référent the row is inserted first, for the care team to refer to;
    without one (a technical case, a prescription's lifecycle) save() inserts it
    once, with its state.
    """
    version_id, version_number = version_ref(session, pathway_key, version)
    pathway = ctx.specs.get(session, version_id)
    now = ctx.clock.now(session)
    workflow = runtime.new_workflow(ctx, pathway)
    start_data = dict(data or {})
    if person is not None:
        start_data["person"] = person_data(person)
    if referent is not None and referent.structure is not None:
        start_data.setdefault("entry_structure_type", referent.structure.type)
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update(start_data)
    case = Case(
        pathway_version_id=version_id,
        status="active",
        state="",
        serializer_version=ctx.serializer.version,
        created_at=now,
        updated_at=now,
        created_by=actor,
        person_id=person.id if person is not None else None,
        commune_insee=person.commune_insee if person is not None else None,
    )
    if referent is not None:
        insert_now(session, case)
        care_team.join(session, case.id, referent, now, actor)
    loaded = runtime.LoadedCase(case, pathway, workflow, session)
    loaded.record("case_started", actor, now, pathway=pathway_key, version=version_number)
    runtime.settle(loaded, now, actor=actor)
    runtime.save(session, ctx, loaded, now, actor)
    return case


def find_or_create_person(session: Session, ctx: EngineContext, identity: dict[str, Any]) -> Person:
    """The person with this identity (names and birth date), created if new; commune kept current."""
    try:
        first, last = identity["first_name"].strip(), identity["last_name"].strip()
        birth_date = date.fromisoformat(str(identity["birth_date"]))
        commune = str(identity["commune_insee"]).strip()
    except (KeyError, ValueError, AttributeError) as exc:
        raise InvalidInput("person needs first_name, last_name, birth_date (YYYY-MM-DD) and commune_insee") from exc
    if not (first and last and len(commune) == 5):
        raise InvalidInput("person needs non-empty names and a 5-character INSEE commune code")
    person = session.scalar(select(Person).where(
        func.lower(Person.first_name) == first.lower(), func.lower(Person.last_name) == last.lower(),
        Person.birth_date == birth_date))
    if person is None:
        person = Person(first_name=first, last_name=last, birth_date=birth_date, commune_insee=commune,
                        contact=dict(identity.get("contact") or {}), created_at=ctx.clock.now(session))
        session.add(person)
        session.flush()
    elif person.commune_insee != commune:
        person.commune_insee = commune
    return person


def person_data(person: Person) -> dict[str, str]:
    """What the diagram's scripts see of the person."""
    return {"first_name": person.first_name, "last_name": person.last_name,
            "birth_date": person.birth_date.isoformat(), "commune_insee": person.commune_insee}


def claim_task(session: Session, ctx: EngineContext, task_id: int, *, user: str) -> HumanTask:
    task = _active_task(session, task_id)
    if task.state == "claimed" and task.assignee != user:
        raise Conflict(f"task {task_id} is already claimed by {task.assignee}")
    if task.state == "claimed":
        return task
    task.state, task.assignee = "claimed", user
    _log_task_event(session, ctx, task, "task_claimed", user)
    return task


def release_task(session: Session, ctx: EngineContext, task_id: int, *, user: str) -> HumanTask:
    task = _active_task(session, task_id)
    if task.state != "claimed" or task.assignee != user:
        raise Conflict(f"task {task_id} is not claimed by {user}")
    task.state, task.assignee = "open", None
    _log_task_event(session, ctx, task, "task_released", user)
    return task


def assign_task(session: Session, ctx: EngineContext, task_id: int, *, user: str, actor: str) -> HumanTask:
    """A supervisor gives an open or claimed task to a user."""
    task = _active_task(session, task_id)
    task.state, task.assignee = "claimed", user
    _log_task_event(session, ctx, task, "task_assigned", actor, assignee=user)
    return task


def complete_task(
    session: Session, ctx: EngineContext, task_id: int, data: dict[str, Any], *, user: str
) -> Case:
    """Validate the form, run the user task and everything it triggers, save."""
    row, case = _active_task_and_case(session, task_id)
    if row.state == "claimed" and row.assignee != user:
        raise Conflict(f"task {task_id} is claimed by {row.assignee}")
    loaded = runtime.load(session, ctx, case)
    loaded.task_rows[row.task_uuid] = row
    validate_form_data(loaded.pathway.forms.get(row.form_key) if row.form_key else None, data)
    task = runtime.find_task(loaded, row.task_uuid)
    if not task.has_state(TaskState.READY):
        raise Conflict(f"task {task_id} is no longer waiting for input; reload")
    designated = task_effects.before_completion(session, loaded, row, task, data)
    now = ctx.clock.now(session)
    write_versioned(session, row, state="completed", assignee=user, completed_by=user, ended_at=now)
    loaded.record("task_completed", user, now, task=task, name=row.name, fields=sorted(data))

    def run_user_task() -> None:
        task.set_data(**data)
        task.run()

    runtime.settle(loaded, now, run_user_task, actor=user)
    members_left = task_effects.after_completion(session, loaded, row, task, data, designated, now, user, ctx=ctx)
    runtime.save(session, ctx, loaded, now, user)
    if members_left and loaded.case.status == "active" and loaded.case.person_id is not None:
        care_team.check_someone_remains(session, loaded.case.id)  # only an exit ends memberships here
    return loaded.case


def deliver_message(
    session: Session, ctx: EngineContext, case_id: int, name: str, payload: dict[str, Any] | None, *, actor: str
) -> Case:
    """Deliver a named BPMN message (e.g. ``droit-rsa-ouvert``) to one case."""
    loaded = runtime.load_case(session, ctx, case_id)
    waiting = [
        t
        for t in loaded.workflow.get_tasks(state=TaskState.WAITING)
        if isinstance(getattr(t.task_spec, "event_definition", None), MessageEventDefinition)
        and t.task_spec.event_definition.name == name
    ]
    if not waiting:
        if name not in _message_names(loaded):
            raise InvalidInput(f"pathway {loaded.pathway.key} has no message named {name!r}")
        raise Conflict(f"case {case_id} is not waiting for message {name!r}")
    now = ctx.clock.now(session)
    event = BpmnEvent(waiting[0].task_spec.event_definition, payload=payload or {})
    loaded.record("message_delivered", actor, now, bpmn_id=waiting[0].task_spec.bpmn_id, message=name,
                  fields=sorted(payload or {}))
    runtime.settle(loaded, now, lambda: loaded.workflow.send_event(event), actor=actor)
    runtime.save(session, ctx, loaded, now, actor)
    return loaded.case


def retry_incident(
    session: Session, ctx: EngineContext, case_id: int, *, actor: str, data: dict[str, Any] | None = None
) -> Case:
    """Re-run the tasks an error stopped, optionally after correcting case data."""
    loaded = runtime.load_case(session, ctx, case_id)
    if loaded.case.status != "incident":
        raise Conflict(f"case {case_id} has no open incident")
    now = ctx.clock.now(session)
    failed = runtime.reopen_failed_tasks(loaded)
    for task in failed:
        task.data.update(data or {})
    loaded.case.status, loaded.case.incident = "active", None
    loaded.record("incident_retried", actor, now, fields=sorted(data or {}))
    runtime.settle(loaded, now, actor=actor)
    runtime.save(session, ctx, loaded, now, actor)
    return loaded.case


def _message_names(loaded: runtime.LoadedCase) -> set[str]:
    specs = [loaded.pathway.spec, *loaded.pathway.subprocess_specs.values()]
    return {
        ts.event_definition.name
        for spec in specs
        for ts in spec.task_specs.values()
        if isinstance(getattr(ts, "event_definition", None), MessageEventDefinition)
    }


def _active_task(session: Session, task_id: int) -> HumanTask:
    task = session.get(HumanTask, task_id)
    _check_active(task, task_id)
    return task


def _active_task_and_case(session: Session, task_id: int) -> tuple[HumanTask, Case]:
    """The task and its case: those the session holds already (a request that checked access just read
    both), else in one query.

    Taking them from the session gives the very objects the query would: a row already in the session
    is not overwritten by a new read of it. A change made meanwhile by someone else shows at the save,
    as the conflict of its version check.
    """
    task = _held(session, HumanTask, task_id)
    case = _held(session, Case, task.case_id) if task is not None else None
    if case is None:
        found = session.execute(_TASK_AND_CASE, {"task_id": task_id}).first()
        task, case = found if found is not None else (None, None)
    _check_active(task, task_id)
    return task, case


def _held(session: Session, model: type, key: int):
    found = session.identity_map.get(session.identity_key(model, key))
    return None if found is None or inspect(found).expired_attributes else found


# Built once: building the statement costs as much as running it.
_TASK_AND_CASE = select(HumanTask, Case).join(Case, Case.id == HumanTask.case_id).where(
    HumanTask.id == bindparam("task_id"))


def _check_active(task: HumanTask | None, task_id: int) -> None:
    if task is None:
        raise NotFound(f"task {task_id} does not exist")
    if task.state not in ("open", "claimed"):
        raise Conflict(f"task {task_id} is already {task.state}")


def _log_task_event(session: Session, ctx: EngineContext, task: HumanTask, kind: str, actor: str, **summary) -> None:
    now = ctx.clock.now(session)
    session.add(CaseEvent(case_id=task.case_id, at=now, actor=actor, kind=kind, bpmn_id=task.bpmn_id,
                          task_uuid=task.task_uuid, summary={"name": task.name, **summary}))
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict(f"task {task.id} was changed by someone else; reload") from exc
