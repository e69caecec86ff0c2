"""« Demander une offre »: a person without an account finds an offer by commune and asks its provider.

The rules are the API's (``POST /api/v1/public/requests``): only offers mobilisable by the
persons themselves, open in their commune; minimal data (first name, last name, a way to be
contacted, a message) and explicit consent; the size bound and the rate limit per address of
:func:`api.v1.prescriptions.guard_public_request`; validation by its ``PublicRequestIn`` schema
and by :func:`engine.prescriptions.request_errors`. No account, no session and so no cookie:
the form's CSRF token is signed and dated (:func:`web.csrf.signed_form`), and nothing about
the visitor is logged.
"""
from __future__ import annotations

from flask import Blueprint, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge

from api.extensions import db
from api.v1.prescriptions import PUBLIC_MAX_BYTES, PUBLIC_MAX_MESSAGE, PublicRequestIn, guard_public_request
from engine import offers, prescriptions
from engine.accounts import TooManyAttempts
from engine.db import transaction
from engine.errors import InvalidInput
from engine.offers import USAGERS, Offer
from web import catalogue, csrf
from web.common import engine_context, render_error
from web.forms import Field

bp = Blueprint("public", __name__, url_prefix="/demande")

PURPOSE = "demande"
MAX_SHOWN = 50
MAX_WORDS = 200
MAX_MESSAGE_TEXT = f"{PUBLIC_MAX_MESSAGE:,}".replace(",", "\u202f")  # « 1 000 »
# The API's field names → the form's.
FIELDS = {"first_name": "prenom", "last_name": "nom", "email": "courriel", "phone": "telephone", "message": "message",
          "consent": "consentement", "offer_id": "offre", "commune_insee": "commune"}
# What the API's schema refuses, field by field, in French.
SCHEMA_ERRORS = {
    "first_name": "Indiquez votre prénom (120 caractères au plus).",
    "last_name": "Le nom fait au plus 120 caractères.",
    "email": "Indiquez une adresse électronique valide, par exemple prenom.nom@exemple.fr.",
    "phone": "Indiquez un numéro de téléphone valide, par exemple 06 12 34 56 78.",
    "message": f"Votre message dépasse {MAX_MESSAGE_TEXT} caractères : raccourcissez-le.",
    "commune_insee": "Choisissez votre commune dans la liste.",
    "offer_id": "Choisissez une offre dans la liste.",
    "consent": "Cochez la case pour donner votre accord.",
}
# What the engine refuses (engine.prescriptions.request_errors), field by field, in French.
ENGINE_ERRORS = {
    "consent": "Cochez la case : sans votre accord, la demande ne peut pas être transmise au prestataire.",
    "offer_id": "Cette offre ne peut pas être demandée directement : choisissez-en une dans la liste.",
    "commune_insee": "Cette offre n'est pas proposée dans votre commune : choisissez-en une autre.",
    "email": "Indiquez une adresse électronique ou un numéro de téléphone, pour que le prestataire vous réponde.",
    "message": SCHEMA_ERRORS["message"],
}
TOO_MANY = ("Beaucoup de demandes sont parties de cette connexion ces dernières heures : réessayez plus tard, "
            "ou demandez à un professionnel (CCAS, Mission Locale, France Travail) de faire la demande pour vous.")
TOO_MANY_FOR_OFFER = ("Cette offre a reçu beaucoup de demandes aujourd'hui : réessayez demain, ou demandez à un "
                      "professionnel de la prescrire pour vous.")


@bp.get("")
def index():
    commune, words = request.args.get("commune", ""), request.args.get("mots", "").strip()
    return _page(commune, words, request.args.get("offre", ""))


@bp.post("")
@csrf.signed_form
def send():
    try:
        guard_public_request()
    except RequestEntityTooLarge:
        return render_error(413, f"Une demande fait au plus {PUBLIC_MAX_BYTES // 1024} Ko : raccourcissez "
                                 "votre message et recommencez.")
    except TooManyAttempts:
        return _page(request.form.get("commune", ""), "", request.form.get("offre", ""), values=request.form,
                     message=TOO_MANY, status=429)
    csrf.check_signed(PURPOSE)
    form = request.form
    data = {api: form.get(name, "").strip() for api, name in FIELDS.items() if api != "consent"}
    data = {k: v for k, v in data.items() if v}
    data["consent"] = form.get(FIELDS["consent"]) == "oui"
    errors = _errors(data)
    if errors:
        return _page(form.get("commune", ""), "", form.get("offre", ""), values=form, errors=errors, status=422)
    person = {k: data.get(k) for k in ("first_name", "last_name", "email", "phone", "commune_insee")}
    try:
        with transaction(db.session):
            sent = prescriptions.request_offer(db.session, engine_context(), offer_id=data["offer_id"], person=person,
                                               message=data.get("message"), consent=data["consent"])
    except TooManyAttempts:
        return _page(form.get("commune", ""), "", form.get("offre", ""), values=form, message=TOO_MANY_FOR_OFFER,
                     status=429)
    except InvalidInput as exc:  # the offer changed meanwhile
        return _page(form.get("commune", ""), "", form.get("offre", ""), values=form, status=422,
                     errors={FIELDS.get(str(e.get("field")), ""): [ENGINE_ERRORS.get(str(e.get("field")), str(exc))]
                             for e in exc.errors})
    return render_template("demande_envoyee.html", reference=sent.id, offer=sent.offer.name,
                           provider=sent.provider.name, expires_at=sent.expires_at)


