"""« Demandes reçues »: the provider's queue of prescriptions and self-requests, answered here; and the
prescriptions the user's structure sent, with their state.

Accept and refuse (with one of DORA's reasons) are :func:`engine.prescriptions.accept` and
:func:`~engine.prescriptions.refuse`, for the provider's référents and supervisors. With htmx the
answered request is swapped in place; without it, the form posts and the page comes back.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from api.extensions import db
from api.v1.prescriptions import visible_prescription
from engine import prescriptions
from engine.db import transaction
from engine.directory import User
from engine.errors import Conflict, InvalidInput
from engine.prescriptions import OPEN, REFUSAL_REASONS, STATES, Prescription
from web import catalogue, labels, queries
from web.common import engine_context, is_htmx, log_access, log_accesses, login_required, safe_next
from web.offers import professional
from web.tasks import ID

bp = Blueprint("prescriptions", __name__, url_prefix="/prescriptions")

PER_PAGE = 20
VIEWS = {"recues": "Demandes reçues", "envoyees": "Prescriptions envoyées"}
STATE_FILTERS = {OPEN: "En attente de réponse", **{k: v for k, v in STATES.items() if k != OPEN}, "toutes": "Toutes"}
# The engine's field names → the form's, and what to say in French.
FORM_FIELDS = {"reason": "motif", "message": "precisions"}
FIELD_ERRORS = {"motif": "Choisissez le motif du refus dans la liste.",
                "precisions": f"Précisez le motif du refus ({prescriptions.MAX_MESSAGE} caractères au plus)."}


@bp.get("")
@login_required
def index():
    user = professional()
    view = request.args.get("vue", "recues")
    state = request.args.get("etat", OPEN if view == "recues" else "toutes")
    if view not in VIEWS or state not in STATE_FILTERS:
        abort(400, description="Filtre inconnu : revenez à la liste des demandes.")
    return render_template("demandes.html", **_page(user, view, state))


@bp.post(f"/<{ID}:prescription_id>/accepter")
@login_required
def accept(prescription_id: int):
    return _answer(prescription_id, "prescription.accept", lambda user, form: prescriptions.accept(
        db.session, engine_context(), user, prescription_id), "Demande acceptée : la réponse est transmise.")


@bp.post(f"/<{ID}:prescription_id>/refuser")
@login_required
def refuse(prescription_id: int):
    return _answer(prescription_id, "prescription.refuse", lambda user, form: prescriptions.refuse(
        db.session, engine_context(), user, prescription_id, form.get("motif", ""),
        form.get("precisions", "").strip() or None), "Demande refusée : le motif est transmis.")


def _answer(prescription_id: int, action: str, command, success: str):
    """Accept or refuse; htmx gets the request's card back, a plain form the page (or a redirection)."""
    user = professional()
    item = visible_prescription(user, prescription_id, action)
    if not prescriptions.may_answer(user, item):
        abort(403, description="Seuls les référents et encadrants du prestataire répondent à cette demande.")
    errors = {}
    try:
        with transaction(db.session):
            command(user, request.form)
            log_access(user, item.case_id, action, detail=f"prescription {prescription_id}")
    except InvalidInput as exc:
        errors = _form_errors(exc)
    except Conflict as exc:
        errors = {"": labels.engine_message(str(exc))}
    if is_htmx():
        row = catalogue.prescription_rows(db.session, [db.session.get(Prescription, prescription_id)])[0]
        return render_template("_demande_maj.html", p=row, view="recues", reasons=REFUSAL_REASONS, errors=errors,
                               values=request.form, message=None if errors else success, waiting=_waiting(user))
    if "" in errors:  # answered or expired meanwhile: the list says how it stands now
        flash(errors[""], "erreur")
    elif errors:
        page = _page(user, "recues", OPEN, errors={prescription_id: errors}, values={prescription_id: request.form})
        return render_template("demandes.html", **page), 422
    else:
        flash(success, "succes")
    return redirect(safe_next(request.form.get("suivant"), url_for("web.prescriptions.index")), code=303)


def _page(user: User, view: str, state: str, *, errors: dict | None = None, values: dict | None = None) -> dict:
    column = Prescription.structure_id if view == "recues" else Prescription.prescriber_structure_id
    query = prescriptions.visible_prescriptions(user).where(column == user.structure_id)
    if state != "toutes":
        query = query.where(Prescription.state == state)
    query = query.order_by(Prescription.created_at.desc(), Prescription.id.desc())
    total = queries.count(db.session, query)
    pages = max(1, -(-total // PER_PAGE))
    raw = request.args.get("page", "1")
    page = min(int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1, pages)
    found = list(db.session.scalars(query.limit(PER_PAGE).offset((page - 1) * PER_PAGE)))
    with transaction(db.session):  # the queue shows the persons of these cases: each read is logged
        log_accesses(user, sorted({p.case_id for p in found if p.case_id}), "prescription.list")
    return {"view": view, "state": state, "views": VIEWS, "states": STATE_FILTERS, "waiting": _waiting(user),
            "rows": catalogue.prescription_rows(db.session, found), "total": total, "page": page, "pages": pages,
            "reasons": REFUSAL_REASONS, "errors": errors or {}, "values": values or {}}


def _waiting(user: User) -> int:
    """Requests received by the user's structure still awaiting an answer."""
    return queries.count(db.session, prescriptions.visible_prescriptions(user).where(
        Prescription.structure_id == user.structure_id, Prescription.state == OPEN))


def _form_errors(exc: InvalidInput) -> dict[str, str]:
    """The engine's field errors on the refusal form's fields, in French ("" for the form as a whole)."""
    errors = {}
    for error in exc.errors:
        name = FORM_FIELDS.get(str(error.get("field")))
        errors[name or ""] = FIELD_ERRORS[name] if name else labels.field_message(str(error.get("message")))
    return errors or {"": labels.engine_message(str(exc))}
