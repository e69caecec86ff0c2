"""« Catalogue des offres »: search the catalogue; for a case (``?dossier=``), prescribe an offer to its provider.

Opened from a carnet (``/offres?dossier=<id>``), the search starts from the case's commune and the
barriers its diagnostic identified, and each offer a référent may prescribe has « Prescrire »:
a confirmation form (the barrier aimed at, a message to the provider) whose POST is
:func:`engine.prescriptions.prescribe`. Opened from the pathway task « Prescrire une offre »
(``&tache=<id>``), prescribing completes that task too.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from api.extensions import db
from engine import access, offers, prescriptions, runtime
from engine.db import transaction
from engine.directory import Commune, User
from engine.errors import Conflict, InvalidInput
from engine.models import Case, HumanTask
from engine.offers import BARRIERS, CATEGORIES, THEMATIQUES
from engine.paths import FORMS_DIR
from engine.people import Person
from web import catalogue, forms, labels, queries
from web.cases import diagnostic, visible_case
from web.common import current_user, engine_context, log_access, login_required

bp = Blueprint("offers", __name__, url_prefix="/offres")

PER_PAGE = 20
MAX_WORDS = 200
# The fields a référent fills when prescribing: those of the pathway task's form but the offer, chosen here.
CONFIRMATION_FIELDS = ("frein", "message")


@dataclass
class ForCase:
    """The case a search is for: who, where, which barriers, and the prescription task if opened from it."""

    case: Case
    person: str
    commune: str | None
    commune_name: str | None
    barriers: list[str]
    task: HumanTask | None

    @property
    def params(self) -> dict:
        return {"dossier": self.case.id, "tache": self.task.id if self.task else None}


@bp.get("")
@login_required
def index():
    user = professional()
    for_case = case_context(user, "offers.search")
    args = request.args
    searched = "recherche" in args  # the form was sent: its values win over the case's
    values = {
        "mots": args.get("mots", "").strip(),
        "thematique": args.get("thematique", ""),
        "freins": args.getlist("frein") if searched or not for_case else list(for_case.barriers),
        "commune": args.get("commune", "") if searched or not for_case else (for_case.commune or ""),
    }
    commune_choices = catalogue.communes(db.session)
    errors = _search_errors(values, {code for code, _ in commune_choices})
    rows, total, page, pages = [], 0, 1, 1
    if not errors:
        query = offers.search_offers(db.session, thematique=values["thematique"] or None, frein=values["freins"],
                                     commune=values["commune"] or None, q=values["mots"])
        total = queries.count(db.session, query)
        pages = max(1, -(-total // PER_PAGE))
        page = min(_page_number(), pages)
        rows = catalogue.offer_rows(db.session, list(db.session.scalars(
            query.limit(PER_PAGE).offset((page - 1) * PER_PAGE))))
    if for_case is not None:
        with transaction(db.session):
            log_access(user, for_case.case.id, "offers.search")
    params = {"recherche": 1, "mots": values["mots"] or None, "thematique": values["thematique"] or None,
              "frein": values["freins"], "commune": values["commune"] or None,
              **(for_case.params if for_case else {})}
    pending = catalogue.awaiting_answer(catalogue.case_prescriptions(db.session, for_case.case.id)) if for_case else ()
    return render_template(
        "offres.html", values=values, errors=errors, rows=rows, total=total, page=page, pages=pages, params=params,
        for_case=for_case, pending=pending, barriers=BARRIERS, thematiques=catalogue.thematique_choices(),
        communes=commune_choices), 422 if errors else 200


@bp.route("/prescrire", methods=["GET", "POST"])
@login_required
def prescribe():
    """The confirmation form; its POST sends the prescription and goes back to the carnet."""
    user = professional()
    for_case = case_context(user, "prescription.create")
    if for_case is None:
        abort(404)
    offer = offers.offer_by_di_id(db.session, request.args.get("offre", ""))
    if offer is None:
        abort(404)
    schema = confirmation_schema()
    message = None
    if request.method == "GET":
        lifted = offers.barriers_of(offer.thematiques)
        aimed = next((b for b in for_case.barriers if b in lifted), lifted[0] if len(lifted) == 1 else "")
        values, errors = MultiDict({"frein": aimed}), {}
        with transaction(db.session):
            log_access(user, for_case.case.id, "prescription.prepare", detail=offer.di_id)
    else:
        values = request.form
        data, unreadable = forms.parse(schema, values)
        errors = forms.merge_errors(forms.validate(schema, data), unreadable)
        if not errors:
            try:
                with transaction(db.session):
                    sent = prescriptions.prescribe(
                        db.session, engine_context(), user, case_id=for_case.case.id, offer_id=offer.di_id,
                        message=data.get("message"), frein=data.get("frein"),
                        task_id=for_case.task.id if for_case.task else None)
                    log_access(user, for_case.case.id, "prescription.create", detail=f"prescription {sent.id}")
            except InvalidInput as exc:
                errors = {str(e.get("field") or ""): [labels.field_message(str(e.get("message") or ""))]
                          for e in exc.errors} or {"": [labels.engine_message(str(exc))]}
            except Conflict as exc:
                message = labels.engine_message(str(exc))
            else:
                flash(f"Prescription envoyée à {offer.provider.name} : « {offer.name} ». Le prestataire a 30 jours "
                      "pour répondre ; sa réponse s'affichera dans ce dossier.", "succes")
                return redirect(url_for("web.cases.show", case_id=for_case.case.id, _anchor="offres"), code=303)
    fields = forms.build(schema, values, errors)
    summary = [(f.id, f.label, text) for f in forms.fields_with_errors(fields) for text in f.errors]
    summary += [(None, None, text) for name, texts in errors.items() if name not in CONFIRMATION_FIELDS
                for text in texts]
    status = 200 if request.method == "GET" else (409 if message else 422)
    return render_template("prescrire.html", offer=catalogue.offer_rows(db.session, [offer])[0],
                           for_case=for_case, fields=fields, summary=summary, message=message), status


def professional() -> User:
    """Référents and supervisors use the catalogue; others get 403."""
    user = current_user()
    if user.role not in access.CASE_ROLES:
        abort(403, description="Le catalogue des offres est celui des référents et des encadrants.")
    return user


def case_context(user: User, action: str) -> ForCase | None:
    """The case of ``?dossier=`` (404 if the user may not see it) with its diagnostic's barriers."""
    raw = request.args.get("dossier", "")
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        abort(404)
    case = visible_case(user, int(raw), action)
    person = db.session.get(Person, case.person_id) if case.person_id else None
    commune = db.session.get(Commune, case.commune_insee) if case.commune_insee else None
    with runtime.reading(db.session, engine_context(), case.id) as loaded:
        found = diagnostic(user, loaded, case)
    return ForCase(case=case, person=f"{person.first_name} {person.last_name}" if person else f"dossier {case.id}",
                   commune=case.commune_insee, commune_name=commune.name if commune else None,
                   barriers=found["barriers"] if found else [], task=_task(case))


