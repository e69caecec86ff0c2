"""Supervision pages: « Tâches en retard » (board, CSV export, reassignment) and « Indicateurs » (charts).

For supervisors only. The board and the figures are engine.supervision's, scoped
by who asks: a structure's supervisor sees their structure, the Département pilot
the territory (initials only, unless engine.access lets them open the case).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from flask import (Blueprint, Response, abort, flash, redirect, render_template, request, stream_with_context,
                   url_for)

from api.extensions import db
from engine import supervision
from engine.db import transaction
from engine.directory import User
from engine.errors import Conflict, InvalidInput, NotFound
from engine.supervision import BoardFilters, BoardRow
from web import labels, queries
from web.common import current_user, engine_context, is_htmx, log_access, login_required, now, safe_next
from web.tasks import ID, task_for

bp = Blueprint("supervision", __name__, url_prefix="/supervision")

PER_PAGE = 50
MAX_AGE_DAYS = 3660
ID_MAX = 2**63 - 1
CSV_HEADERS = ("Tâche", "Parcours", "Structure", "Personne", "Échéance", "Retard (jours)", "Niveau d'escalade",
               "Attribuée à", "N° de tâche", "N° de dossier")


def _supervisor() -> User:
    user = current_user()
    if user.role != "supervisor":
        abort(403, description="Le suivi des retards est réservé aux encadrants de structure et au pilote SPIE.")
    return user


@bp.get("")
@login_required
def board():
    user = _supervisor()
    form = _FilterForm(user)
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1
    total, rows = queries.Count(0), []
    if not form.errors:
        current = now()
        # The pilot's board is the territory: counted up to the bound, shown « 1 000+ » beyond it.
        total = queries.Count(supervision.count_overdue(db.session, user, current, form.filters,
                                                        cap=queries.COUNT_CAP))
        rows = supervision.overdue_page(db.session, user, current, form.filters, page=page, per_page=PER_PAGE)
    return render_template(
        "supervision.html", form=form, total=total, rows=_display(user, rows), pilot=supervision.is_pilot(user),
        **queries.pager(total, page, len(rows), PER_PAGE),
    ), 400 if form.errors else 200


@bp.get("/export.csv")
@login_required
def export():
    user = _supervisor()
    form = _FilterForm(user)
    if form.errors:
        abort(400, description="Filtre refusé : corrigez-le sur la page « Tâches en retard » avant d'exporter.")
    current = now()
    total = supervision.count_overdue(db.session, user, current, form.filters)
    with transaction(db.session):
        log_access(user, None, "supervision.export", detail=f"rows={total}; {form.describe()}"[:255])
    filename = f"taches-en-retard-{current.date().isoformat()}.csv"
    return Response(stream_with_context(_csv(user.id, current, form.filters)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.post(f"/taches/<{ID}:task_id>/attribuer")
@login_required
def reassign(task_id: int):
    """Give a task of the supervisor's structure to one of its référents (escalations: to a supervisor)."""
    user = _supervisor()
    task = task_for(user, task_id, "task.assign")
    name, case_id = task.name, task.case_id
    assignee_id, version = _bounded_int(request.form.get("referent")), _bounded_int(request.form.get("version"))
    error = True
    if assignee_id is None or version is None:
        message = "Choisissez dans la liste la personne à qui attribuer la tâche."
    else:
        try:
            with transaction(db.session):
                task = supervision.reassign(db.session, engine_context(), task_id, assignee_id=assignee_id,
                                            actor=user, expected_version=version)
                log_access(user, case_id, "task.assign", detail=str(task_id))
            message, error = f"Tâche « {name} » attribuée à {db.session.get(User, assignee_id).name}.", False
        except (Conflict, InvalidInput, NotFound) as exc:
            message = labels.engine_message(str(exc))
    if is_htmx():
        row = supervision.board_row(db.session, user, now(), task_id)
        return render_template("_retard_maj.html", item=_display(user, [row])[0] if row else None, task_id=task_id,
                               message=message, error=error, pilot=supervision.is_pilot(user))
    flash(message, "erreur" if error else "succes")
    return redirect(safe_next(request.form.get("suivant"), url_for("web.supervision.board")), code=303)


