"""A task: its page and form (built from the form's JSON Schema), claim, release, complete."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from api.extensions import db
from api.presenters import structures_by_id, task_out
from engine import access, cases, runtime
from engine.db import transaction
from engine.directory import User
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import Case, HumanTask
from web import forms, labels, queries
from web.common import current_user, engine_context, is_htmx, log_access, login_required, now, safe_next
from web.inbox import task_rows

bp = Blueprint("tasks", __name__, url_prefix="/taches")

# A database identifier in a path: 1 .. 2^63-1, anything else matches no page.
ID = "int(min=1, max=9223372036854775807)"


@bp.get(f"/<{ID}:task_id>")
@login_required
def show(task_id: int):
    user = current_user()
    task = task_for(user, task_id, "task.read", with_state=True)
    with transaction(db.session):
        log_access(user, task.case_id, "task.read", detail=str(task_id))
    return render_template("tache.html", **_page(user, task))


@bp.post(f"/<{ID}:task_id>")
@login_required
def complete(task_id: int):
    user = current_user()
    task = task_for(user, task_id, "task.complete", with_state=True)
    schema = _schema(task)
    action = request.form.get("_action", "")
    if action.startswith(forms.ADD_ROW):  # "Ajouter une ligne": show the form again, one row longer
        page = _page(user, task, schema=schema, values=request.form, add_row=action[len(forms.ADD_ROW):])
        return render_template("tache.html", **page)
    if task.state != "claimed" or task.assignee != user.email:
        message = ("Prenez d'abord cette tâche : elle n'est pas à votre nom." if task.state in ("open", "claimed")
                   else "Cette tâche est déjà terminée ou annulée.")
        return render_template("tache.html", **_page(user, task, schema=schema, values=request.form,
                                                     message=message)), 409
    data, unreadable = forms.parse(schema or {}, request.form)
    errors = forms.merge_errors(forms.validate(schema, data) if schema else {}, unreadable)
    if errors:
        return render_template("tache.html", **_page(user, task, schema=schema, values=request.form,
                                                     errors=errors)), 422
    name, case_id = task.name, task.case_id
    try:
        with transaction(db.session):
            cases.complete_task(db.session, engine_context(), task_id, data, user=user.email)
            log_access(user, case_id, "task.complete", detail=str(task_id))
    except InvalidInput as exc:
        errors = {str(e.get("field") or "").replace("/", "."): [labels.field_message(str(e.get("message") or ""))]
                  for e in exc.errors} or {"": [labels.engine_message(str(exc))]}
        return render_template("tache.html", **_page(user, task, schema=schema, values=request.form,
                                                     errors=errors)), 422
    except Conflict as exc:
        return render_template("tache.html", **_page(user, task, schema=schema, values=request.form,
                                                     message=labels.engine_message(str(exc)))), 409
    flash(f"Tâche « {name} » validée.", "succes")
    still_visible = db.session.scalar(access.visible_cases(user).with_only_columns(Case.id)
                                      .where(Case.id == case_id)) is not None
    if still_visible:
        return redirect(url_for("web.cases.show", case_id=case_id), code=303)
    return redirect(url_for("web.inbox.index"), code=303)


@bp.post(f"/<{ID}:task_id>/prendre")
@login_required
def claim(task_id: int):
    return _command(task_id, "task.claim", cases.claim_task,
                    "Tâche prise : elle est à votre nom, dans « Mes tâches ».")


@bp.post(f"/<{ID}:task_id>/liberer")
@login_required
def release(task_id: int):
    return _command(task_id, "task.release", cases.release_task,
                    "Tâche libérée : elle revient dans la file de la structure.")


def _command(task_id: int, action: str, command, success: str):
    """Claim or release; htmx gets the inbox row back, a plain form a redirection."""
    user = current_user()
    task = task_for(user, task_id, action)
    error = False
    try:
        with transaction(db.session):
            command(db.session, engine_context(), task_id, user=user.email)
            log_access(user, task.case_id, action, detail=str(task_id))
        message = success
    except Conflict as exc:
        message, error = labels.engine_message(str(exc)), True
    task = db.session.get(HumanTask, task_id)
    if is_htmx() and request.form.get("contexte") == "liste":
        pathway = request.form.get("parcours") or None
        return render_template("_ligne_maj.html", row=task_rows(user, [task])[0], message=message, error=error,
                               counts=queries.counts(db.session, user, now(), pathway), pathway=pathway)
    flash(message, "erreur" if error else "succes")
    return redirect(safe_next(request.form.get("suivant"), url_for("web.tasks.show", task_id=task_id)), code=303)


def task_for(user: User, task_id: int, action: str, *, with_state: bool = False) -> HumanTask:
    """The task if ``user`` may work it: 404 when they may not see its case, 403 when they only see it;
    ``with_state`` when the page runs or reads the workflow (access.task_and_visibility)."""
    task, visible = access.task_and_visibility(db.session, user, task_id, with_state=with_state)
    if not visible:
        with transaction(db.session):
            log_access(user, task.case_id if task else None, action, outcome="denied", detail=str(task_id))
        raise NotFound(f"task {task_id} does not exist")
    if not access.may_work_task(user, task) and task.assignee != user.email:
        abort(403, description="Cette tâche revient à une autre structure ou à ses encadrants.")
    return task


def _schema(task: HumanTask) -> dict | None:
    if not task.form_key:
        return None
    version_id = db.session.scalar(select(Case.pathway_version_id).where(Case.id == task.case_id))
    return queries.form_schema(db.session, engine_context().specs, version_id, task.form_key)


def _current_data(task: HumanTask, schema: dict | None) -> dict:
    """The task's current values for the form's fields only: the rest of the case data stays private."""
    if task.state not in ("open", "claimed") or not schema:
        return {}  # nothing to read from the workflow
    with runtime.reading(db.session, engine_context(), task.case_id) as loaded:
        return runtime.form_values(loaded, task, schema)


_LOAD = object()


def _page(user: User, task: HumanTask, *, schema=_LOAD, values=None, errors=None, add_row: str | None = None,
          message: str | None = None) -> dict:
    """What tache.html shows: the task, its form (with ``values`` and ``errors``, else the task's data)."""
    if schema is _LOAD:
        schema = _schema(task)
    if values is None:
        values = forms.values_from_data(schema or {}, _current_data(task, schema))
    errors = errors or {}
    fields = forms.build(schema, values, errors, add_row) if schema else []
    shown = {f.name for top in fields for f in top.walk()}
    summary = [(forms.first_input_id(f), f.full_label, message_) for f in forms.fields_with_errors(fields)
               for message_ in f.errors]
    summary += [(None, None, m) for name, messages in errors.items() if name not in shown for m in messages]
    current = now()
    row = task_out(task, structures_by_id(db.session, [task.structure_id]), current)
    row.update(queries.case_labels(db.session, [task.case_id]).get(task.case_id, {}))
    row["due_text"] = labels.due_text(task.due_at, current)
    active = task.state in ("open", "claimed")
    return {
        "task": row, "schema": schema, "fields": fields, "summary": summary, "message": message,
        "editable": active and task.state == "claimed" and task.assignee == user.email,
        "may_claim": active and task.state == "open" and access.may_work_task(user, task),
        "may_release": task.state == "claimed" and task.assignee == user.email,
        "active": active,
    }
