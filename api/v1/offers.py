"""The offer catalogue (data·inclusion v1 services): search for professionals, and a public search.

``GET /api/v1/offers`` is for any signed-in user. ``GET /api/v1/public/offers`` needs no
account: the offers a person may request themself (``mobilisable_par`` has ``usagers``),
found by commune, with the fields a person needs; nothing about the caller is stored.
"""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.auth import login_required
from api.extensions import db
from api.schemas import INSEE_CODE, Pagination, text
from api.v1.common import TOTAL_COUNT, Blueprint, paginate
from engine import offers
from engine.offers import BARRIERS, CATEGORIES, PROFESSIONNELS, THEMATIQUES, USAGERS

# Public routes live here too: signed-in routes check the user themselves (login_required, before parsing).
bp = Blueprint("offers", __name__, url_prefix="/api/v1", description="Offer catalogue (data·inclusion v1)",
               public=True)

_THEMATIQUE_VALUES = sorted(THEMATIQUES | CATEGORIES)


class OfferQuery(Pagination):
    thematique = fields.Str(validate=validate.OneOf(_THEMATIQUE_VALUES), metadata={
        "description": "a data·inclusion v1 thématique (famille--garde-denfants) or a whole category (famille)"})
    frein = fields.Str(validate=validate.OneOf(list(BARRIERS)), metadata={
        "description": "a barrier of the diagnostic: offers with one of its thématiques"})
    commune = fields.Str(validate=validate.Regexp(INSEE_CODE), metadata={"description": "INSEE code covered"})
    q = text(max=200, metadata={"description": "words (full-text search)"})
    mobilisable_par = fields.Str(validate=validate.OneOf((PROFESSIONNELS, USAGERS)))


class PublicOfferQuery(Pagination):
    commune = fields.Str(required=True, validate=validate.Regexp(INSEE_CODE),
                         metadata={"description": "INSEE code of the person's commune"})
    thematique = fields.Str(validate=validate.OneOf(_THEMATIQUE_VALUES))
    frein = fields.Str(validate=validate.OneOf(list(BARRIERS)))
    q = text(max=200)


class PublicProviderOut(Schema):
    name = fields.Str()


class ProviderOut(PublicProviderOut):
    id = fields.Int()
    type = fields.Str()


class PublicOfferOut(Schema):
    """What a person needs to choose an offer and ask for it."""

    id = fields.Str(metadata={"description": "data·inclusion identifier (source--id)"})
    nom = fields.Str()
    description = fields.Str()
    type = fields.Str()
    thematiques = fields.List(fields.Str())
    freins = fields.List(fields.Str(), metadata={"description": "barriers of the diagnostic this offer lifts"})
    frais = fields.Str()
    frais_precisions = fields.Str()
    publics = fields.List(fields.Str())
    publics_precisions = fields.Str()
    conditions_acces = fields.Str()
    adresse = fields.Str()
    complement_adresse = fields.Str()
    code_postal = fields.Str()
    commune = fields.Str()
    code_insee = fields.Str()
    telephone = fields.Str()
    courriel = fields.Str()
    horaires_accueil = fields.Str()
    modes_accueil = fields.List(fields.Str())
    zone_eligibilite = fields.List(fields.Str())
    modes_mobilisation = fields.List(fields.Str())
    mobilisation_precisions = fields.Str()
    lien_mobilisation = fields.Str()
    demo = fields.Bool(metadata={"description": "demo data, not a real offer"})
    provider = fields.Nested(PublicProviderOut)


class OfferOut(PublicOfferOut):
    """A service of the catalogue: its data·inclusion v1 fields, its provider in the directory, and ours."""

    source = fields.Str()
    structure_id = fields.Str(metadata={"description": "data·inclusion identifier of the provider"})
    lien_source = fields.Str()
    date_maj = fields.Str(metadata={"format": "date"})
    longitude = fields.Float()
    latitude = fields.Float()
    contact_nom_prenom = fields.Str()
    mobilisable_par = fields.List(fields.Str())
    volume_horaire_hebdomadaire = fields.Float()
    nombre_semaines = fields.Int()
    provider = fields.Nested(ProviderOut, metadata={"description": "the provider, a structure of the directory"})
    prescribable = fields.Bool(metadata={"description": "a référent may prescribe it (mobilisable par professionnels)"})
    self_requestable = fields.Bool(metadata={"description": "the person may ask for it (mobilisable par usagers)"})


@bp.get("/offers")
@login_required
@bp.arguments(OfferQuery, location="query")
@bp.response(200, OfferOut(many=True), headers=TOTAL_COUNT)
@bp.problems(401, 422)
def list_offers(args):
    query = offers.search_offers(db.session, thematique=args.get("thematique"), frein=args.get("frein"),
                                 commune=args.get("commune"), q=args.get("q"),
                                 mobilisable_par=args.get("mobilisable_par"))
    found, headers = paginate(query, args)
    return [offers.offer_out(o) for o in found], 200, headers


@bp.get("/offers/<name:offer_id>")
@login_required
@bp.response(200, OfferOut)
@bp.problems(401, 404)
def get_offer(offer_id: str):
    return offers.offer_out(offers.get_offer(db.session, offer_id))


@bp.get("/public/offers")
@bp.doc(security=[])
@bp.arguments(PublicOfferQuery, location="query")
@bp.response(200, PublicOfferOut(many=True), headers=TOTAL_COUNT)
@bp.problems(422)
def list_public_offers(args):
    """Offers a person may request themself in their commune (no account needed)."""
    query = offers.search_offers(db.session, thematique=args.get("thematique"), frein=args.get("frein"),
                                 commune=args["commune"], q=args.get("q"), mobilisable_par=USAGERS)
    found, headers = paginate(query, args)
    return [offers.offer_out(o) for o in found], 200, headers