@bp.get("/tableaux")
@login_required
def indicators():
    user = _supervisor()
    current = now()
    names = dict(queries.pathway_choices(db.session))
    by_structure = [(c.label, c.open, c.overdue) for c in supervision.counts_by_structure(db.session, user, current)]
    by_pathway = [(names.get(c.key, c.key), c.open, c.overdue)
                  for c in supervision.counts_by_pathway(db.session, user, current)]
    return render_template("indicateurs.html", now_shown=current, pilot=supervision.is_pilot(user), charts=[
        _chart("structures", "Par structure", "Structure", by_structure),
        _chart("parcours", "Par parcours", "Parcours", by_pathway),
    ])


def _chart(key: str, title: str, column: str, counts: list[tuple[str, int, int]]) -> dict:
    """A bar chart's table rows, and the same figures for supervision.js (the canvas's data-graphique)."""
    return {"key": key, "title": title, "column": column, "counts": counts,
            "data": {"libelles": [c[0] for c in counts], "ouvertes": [c[1] for c in counts],
                     "retard": [c[2] for c in counts]}}


class _FilterForm:
    """The board's filters from the query string, with a French message per refused value (values kept)."""

    def __init__(self, user: User):
        args = request.args
        self.structures = supervision.structure_choices(db.session, user)
        self.pathways = queries.pathway_choices(db.session)
        self.values = {name: args.get(name, "").strip() for name in ("structure", "parcours", "age", "escalade")}
        self.values["relais"] = "oui" if args.get("relais") == "oui" else ""
        self.errors: dict[str, str] = {}
        structure = self._choice("structure", {str(i): i for i, _ in self.structures},
                                 "Choisissez une structure de la liste.")
        pathway = self._choice("parcours", {k: k for k, _ in self.pathways}, "Choisissez un parcours de la liste.")
        level = self._choice("escalade", {str(n): n for n in labels.ESCALATION_LEVELS},
                             "Choisissez un niveau d'escalade de la liste.")
        age = self.values["age"]
        if age and not (age.isdigit() and int(age) <= MAX_AGE_DAYS):
            self.errors["age"] = f"Indiquez un nombre entier de jours, entre 0 et {MAX_AGE_DAYS}."
        self.filters = BoardFilters(structure_id=structure, pathway=pathway, escalation_level=level,
                                    min_age_days=int(age) if "age" not in self.errors and age else 0,
                                    hand_offs_only=bool(self.values["relais"]))

    def _choice(self, name: str, allowed: dict, message: str):
        value = self.values[name]
        if value and value not in allowed:
            self.errors[name] = message
            return None
        return allowed.get(value)

    def params(self) -> dict[str, str]:
        """The filters for links (pages, export): only those set."""
        return {name: value for name, value in self.values.items() if value}

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.params().items()) or "no filter"


def _display(user: User, rows: list[BoardRow]) -> list[dict]:
    """What a row of the board shows, with the people the task may be given to (its structure, its audience)."""
    mine = [r for r in rows if r.structure_id == user.structure_id]
    assignable = supervision.assignable_users(db.session, [r.structure_id for r in mine])
    shown = []
    for row in rows:
        may_reassign = row.structure_id == user.structure_id
        role = supervision.assignable_role(row.audience)
        shown.append({
            "row": row, "may_reassign": may_reassign, "role": role,
            "choices": assignable.get((row.structure_id, role), []) if may_reassign else [],
            "person": row.person_name or row.initials or "—",
            "escalation": labels.ESCALATION_LEVELS.get(row.escalation_level, str(row.escalation_level)),
        })
    return shown


def _csv(user_id: int, current: datetime, filters: BoardFilters) -> Iterator[str]:
    """The board as CSV for Excel: UTF-8 with a byte order mark, « ; » between fields, 500 rows per chunk.

    It runs while the response is sent, in a session of its own: the user is read again there.
    """
    user = db.session.get(User, user_id)
    rows = supervision.iter_overdue(db.session, user, current, filters)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(CSV_HEADERS)
    for count, row in enumerate(rows, 1):
        writer.writerow([_cell(value) for value in (
            row.name, row.pathway_name, row.structure_name or "", row.person_name or row.initials,
            labels.short_date_fr(row.due_at), row.late_days,
            labels.ESCALATION_LEVELS.get(row.escalation_level, row.escalation_level),
            row.assignee_name or row.assignee or "", row.task_id, row.case_id)])
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _cell(value):
    """A text cell that a spreadsheet would run as a formula (=, +, -, @) is prefixed with an apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _bounded_int(value: str | None) -> int | None:
    """A database identifier or version from a form: 1 .. 2^63-1, else None."""
    value = (value or "").strip()
    return int(value) if value.isdigit() and 0 < int(value) <= ID_MAX else None
