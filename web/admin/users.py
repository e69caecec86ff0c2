"""« Utilisateurs »: the accounts, searched and filtered; create one, change its role or structure,
deactivate or reactivate it, reset its password. Every change goes to the administration log
(:mod:`engine.user_admin`); a password is shown once, on the page that answers the form, never stored in clear.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, or_, select

from api.auth import now_utc
from api.extensions import db
from engine import admin_log, user_admin
from engine.db import transaction
from engine.directory import Structure, User
from engine.errors import Conflict, InvalidInput
from web import labels
from web.admin import wording
from web.admin.common import contains, page_of, read_filters, structure_choices
from web.common import current_user, engine_context
from web.forms import Field
from web.tasks import ID

bp = Blueprint("users", __name__, url_prefix="/utilisateurs")

PER_PAGE = 25
STATUSES = {"actifs": "Actifs", "desactives": "Désactivés"}
HISTORY_LENGTH = 50


@bp.get("")
def index():
    filters = read_filters("q", "structure", "role", "statut")
    values = filters.values
    structures = structure_choices()
    if values["structure"] and values["structure"] not in dict(structures):
        filters.error("structure", "Choisissez une structure de la liste.")
    if values["role"] and values["role"] not in labels.ROLES:
        filters.error("role", "Choisissez un des rôles proposés.")
    if values["statut"] and values["statut"] not in STATUSES:
        filters.error("statut", "Choisissez un des statuts proposés.")
    page = None
    if not filters.errors:
        page = page_of(_users_query(values["q"], values["structure"], values["role"], values["statut"]), PER_PAGE)
    return render_template("admin/utilisateurs.html", filters=filters, page=page, structures=structures,
                           statuses=STATUSES), 400 if filters.errors else 200


@bp.get("/nouveau")
def new():
    structure = request.args.get("structure", "")
    values = {"structure_id": structure if structure in dict(structure_choices()) else "", "role": "referent"}
    return render_template("admin/utilisateur_nouveau.html", **_form_page(values, {}))


@bp.post("/nouveau")
def create():
    values = {name: request.form.get(name, "").strip() for name in ("name", "email", "role", "structure_id")}
    errors: dict[str, list[str]] = {}
    structure_id = _structure_id(values["structure_id"], errors)
    if not errors:
        try:
            with transaction(db.session):
                user, generated = user_admin.create_user(
                    db.session, actor=current_user(), email=values["email"], name=values["name"],
                    role=values["role"], structure_id=structure_id, password=request.form.get("password") or None,
                    now=now_utc())
        except InvalidInput as exc:
            errors = wording.account_errors(exc.errors)
    if errors:
        return render_template("admin/utilisateur_nouveau.html", **_form_page(values, errors)), 422
    flash(f"Compte de {user.name} créé.", "succes")
    return render_template("admin/utilisateur.html", **_user_page(user, new_password=generated)), 201


@bp.get(f"/<{ID}:user_id>")
def show(user_id: int):
    return render_template("admin/utilisateur.html", **_user_page(_user(user_id)))


@bp.post(f"/<{ID}:user_id>/modifier")
def update(user_id: int):
    user = _user(user_id)
    values = {"role": request.form.get("role", ""), "structure_id": request.form.get("structure_id", "").strip()}
    errors: dict[str, list[str]] = {}
    structure_id = _structure_id(values["structure_id"], errors)
    if not errors:
        try:
            with transaction(db.session):
                changes = user_admin.update_user(db.session, actor=current_user(), user=user, role=values["role"],
                                                 structure_id=structure_id, now=now_utc())
        except InvalidInput as exc:
            errors = wording.account_errors(exc.errors)
        except Conflict as exc:
            return render_template("admin/utilisateur.html", **_user_page(user, values=values,
                                                                          message=wording.conflict(str(exc)))), 409
    if errors:
        return render_template("admin/utilisateur.html", **_user_page(user, values=values, errors=errors)), 422
    flash(f"Rôle et structure de {user.name} enregistrés." if changes else "Aucun changement : rien n'a été modifié.",
          "succes" if changes else "info")
    return redirect(url_for("web.admin.users.show", user_id=user.id), code=303)


@bp.post(f"/<{ID}:user_id>/desactiver")
def deactivate(user_id: int):
    user = _user(user_id)
    try:
        with transaction(db.session):
            outcome = user_admin.deactivate_user(db.session, engine_context(), actor=current_user(), user=user,
                                                 now=now_utc())
    except Conflict as exc:
        flash(wording.conflict(str(exc)), "erreur")
        return redirect(url_for("web.admin.users.show", user_id=user.id), code=303)
    released = len(outcome.tasks_released)
    flash(f"Compte de {user.name} désactivé : la connexion et les jetons d'API sont refusés dès maintenant."
          + (f" {released} tâche{'s' if released > 1 else ''} prise{'s' if released > 1 else ''} "
             f"{'sont revenues' if released > 1 else 'est revenue'} dans la file de sa structure." if released else ""),
          "succes")
    return redirect(url_for("web.admin.users.show", user_id=user.id), code=303)


@bp.post(f"/<{ID}:user_id>/reactiver")
def reactivate(user_id: int):
    user = _user(user_id)
    with transaction(db.session):
        user_admin.reactivate_user(db.session, actor=current_user(), user=user, now=now_utc())
    flash(f"Compte de {user.name} réactivé : il peut de nouveau se connecter.", "succes")
    return redirect(url_for("web.admin.users.show", user_id=user.id), code=303)


@bp.post(f"/<{ID}:user_id>/mot-de-passe")
def reset_password(user_id: int):
    user = _user(user_id)
    try:
        with transaction(db.session):
            generated = user_admin.reset_password(db.session, actor=current_user(), user=user,
                                                  password=request.form.get("password") or None, now=now_utc())
    except InvalidInput as exc:
        return render_template("admin/utilisateur.html", **_user_page(
            user, errors=wording.account_errors(exc.errors))), 422
    flash(f"Mot de passe de {user.name} réinitialisé ; ses jetons d'API sont révoqués et ses sessions fermées.", "succes")
    return render_template("admin/utilisateur.html", **_user_page(user, new_password=generated))


def _users_query(search: str, structure: str, role: str, status: str):
    """Accounts by name; ``search`` is a piece of the name or of the email address."""
    query = select(User).order_by(func.lower(User.name), User.id)
    if search:
        query = query.where(or_(contains(User.name, search), contains(User.email, search)))
    if structure:
        query = query.where(User.structure_id == int(structure))
    if role:
        query = query.where(User.role == role)
    if status:
        query = query.where(User.active.is_(status == "actifs"))
    return query


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _structure_id(raw: str, errors: dict[str, list[str]]) -> int | None:
    if not raw:
        return None
    if raw.isdigit() and db.session.get(Structure, int(raw)) is not None:
        return int(raw)
    errors["structure_id"] = [wording.account_error("structure_id", "no such structure")]
    return None


def _placement_fields(values: dict, errors: dict) -> list[Field]:
    return [
        Field("choice", "role", "Rôle", "Rôle", required=True, widget="select", value=values.get("role", ""),
              options=list(labels.ROLES.items()), errors=errors.get("role", [])),
        Field("choice", "structure_id", "Structure", "Structure", widget="select",
              hint="Obligatoire, sauf pour un administrateur.", value=values.get("structure_id", ""),
              options=structure_choices(), errors=errors.get("structure_id", [])),
    ]


def _summary(fields: list[Field], errors: dict) -> list[tuple[str, str, str]]:
    """(id of the field, its label, message) for the error summary at the top of the page."""
    summary = [(f.id, f.full_label, message) for f in fields for message in f.errors]
    summary += [("champ-password", wording.ACCOUNT_FIELDS["password"], m) for m in errors.get("password", [])]
    return summary


def _form_page(values: dict, errors: dict) -> dict:
    fields = [
        Field("text", "name", "Prénom et nom", "Prénom et nom", required=True, value=values.get("name", ""),
              errors=errors.get("name", [])),
        Field("email", "email", "Adresse électronique professionnelle", "Adresse électronique", required=True,
              hint="Elle sert d'identifiant de connexion.", value=values.get("email", ""),
              errors=errors.get("email", [])),
        *_placement_fields(values, errors),
    ]
    return {"fields": fields, "password_errors": errors.get("password", []), "summary": _summary(fields, errors)}


def _user_page(user: User, *, values: dict | None = None, errors: dict | None = None, message: str | None = None,
               new_password: str | None = None) -> dict:
    errors = errors or {}
    values = values or {"role": user.role, "structure_id": str(user.structure_id or "")}
    fields = _placement_fields(values, errors)
    events = list(db.session.scalars(admin_log.events_query(user_id=user.id).limit(HISTORY_LENGTH)))
    names = dict(structure_choices())
    history = [{"event": e, "label": wording.ADMIN_ACTIONS.get(e.action, e.action),
                "detail": wording.admin_detail(e.action, e.detail, {int(k): v for k, v in names.items()})}
               for e in events]
    return {
        "account": user, "fields": fields, "password_errors": errors.get("password", []),
        "summary": _summary(fields, errors), "message": message, "new_password": new_password,
        "work": user_admin.case_work(db.session, user), "history": history,
        "is_self": user.id == current_user().id,
    }
