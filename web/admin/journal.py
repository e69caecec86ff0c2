"""« Journal des accès »: who read or changed which case, when, from where (:class:`engine.access.AccessLog`),
and the administrators' changes to accounts and the directory (:class:`engine.admin_log.AdminEvent`);
filtered by professional, case, dates and outcome, newest first.
"""
from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import or_, select

from api.extensions import db
from api.v1.common import AUDIT_CASE_ID_MAX
from engine import admin_log
from engine.access import AccessLog
from engine.directory import User, user_by_email
from web.admin import wording
from web.admin.common import date_value, day_end, day_start, id_value, page_of, read_filters, structure_choices

bp = Blueprint("journal", __name__, url_prefix="/journal")

PER_PAGE = 50
VIEWS = {"acces": "Accès aux dossiers", "administration": "Actions d'administration"}


@bp.get("")
def index():
    filters = read_filters("vue", "utilisateur", "dossier", "du", "au", "resultat")
    values = filters.values
    view = values["vue"] if values["vue"] in VIEWS else "acces"
    values["vue"] = view
    user = None
    if values["utilisateur"]:
        user = user_by_email(db.session, values["utilisateur"])
        if user is None:
            filters.error("utilisateur", "Aucun compte n'a cette adresse électronique.")
    case_id = id_value(filters, "dossier", "Indiquez un numéro de dossier (un nombre entier).")
    since, until = date_value(filters, "du"), date_value(filters, "au")
    if since and until and until < since:
        filters.error("au", "La date de fin précède la date de début.")
    if values["resultat"] and values["resultat"] not in wording.OUTCOMES:
        filters.error("resultat", "Choisissez un des résultats proposés.")
    page = rows = None
    if not filters.errors:
        if view == "acces":
            page = page_of(_access_query(user, case_id, since, until, values["resultat"]), PER_PAGE)
            rows = _access_rows(page.items)
        else:
            page = page_of(_admin_query(user, since, until), PER_PAGE)
            rows = _admin_rows(page.items)
    return render_template("admin/journal.html", filters=filters, view=view, views=VIEWS, page=page, rows=rows,
                           outcomes=wording.OUTCOMES), 400 if filters.errors else 200


def _access_query(user: User | None, case_id: int | None, since, until, outcome: str):
    query = select(AccessLog).order_by(AccessLog.at.desc(), AccessLog.id.desc())
    if user is not None:
        query = query.where(AccessLog.user_id == user.id)
    if case_id is not None:
        # An id too large for the column was logged in ``detail`` instead (api.v1.common.log_access).
        query = query.where(AccessLog.case_id == case_id if case_id <= AUDIT_CASE_ID_MAX
                            else or_(AccessLog.detail == f"case {case_id}",
                                     AccessLog.detail.startswith(f"case {case_id}; ")))
    if since is not None:
        query = query.where(AccessLog.at >= day_start(since))
    if until is not None:
        query = query.where(AccessLog.at < day_end(until))
    if outcome:
        query = query.where(AccessLog.outcome == outcome)
    return query


def _admin_query(user: User | None, since, until):
    query = admin_log.events_query(user_id=user.id if user is not None else None)
    if since is not None:
        query = query.where(admin_log.AdminEvent.at >= day_start(since))
    if until is not None:
        query = query.where(admin_log.AdminEvent.at < day_end(until))
    return query


def _access_rows(entries: list[AccessLog]) -> list[dict]:
    ids = {e.user_id for e in entries if e.user_id is not None}
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    return [{"entry": e, "user": users.get(e.user_id), "action": wording.access_action(e.action),
             "outcome": wording.OUTCOMES.get(e.outcome, e.outcome)} for e in entries]


def _admin_rows(events: list[admin_log.AdminEvent]) -> list[dict]:
    names = {int(k): v for k, v in structure_choices()}
    return [{"event": e, "action": wording.ADMIN_ACTIONS.get(e.action, e.action),
             "detail": wording.admin_detail(e.action, e.detail, names)} for e in events]
