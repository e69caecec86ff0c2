"""The inbox: Mes tâches, File de ma structure, En retard — with counts, a pathway filter and sorting."""
from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from sqlalchemy import select

from api.extensions import db
from api.presenters import structures_by_id, task_out
from engine.directory import User
from engine.models import HumanTask
from web import labels, queries
from web.common import NAV_DESCRIPTIONS, current_user, login_required, now

bp = Blueprint("inbox", __name__)

PER_PAGE = 25
CASE_ROLES = ("referent", "supervisor")


@bp.get("/")
@login_required
def home():
    user = current_user()
    pilot = user.role == "supervisor" and user.structure is not None and user.structure.is_pilot
    if user.role in CASE_ROLES and not pilot:
        return redirect(url_for("web.inbox.index"))
    # Designers, administrators, the pilot: links to their sections.
    return render_template("accueil.html", descriptions=NAV_DESCRIPTIONS)


@bp.get("/taches")
@login_required
def index():
    user = current_user()
    if user.role not in CASE_ROLES:
        abort(403, description="La boîte de tâches est celle des référents et des encadrants.")
    view = request.args.get("vue", "mes-taches")
    sort = request.args.get("tri", "echeance")
    pathway = request.args.get("parcours") or None
    choices = queries.pathway_choices(db.session)
    if view not in queries.VIEWS or sort not in queries.SORTS or (pathway and pathway not in dict(choices)):
        abort(400, description="Filtre inconnu : revenez à la boîte de tâches.")
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1
    current = now()
    query = queries.inbox_query(user, view, current, sort=sort, pathway=pathway)
    counts = queries.counts(db.session, user, current, pathway)
    total = counts[view]  # the tab's count: the sort does not change it
    tasks = list(db.session.scalars(query.limit(PER_PAGE).offset((page - 1) * PER_PAGE)))
    params = {"vue": view, "tri": sort, "parcours": pathway}
    return render_template(
        "boite.html", view=view, sort=sort, pathway=pathway, views=queries.VIEWS, sorts=queries.SORTS,
        pathway_choices=choices, counts=counts, total=total, rows=task_rows(user, tasks), params=params,
        **queries.pager(total, page, len(tasks), PER_PAGE),
    )


def task_rows(user: User, tasks: list[HumanTask]) -> list[dict]:
    """What a row of the inbox shows for each task."""
    current = now()
    structures = structures_by_id(db.session, [t.structure_id for t in tasks])
    cases = queries.case_labels(db.session, [t.case_id for t in tasks])
    assignees = {t.assignee for t in tasks if t.assignee}
    names = dict(db.session.execute(select(User.email, User.name).where(User.email.in_(assignees))).tuples().all()) if assignees else {}
    rows = []
    for task in tasks:
        row = task_out(task, structures, current)
        row.update(cases.get(task.case_id, {}))
        row["due_text"] = labels.due_text(task.due_at, current)
        row["mine"] = task.assignee == user.email
        row["assignee_name"] = names.get(task.assignee)
        rows.append(row)
    return rows
