"""The inbox: list, read, claim, release, assign (supervisors) and complete tasks."""
from __future__ import annotations

from flask import abort
from sqlalchemy import select

from api.auth import current_user
from api.extensions import db
from api.presenters import structures_by_id, task_out
from api.schemas import CaseOut, TaskAssign, TaskComplete, TaskDetail, TaskOut, TaskQuery
from api.v1.common import CAPPED_TOTAL_COUNT, COUNT_CAP, Blueprint, case_answer, engine_context, log_access, paginate
from engine import access, cases, runtime, supervision
from engine.db import transaction
from engine.directory import User
from engine.errors import NotFound
from engine.models import Case, HumanTask

bp = Blueprint("tasks", __name__, url_prefix="/api/v1/tasks", description="Tasks (inbox)")


@bp.get("")
@bp.arguments(TaskQuery, location="query")
@bp.response(200, TaskOut(many=True), headers=CAPPED_TOTAL_COUNT)
@bp.problems(401, 422)
def list_tasks(args):
    user = current_user()
    now = engine_context().clock.now(db.session)
    if args["scope"] == "structure" and args["status"] == "open":
        query = select(HumanTask).where(access.queue(user))
    else:
        query = select(HumanTask).where(HumanTask.case_id.in_(access.visible_cases(user).with_only_columns(Case.id)))
        if args["scope"] == "mine":
            owner = HumanTask.assignee if args["status"] == "open" else HumanTask.completed_by
            query = query.where(owner == user.email)
        else:
            query = query.where(HumanTask.structure_id == user.structure_id,
                                HumanTask.audience.in_(access.audiences(user)))
        query = query.where(HumanTask.state.in_(access.OPEN if args["status"] == "open" else ("completed",)))
    if args["overdue"]:
        query = query.where(HumanTask.due_at < now)
    # NULLS LAST, not "due_at IS NULL" first: the partial indexes on open tasks give this order (no sort).
    query = query.order_by(HumanTask.due_at.asc().nulls_last(), HumanTask.id)
    tasks, headers = paginate(query, args, count_cap=COUNT_CAP)
    structures = structures_by_id(db.session, [t.structure_id for t in tasks])
    return [task_out(t, structures, now) for t in tasks], 200, headers


@bp.get("/<id:task_id>")
@bp.response(200, TaskDetail)
@bp.problems(401, 403, 404)
def get_task(task_id: int):
    user = current_user()
    task = _task_for(user, task_id, "task.read", with_state=True)
    ctx = engine_context()
    with runtime.reading(db.session, ctx, task.case_id) as loaded:
        schema = loaded.pathway.forms.get(task.form_key) if task.form_key else None
        data = runtime.form_values(loaded, task, schema)
    with transaction(db.session):
        log_access(user, task.case_id, "task.read", detail=str(task_id))
    out = task_out(task, structures_by_id(db.session, [task.structure_id]), ctx.clock.now(db.session))
    return {**out, "form_schema": schema, "data": data}


@bp.post("/<id:task_id>/claim")
@bp.response(200, TaskOut)
@bp.problems(401, 403, 404, 409)
def claim(task_id: int):
    return _task_command(task_id, "task.claim", lambda task, user: cases.claim_task(
        db.session, engine_context(), task.id, user=user.email))


@bp.post("/<id:task_id>/release")
@bp.response(200, TaskOut)
@bp.problems(401, 403, 404, 409)
def release(task_id: int):
    return _task_command(task_id, "task.release", lambda task, user: cases.release_task(
        db.session, engine_context(), task.id, user=user.email))


@bp.post("/<id:task_id>/assign")
@bp.arguments(TaskAssign)
@bp.response(200, TaskOut)
@bp.problems(400, 401, 403, 404, 409, 413, 422)
def assign(body, task_id: int):
    if current_user().role != "supervisor":
        abort(403, description="only supervisors reassign tasks")

    def command(task: HumanTask, user: User) -> HumanTask:
        return supervision.reassign(db.session, engine_context(), task.id, assignee_id=body["user_id"], actor=user)

    return _task_command(task_id, "task.assign", command)


@bp.post("/<id:task_id>/complete")
@bp.arguments(TaskComplete)
@bp.response(200, CaseOut)
@bp.problems(400, 401, 403, 404, 409, 413, 422)
def complete(body, task_id: int):
    user = current_user()
    task = _task_for(user, task_id, "task.complete", with_state=True)
    ctx = engine_context()
    with transaction(db.session):
        case = cases.complete_task(db.session, ctx, task.id, body["data"], user=user.email)
        log_access(user, task.case_id, "task.complete", detail=str(task_id))
        return case_answer(case)


def _task_command(task_id: int, action: str, command) -> dict:
    user = current_user()
    task = _task_for(user, task_id, action)
    with transaction(db.session):
        task = command(task, user)
        log_access(user, task.case_id, action, detail=str(task_id))
    now = engine_context().clock.now(db.session)
    return task_out(task, structures_by_id(db.session, [task.structure_id]), now)


def _task_for(user: User, task_id: int, action: str, *, with_state: bool = False) -> HumanTask:
    """The task if ``user`` may work it (404 when they may not even see it, 403 when they only see it);
    ``with_state`` when the view runs or reads the workflow (access.task_and_visibility)."""
    task, visible = access.task_and_visibility(db.session, user, task_id, with_state=with_state)
    if not visible:
        with transaction(db.session):
            log_access(user, task.case_id if task else None, action, outcome="denied", detail=str(task_id))
        raise NotFound(f"task {task_id} does not exist")
    if not access.may_work_task(user, task) and task.assignee != user.email:
        with transaction(db.session):
            log_access(user, task.case_id, action, outcome="denied", detail=str(task_id))
        abort(403, description="this task belongs to another structure or to its supervisors")
    return task