def _task(case: Case) -> HumanTask | None:
    """The case's open prescription task named by ``?tache=``; 404 for any other task."""
    raw = request.args.get("tache", "")
    if not raw:
        return None
    task = db.session.get(HumanTask, int(raw)) if raw.isdigit() and 0 < int(raw) < 2**63 else None
    if (task is None or task.case_id != case.id or task.form_key != prescriptions.PRESCRIPTION_FORM
            or task.state not in ("open", "claimed")):
        abort(404)
    return task


@cache
def confirmation_schema() -> dict:
    """forms/prescription.json without the offer (chosen in the catalogue): the barrier aimed at and the message."""
    schema = json.loads((FORMS_DIR / f"{prescriptions.PRESCRIPTION_FORM}.json").read_text(encoding="utf-8"))
    properties = {key: schema["properties"][key] for key in CONFIRMATION_FIELDS}
    return {**schema, "properties": properties, "required": []}


def _search_errors(values: dict, known_communes: set[str]) -> dict[str, list[str]]:
    errors = {}
    if len(values["mots"]) > MAX_WORDS:
        errors["mots"] = [f"Saisissez au plus {MAX_WORDS} caractères."]
    if values["thematique"] and values["thematique"] not in THEMATIQUES | CATEGORIES:
        errors["thematique"] = ["Choisissez une thématique de la liste."]
    if any(f not in BARRIERS for f in values["freins"]):
        errors["frein"] = ["Choisissez des freins de la liste."]
    if values["commune"] and values["commune"] not in known_communes:
        errors["commune"] = ["Choisissez une commune de la liste."]
    return errors


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1