def _errors(data: dict) -> dict[str, list[str]]:
    """Every problem of the request at once, by form field: the API schema's, then the engine's."""
    found = {FIELDS[api]: [ENGINE_ERRORS.get(api, "")] for api in (
        e["field"] for e in prescriptions.request_errors(
            db.session, offer_id=data.get("offer_id"), person=data, message=data.get("message"),
            consent=data["consent"]))}
    found.update({FIELDS[api]: [SCHEMA_ERRORS[api]] for api in PublicRequestIn().validate(data) if api in FIELDS})
    return found


def _page(commune: str, words: str, offer_id: str, *, values=None, errors=None, message: str | None = None,
          status: int = 200):
    """Step 1 (the commune, the offers there) or step 2 (the chosen offer and the request form)."""
    errors = dict(errors or {})
    communes = catalogue.communes(db.session)
    names = dict(communes)
    if commune and commune not in names:
        errors.setdefault("commune", ["Choisissez votre commune dans la liste."])
        commune = ""
    if len(words) > MAX_WORDS:
        errors.setdefault("mots", [f"Saisissez au plus {MAX_WORDS} caractères."])
        words = ""
    chosen = _offer(offer_id, commune) if offer_id and commune else None
    if offer_id and commune and chosen is None:
        errors.setdefault("offre", [ENGINE_ERRORS["offer_id"]])
    found, total = [], 0
    if commune and chosen is None:
        query = offers.search_offers(db.session, commune=commune, q=words, mobilisable_par=USAGERS)
        found = list(db.session.scalars(query.limit(MAX_SHOWN)))
        total = len(found)
    fields = _fields(chosen, values or {}, errors) if chosen else []
    shown = {f.name for f in fields}
    summary = [(f.id, f.label, text) for f in fields for text in f.errors]
    summary += [(None, None, text) for name, texts in errors.items() if name not in shown for text in texts]
    return render_template(
        "demande.html", communes=communes, commune=commune, commune_name=names.get(commune), words=words,
        rows=catalogue.offer_rows(db.session, found), total=total, max_shown=MAX_SHOWN,
        chosen=catalogue.offer_rows(db.session, [chosen])[0] if chosen else None, fields=fields, summary=summary,
        errors=errors, message=message, purpose=PURPOSE), status


def _offer(offer_id: str, commune: str) -> Offer | None:
    """The offer if a person of the commune may ask for it themself."""
    offer = offers.offer_by_di_id(db.session, offer_id)
    if offer is None or not offer.self_requestable or not offers.offer_covers(db.session, offer, commune):
        return None
    return offer


def _fields(offer: Offer, values, errors: dict[str, list[str]]) -> list[Field]:
    def field(kind: str, name: str, label: str, *, required: bool = False, hint: str | None = None,
              max_length: int | None = None, options=None) -> Field:
        value = values.getlist(name) if kind == "multichoice" and hasattr(values, "getlist") else values.get(name, "")
        return Field(kind=kind, name=name, label=label, full_label=label, hint=hint, required=required,
                     value=value if value is not None else "", errors=list(errors.get(name, [])),
                     max_length=max_length, options=options or [])

    return [
        field("text", "prenom", "Prénom", required=True, max_length=120),
        field("text", "nom", "Nom", max_length=120),
        field("email", "courriel", "Adresse électronique",
              hint="Pour que le prestataire vous réponde : indiquez une adresse électronique ou un numéro de "
                   "téléphone, ou les deux."),
        field("text", "telephone", "Numéro de téléphone", hint="Par exemple : 06 12 34 56 78."),
        field("textarea", "message", "Votre message", max_length=PUBLIC_MAX_MESSAGE,
              hint=f"Facultatif : ce que le prestataire doit savoir de votre situation ({MAX_MESSAGE_TEXT} "
                   "caractères au maximum)."),
        field("multichoice", "consentement", "Votre accord", required=True, options=[
            ("oui", f"J'accepte que {offer.provider.name} reçoive ces informations pour répondre à ma demande.")]),
    ]
