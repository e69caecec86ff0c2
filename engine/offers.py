"""The offer catalogue: services of the data·inclusion v1 schema, their providers, search and import.

An offer is a data·inclusion ``Service``; its provider is a :class:`~engine.directory.Structure`
of the directory. Each offer keeps its data·inclusion record as validated (``di``) and
lifts what is searched or shown into columns and two index tables: its thématiques
(``offer_thematique``) and its zone of eligibility (``offer_zone``: INSEE codes of
communes, départements, EPCI, or ``france``). An offer without a zone covers the
communes its provider covers.

Search: by thématique (a sub-thématique or a whole category), by barrier
(:data:`BARRIER_THEMATIQUES` maps the seven *freins périphériques* of the diagnostic to
thématiques), by commune covered, and by words. Words use PostgreSQL full-text search
(``search_vector``: a generated ``tsvector`` with the ``french`` configuration, GIN
index); on SQLite the same generated column holds lowered text, searched with GLOB
patterns that accept each letter's accented forms. Both ignore case and accents: "creche"
finds "Crèche".

Import (``spie import-offers FILE``) reads a data·inclusion export, JSON or CSV,
validates every service (and structure) with the ``data-inclusion-schema`` package,
resolves each service's provider in the directory, and writes nothing unless every
row is valid: the report names each rejected row and why.
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from data_inclusion.schema.v1 import Categorie, PersonneMobilisatrice, Thematique
from data_inclusion.schema.v1 import Service as DIService
from data_inclusion.schema.v1 import Structure as DIStructure
from pydantic import ValidationError
from sqlalchemy import (JSON, Boolean, Computed, Date, ForeignKey, Index, String, Text, UniqueConstraint, and_,
                        exists, func, literal_column, or_, select)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship
from sqlalchemy.sql import Select
from sqlalchemy.sql.expression import ColumnElement

from engine.db import Base, BigId, UTCDateTime
from engine.directory import Commune, Structure, StructureCoverage, normalize_structure_type
from engine.errors import InvalidInput, NotFound, TooLarge
from engine.folding import fold, folded_sql, glob_pattern
from engine.paths import PROJECT_ROOT

DEMO_OFFERS_JSON = PROJECT_ROOT / "data" / "demo" / "offers.json"
MAX_IMPORT_BYTES = 256 * 1024 * 1024

# --- Reference values -----------------------------------------------------------------------------

THEMATIQUES = frozenset(t.value for t in Thematique)
CATEGORIES = frozenset(c.value for c in Categorie)
USAGERS = PersonneMobilisatrice.USAGERS.value
PROFESSIONNELS = PersonneMobilisatrice.PROFESSIONNELS.value

# The seven barriers (freins périphériques) of the diagnostic: France Travail's "diagnostic
# argumenté" contraintes 23-29, with Carnet de bord's theme codes (as in forms/prescription.json).
BARRIERS = {
    "mobilite": "Mobilité",
    "contraintes_familiales": "Contraintes familiales (dont garde d'enfants)",
    "sante": "Santé",
    "maitrise_langue": "Lecture, écriture, calcul et maîtrise du français",
    "logement": "Logement",
    "difficulte_financiere": "Difficultés financières",
    "difficulte_administrative": "Difficultés administratives ou juridiques",
}

_T = Thematique
# Barrier → the data·inclusion v1 thématiques of the offers that lift it (most specific first).
BARRIER_THEMATIQUES: dict[str, tuple[str, ...]] = {
    "mobilite": tuple(t.value for t in (
        _T.MOBILITE__ETRE_ACCOMPAGNE_DANS_SON_PARCOURS_MOBILITE,
        _T.MOBILITE__PREPARER_UN_PERMIS,
        _T.MOBILITE__ACCEDER_A_UN_VEHICULE,
        _T.MOBILITE__ENTRETENIR_REPARER_SON_VEHICULE,
        _T.MOBILITE__FINANCER_MA_MOBILITE,
        _T.MOBILITE__UTILISER_DES_SERVICES_DE_MOBILITE_DOUCE_PARTAGEE_COLLECTIVE,
    )),
    "contraintes_familiales": tuple(t.value for t in (
        _T.FAMILLE__GARDE_DENFANTS,
        _T.FAMILLE__PRISE_EN_CHARGE_PERSONNE_DEPENDANTE,
        _T.FAMILLE__SOUTIEN_AIDANTS,
        _T.FAMILLE__SOUTIEN_A_LA_PARENTALITE_ET_A_LEDUCATION,
        _T.FAMILLE__SURMONTER_CONFLITS_SEPARATION_VIOLENCE,
    )),
    "sante": tuple(t.value for t in (
        _T.SANTE__ACCES_AUX_SOINS,
        _T.SANTE__SANTE_MENTALE,
        _T.SANTE__ADDICTIONS,
        _T.SANTE__CONSTITUER_UN_DOSSIER_MDPH_INVALIDITE,
        _T.SANTE__SANTE_SEXUELLE,
    )),
    "maitrise_langue": tuple(t.value for t in (
        _T.LECTURE_ECRITURE_CALCUL__MAITRISER_LE_FRANCAIS,
        _T.LECTURE_ECRITURE_CALCUL__MAITRISER_LE_CALCUL,
    )),
    "logement": tuple(t.value for t in (
        _T.LOGEMENT_HEBERGEMENT__RECHERCHER_UNE_SOLUTION_DHEBERGEMENT_TEMPORAIRE,
        _T.LOGEMENT_HEBERGEMENT__SE_MAINTENIR_DANS_LE_LOGEMENT,
        _T.LOGEMENT_HEBERGEMENT__REDUIRE_LES_IMPAYES_DE_LOYER,
        _T.LOGEMENT_HEBERGEMENT__LOUER_UN_LOGEMENT,
        _T.LOGEMENT_HEBERGEMENT__CHANGER_DE_LOGEMENT,
        _T.LOGEMENT_HEBERGEMENT__SINFORMER_SUR_LES_DEMARCHES_LIEES_A_LACCES_AU_LOGEMENT,
        _T.LOGEMENT_HEBERGEMENT__ACHETER_UN_LOGEMENT,
    )),
    "difficulte_financiere": tuple(t.value for t in (
        _T.DIFFICULTES_FINANCIERES__SITUATION_DENDETTEMENT_SURENDETTEMENT,
        _T.DIFFICULTES_FINANCIERES__AMELIORER_SA_GESTION_BUDGETAIRE,
        _T.DIFFICULTES_FINANCIERES__ACQUERIR_UNE_AUTONOMIE_BUDGETAIRE,
        _T.DIFFICULTES_FINANCIERES__PREVENIR_UNE_DEGRADATION_DE_LA_SITUATION_FINANCIERE,
        _T.DIFFICULTES_FINANCIERES__METTRE_EN_PLACE_UNE_MESURE_DE_PROTECTION_FINANCIERE,
        _T.EQUIPEMENT_ET_ALIMENTATION__ALIMENTATION,  # FT situation 33: "besoin d'un soutien alimentaire"
    )),
    "difficulte_administrative": tuple(t.value for t in (
        _T.DIFFICULTES_ADMINISTRATIVES_OU_JURIDIQUES__ACCOMPAGNEMENT_AUX_DEMARCHES_ADMINISTRATIVES,
        _T.DIFFICULTES_ADMINISTRATIVES_OU_JURIDIQUES__ACCOMPAGNEMENT_POUR_LACCES_AUX_DROITS,
        _T.DIFFICULTES_ADMINISTRATIVES_OU_JURIDIQUES__BENEFICIER_DUNE_MESURE_DACCOMPAGNEMENT_ADAPTE,
        _T.DIFFICULTES_ADMINISTRATIVES_OU_JURIDIQUES__PRENDRE_EN_COMPTE_UNE_PROBLEMATIQUE_JUDICIAIRE,
        _T.DIFFICULTES_ADMINISTRATIVES_OU_JURIDIQUES__CONNAITRE_SES_DROITS_FACE_A_UNE_DISCRIMINATION,
        _T.DIFFICULTES_ADMINISTRATIVES_OU_JURIDIQUES__ACCOMPAGNEMENT_POUR_LACCES_A_LA_CITOYENNETE,
    )),
}
del _T


def barriers_of(thematiques: Iterable[str]) -> list[str]:
    """The barriers an offer with these thématiques helps to lift, in :data:`BARRIERS` order."""
    codes = set(thematiques)
    return [barrier for barrier, mapped in BARRIER_THEMATIQUES.items() if codes.intersection(mapped)]


# --- Search text: folded case and accents, the same way in Python and in SQL (engine.folding) ------


class _SearchDocument(ColumnElement):
    """The generated search column's expression; each database gets its own (see the module doc)."""

    inherit_cache = True


SEARCH_VECTOR_POSTGRESQL = (
    f"setweight(to_tsvector('french'::regconfig, {folded_sql('name')}), 'A') || "
    f"setweight(to_tsvector('french'::regconfig, {folded_sql('description')}), 'B')"
)
# SQLite's lower() only knows ASCII and a deeply nested replace() overflows its parser: the column is
# lowered text, and each searched letter becomes a GLOB class of its accented forms (folding.glob_pattern).
SEARCH_TEXT_SQLITE = "lower(coalesce(name, '')) || ' ' || lower(coalesce(description, ''))"


@compiles(_SearchDocument, "postgresql")
def _compile_search_postgresql(element, compiler, **kw) -> str:
    return SEARCH_VECTOR_POSTGRESQL


@compiles(_SearchDocument)
def _compile_search_default(element, compiler, **kw) -> str:
    return SEARCH_TEXT_SQLITE


# --- Tables ---------------------------------------------------------------------------------------


class Offer(Base):
    """One service of the catalogue (data·inclusion v1 ``Service``), offered by a directory structure."""

    __tablename__ = "offer"
    __table_args__ = (Index("ix_offer_search_vector", "search_vector", postgresql_using="gin"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # data·inclusion identifiers: the service's (``source--id``), its producer's, its structure's.
    di_id: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(String(100))
    di_structure_id: Mapped[str] = mapped_column(String(200), index=True)
    structure_id: Mapped[int] = mapped_column(ForeignKey("structure.id"), index=True)  # the provider
    name: Mapped[str] = mapped_column(String(150))
    description: Mapped[str] = mapped_column(Text)
    type: Mapped[str | None] = mapped_column(String(40))
    # mobilisable_par: a référent may prescribe it (professionnels, or unspecified); the person may ask (usagers).
    prescribable: Mapped[bool] = mapped_column(Boolean, default=True)
    self_requestable: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    date_maj: Mapped[date] = mapped_column(Date)
    # The data·inclusion record as validated (JSON mode, sets sorted): what the API shows.
    di: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    demo: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    search_vector: Mapped[str | None] = mapped_column(
        Text().with_variant(TSVECTOR(), "postgresql"), Computed(_SearchDocument(), persisted=True),
        deferred=True)

    provider: Mapped[Structure] = relationship(lazy="joined")
    thematique_rows: Mapped[list[OfferThematique]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="OfferThematique.code")
    zone_rows: Mapped[list[OfferZone]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="OfferZone.code")

    @property
    def thematiques(self) -> list[str]:
        return [row.code for row in self.thematique_rows]


class OfferThematique(Base):
    __tablename__ = "offer_thematique"
    __table_args__ = (UniqueConstraint("offer_id", "code"), Index("ix_offer_thematique_code", "code", "offer_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offer.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(120))


class OfferZone(Base):
    """A code of the offer's zone of eligibility: commune, département, EPCI (SIREN), or ``france``."""

    __tablename__ = "offer_zone"
    __table_args__ = (UniqueConstraint("offer_id", "code"), Index("ix_offer_zone_code", "code", "offer_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offer.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(20))


# --- Reading and searching ------------------------------------------------------------------------

_WORD = re.compile(r"[\w']+", re.UNICODE)
MAX_QUERY_WORDS = 12


def offer_by_di_id(session: Session, di_id: str) -> Offer | None:
    return session.scalar(select(Offer).where(Offer.di_id == di_id))


def get_offer(session: Session, di_id: str) -> Offer:
    offer = offer_by_di_id(session, di_id)
    if offer is None:
        raise NotFound(f"offer {di_id!r} does not exist")
    return offer


def search_offers(
    session: Session,
    *,
    thematique: str | None = None,
    frein: str | Iterable[str] | None = None,
    commune: str | None = None,
    q: str | None = None,
    mobilisable_par: str | None = None,
) -> Select:
    """SELECT of the offers matching every criterion given, best match first when searching words.

    ``frein`` may name several barriers (a diagnostic's): offers lifting any of them.
    """
    freins = [f for f in ([frein] if isinstance(frein, str) else frein or ()) if f]
    errors = []
    if thematique and thematique not in THEMATIQUES and thematique not in CATEGORIES:
        errors.append({"field": "thematique", "message": "not a data·inclusion v1 thématique or category"})
    if any(f not in BARRIER_THEMATIQUES for f in freins):
        errors.append({"field": "frein", "message": f"one of {', '.join(BARRIER_THEMATIQUES)}"})
    if mobilisable_par and mobilisable_par not in (USAGERS, PROFESSIONNELS):
        errors.append({"field": "mobilisable_par", "message": f"{PROFESSIONNELS} or {USAGERS}"})
    if errors:
        raise InvalidInput("invalid search", errors)
    query = select(Offer)
    if thematique:
        code = OfferThematique.code
        matches = code == thematique if thematique in THEMATIQUES else code.like(f"{thematique}--%")
        query = query.where(exists().where(OfferThematique.offer_id == Offer.id, matches))
    if freins:
        codes = sorted({code for f in freins for code in BARRIER_THEMATIQUES[f]})
        query = query.where(exists().where(OfferThematique.offer_id == Offer.id, OfferThematique.code.in_(codes)))
    if commune:
        query = query.where(covers_commune(session, commune))
    if mobilisable_par == USAGERS:
        query = query.where(Offer.self_requestable.is_(True))
    elif mobilisable_par == PROFESSIONNELS:
        query = query.where(Offer.prescribable.is_(True))
    words = _WORD.findall(fold(q or ""))[:MAX_QUERY_WORDS]
    if not words:
        return query.order_by(Offer.name, Offer.id)
    if session.get_bind().dialect.name == "postgresql":
        tsquery = func.websearch_to_tsquery(literal_column("'french'::regconfig"), " ".join(words))
        vector = literal_column("offer.search_vector")
        return query.where(vector.op("@@")(tsquery)).order_by(func.ts_rank(vector, tsquery).desc(), Offer.name,
                                                               Offer.id)
    text_column = literal_column("offer.search_vector")
    for word in words:  # letters, digits, _ and ': nothing that GLOB would read as a wildcard
        query = query.where(text_column.op("GLOB")(glob_pattern(word)))
    return query.order_by(Offer.name, Offer.id)


def departement_of(insee: str) -> str:
    """The département code of a commune: 91228 -> 91, 2A004 -> 2A, 97411 -> 974."""
    return insee[:3] if insee.startswith("97") else insee[:2]


def covers_commune(session: Session, insee: str) -> ColumnElement[bool]:
    """Offers whose zone includes the commune (itself, its EPCI, its département, France); offers
    without a zone: those whose provider covers the commune."""
    codes = {insee, departement_of(insee), "france", "99100"}
    epci = session.scalar(select(Commune.epci_siren).where(Commune.insee == insee))
    if epci:
        codes.add(epci)
    in_zone = exists().where(OfferZone.offer_id == Offer.id, OfferZone.code.in_(sorted(codes)))
    without_zone = ~exists().where(OfferZone.offer_id == Offer.id)
    provider_covers = exists().where(StructureCoverage.structure_id == Offer.structure_id,
                                     StructureCoverage.commune_insee == insee)
    return or_(in_zone, and_(without_zone, provider_covers))


def offer_covers(session: Session, offer: Offer, insee: str) -> bool:
    return session.scalar(select(Offer.id).where(Offer.id == offer.id, covers_commune(session, insee))) is not None


def offer_out(offer: Offer) -> dict[str, Any]:
    """An offer as the API shows it: its data·inclusion fields, its provider, and what we derive."""
    provider = offer.provider
    return {
        **offer.di,
        "id": offer.di_id,
        "provider": {"id": provider.id, "name": provider.name, "type": provider.type},
        "freins": barriers_of(offer.thematiques),
        "prescribable": offer.prescribable,
        "self_requestable": offer.self_requestable,
        "demo": offer.demo,
    }


# --- Import ---------------------------------------------------------------------------------------

# Fields holding several values: JSON arrays in JSON files; in CSV files a JSON array, or values
# separated by commas, semicolons or pipes.
SERVICE_LIST_FIELDS = ("thematiques", "publics", "modes_accueil", "zone_eligibilite", "modes_mobilisation",
                       "mobilisable_par")
STRUCTURE_LIST_FIELDS = ("reseaux_porteurs",)
_SET_FIELDS = ("thematiques", "publics", "modes_accueil", "modes_mobilisation", "mobilisable_par",
               "reseaux_porteurs")


@dataclass(frozen=True)
class RowError:
    """Why one row of an import file is rejected."""

    where: str  # "line 4" (CSV), "services[2]" (JSON)
    id: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        ident = f" ({self.id})" if self.id else ""
        column = f"{self.field}: " if self.field else ""
        return f"{self.where}{ident}: {column}{self.message}"

    def to_dict(self) -> dict:
        return {"where": self.where, "id": self.id, "field": self.field, "message": self.message}


@dataclass
class Row:
    where: str
    data: dict[str, Any]


@dataclass
class OfferFile:
    """The rows of an import file: services, and the structures that carry them (if the file has them)."""

    services: list[Row] = field(default_factory=list)
    structures: list[Row] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    providers_created: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def rejected_rows(self) -> int:
        return len({e.where for e in self.errors})


def read_offer_file(path: Path | str, *, structures_path: Path | str | None = None) -> OfferFile:
    """Read a data·inclusion export: a JSON array of services, ``{"services": [...], "structures": [...]}``,
    a data·inclusion API page (``{"items": [...]}``, items possibly ``{"service": {...}}`` with a nested
    ``structure``), or a CSV of services (then structures, if any, in a second CSV)."""
    parsed = _read_one(Path(path))
    if structures_path is not None:
        extra = _read_one(Path(structures_path), kind="structures")
        parsed.structures.extend(extra.structures + extra.services)
        parsed.errors.extend(extra.errors)
    return parsed


def _read_one(path: Path, kind: str = "services") -> OfferFile:
    if path.stat().st_size > MAX_IMPORT_BYTES:
        raise TooLarge(f"{path.name} is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB")
    raw = path.read_bytes()
    text = raw.decode("utf-8-sig")
    if path.suffix.lower() == ".csv" or not text.lstrip().startswith(("[", "{")):
        return parse_csv(text, kind=kind)
    return parse_json(text, kind=kind)


def parse_json(text: str, *, kind: str = "services") -> OfferFile:
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidInput(f"not a JSON document: {exc}") from exc
    result = OfferFile()
    if isinstance(document, dict) and ("services" in document or "structures" in document):
        sections = {"services": document.get("services") or [], "structures": document.get("structures") or []}
    elif isinstance(document, dict) and "items" in document:
        sections = {kind: document["items"]}
    elif isinstance(document, list):
        sections = {kind: document}
    else:
        raise InvalidInput('expected a JSON array of services or an object with "services" and "structures"')
    for section, items in sections.items():
        if not isinstance(items, list):
            raise InvalidInput(f'"{section}" must be a JSON array')
        for index, item in enumerate(items):
            where = f"{section}[{index}]"
            if isinstance(item, dict) and isinstance(item.get("service"), dict):  # a search result
                item = item["service"]
            if not isinstance(item, dict):
                result.errors.append(RowError(where, None, None, "not a JSON object"))
                continue
            if section == "services" and isinstance(item.get("structure"), dict):
                nested = item["structure"]
                result.structures.append(Row(f"{where}.structure", _clean(nested, STRUCTURE_LIST_FIELDS, False)))
            target = result.services if section == "services" else result.structures
            list_fields = SERVICE_LIST_FIELDS if section == "services" else STRUCTURE_LIST_FIELDS
            target.append(Row(where, _clean(item, list_fields, False)))
    return result


def parse_csv(text: str, *, kind: str = "services") -> OfferFile:
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    if not reader.fieldnames or "id" not in [f.strip() for f in reader.fieldnames]:
        raise InvalidInput("the CSV file needs a header row with data·inclusion field names (id, nom, ...)")
    result = OfferFile()
    list_fields = SERVICE_LIST_FIELDS if kind == "services" else STRUCTURE_LIST_FIELDS
    rows = result.services if kind == "services" else result.structures
    for record in reader:
        where = f"line {reader.line_num}"
        if None in record:
            result.errors.append(RowError(where, record.get("id"), None, "more cells than header columns"))
            continue
        rows.append(Row(where, _clean(record, list_fields, True)))
    return result


def _clean(record: Mapping[str, Any], list_fields: tuple[str, ...], from_csv: bool) -> dict[str, Any]:
    """Empty values dropped, names trimmed; in CSV cells, lists split; v0 descriptions mapped."""
    data: dict[str, Any] = {}
    for key, value in record.items():
        key = str(key).strip()
        if isinstance(value, str):
            value = value.strip()
        if value in ("", None):
            continue
        if from_csv and key in list_fields:
            value = _split_list(value)
        data[key] = value
    if "description" not in data:  # data·inclusion v0: presentation_resume / presentation_detail
        parts = [data.get(k) for k in ("presentation_resume", "presentation_detail")]
        text = "\n\n".join(p for p in parts if isinstance(p, str) and p)
        if text:
            data["description"] = text
    return data


def _split_list(value: str) -> list[str] | str:
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return value
        return parsed
    return [v.strip() for v in re.split(r"[,;|]", value) if v.strip()]


def _validation_errors(where: str, ident: str | None, exc: ValidationError) -> list[RowError]:
    errors = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error.get("loc", ()))
        errors.append(RowError(where, ident, location or None, error.get("msg", "invalid")))
    return errors


def _as_record(model) -> dict[str, Any]:
    data = model.model_dump(mode="json", exclude_none=True)
    for name in _SET_FIELDS:
        if isinstance(data.get(name), list):
            data[name] = sorted(data[name])
    return data


@dataclass
class _Provider:
    record: dict[str, Any] | None  # the data·inclusion structure, when the file has it
    raw: dict[str, Any]


def import_offers(session: Session, parsed: OfferFile, *, now: datetime, demo: bool = False,
                  dry_run: bool = False) -> ImportReport:
    """Validate every row, then (only if all are valid and not ``dry_run``) create or update the offers.

    A provider is found in the directory by the data·inclusion structure id already linked to an
    offer, else by SIRET, else by name; a structure of the file found nowhere is added to the
    directory (type from its ``reseaux_porteurs`` or legacy ``typologie``, else ``association``).
    """
    report = ImportReport(errors=list(parsed.errors))
    providers: dict[str, _Provider] = {}
    for row in parsed.structures:
        ident = str(row.data.get("id") or "") or None
        try:
            model = DIStructure.model_validate(row.data)
        except ValidationError as exc:
            report.errors.extend(_validation_errors(row.where, ident, exc))
            continue
        if model.id in providers:
            report.errors.append(RowError(row.where, model.id, "id", "this structure is already in the file"))
            continue
        providers[model.id] = _Provider(_as_record(model), row.data)
    services: list[tuple[Row, Any]] = []
    seen: set[str] = set()
    for row in parsed.services:
        ident = str(row.data.get("id") or "") or None
        try:
            model = DIService.model_validate(row.data)
        except ValidationError as exc:
            report.errors.extend(_validation_errors(row.where, ident, exc))
            continue
        if model.id in seen:
            report.errors.append(RowError(row.where, model.id, "id", "this service is already in the file"))
            continue
        if len(model.id) > 200 or len(model.structure_id) > 200 or len(model.source) > 100:
            report.errors.append(RowError(row.where, model.id, "id", "identifiers are limited to 200 characters"))
            continue
        seen.add(model.id)
        services.append((row, model))

    resolver = _ProviderResolver(session, providers, demo)
    resolved = []
    for row, model in services:
        provider = resolver.find(model.structure_id)
        if provider is None:
            report.errors.append(RowError(
                row.where, model.id, "structure_id",
                f"structure {model.structure_id!r} is neither in the file nor linked to an offer already imported"))
            continue
        resolved.append((model, provider))
    if report.errors or dry_run:
        report.created = [m.id for m, _ in resolved] if dry_run and not report.errors else []
        return report

    existing = _existing_offers(session, [m.id for m, _ in resolved])
    for model, provider in resolved:
        structure = resolver.materialize(provider, now)
        record = _as_record(model)
        offer = existing.get(model.id)
        if offer is None:
            offer = Offer(di_id=model.id, created_at=now)
            session.add(offer)
            report.created.append(model.id)
        elif offer.di == record and offer.structure_id == structure.id and offer.demo == demo:
            report.unchanged.append(model.id)
            continue
        else:
            report.updated.append(model.id)
        _apply(offer, model, record, structure, demo, now)
    report.providers_created = resolver.created
    session.flush()
    return report


def _existing_offers(session: Session, ids: list[str]) -> dict[str, Offer]:
    found: dict[str, Offer] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        found.update({o.di_id: o for o in session.scalars(select(Offer).where(Offer.di_id.in_(chunk)))})
    return found


def _apply(offer: Offer, model, record: dict, structure: Structure, demo: bool, now: datetime) -> None:
    mobilisable = set(record.get("mobilisable_par") or [])
    offer.source = model.source
    offer.di_structure_id = model.structure_id
    offer.provider = structure
    offer.name = model.nom
    offer.description = model.description
    offer.type = record.get("type")
    offer.prescribable = not mobilisable or PROFESSIONNELS in mobilisable
    offer.self_requestable = USAGERS in mobilisable
    offer.date_maj = model.date_maj
    offer.di = record
    offer.demo = demo
    offer.updated_at = now
    _sync_rows(offer.thematique_rows, set(record.get("thematiques") or []), OfferThematique)
    zone = record.get("zone_eligibilite") or ([record["code_insee"]] if record.get("code_insee") else [])
    _sync_rows(offer.zone_rows, set(zone), OfferZone)


def _sync_rows(rows: list, wanted: set[str], model) -> None:
    """Remove and add index rows so that their codes are ``wanted`` (never delete and re-add a code)."""
    for row in [r for r in rows if r.code not in wanted]:
        rows.remove(row)
    present = {r.code for r in rows}
    rows.extend(model(code=code) for code in sorted(wanted - present))


class _ProviderResolver:
    """data·inclusion structure id → directory structure, creating the missing ones at write time."""

    def __init__(self, session: Session, providers: dict[str, _Provider], demo: bool):
        self.session, self.providers, self.demo = session, providers, demo
        self.linked = dict(session.execute(select(Offer.di_structure_id, Offer.structure_id).distinct()).all())
        structures = list(session.scalars(select(Structure)))
        self.by_id = {s.id: s for s in structures}
        self.by_siret = {s.siret: s for s in structures if s.siret}
        self.by_name = {_name_key(s.name): s for s in structures}
        self.pending: dict[str, Structure] = {}
        self.created: list[str] = []

    def find(self, di_structure_id: str) -> Structure | _Provider | None:
        if di_structure_id in self.linked and self.linked[di_structure_id] in self.by_id:
            return self.by_id[self.linked[di_structure_id]]
        provider = self.providers.get(di_structure_id)
        if provider is None:
            return None
        record = provider.record
        match = self.by_siret.get(record.get("siret") or "") or self.by_name.get(_name_key(record["nom"]))
        return match or provider

    def materialize(self, found: Structure | _Provider, now: datetime) -> Structure:
        if isinstance(found, Structure):
            return found
        record = found.record
        if record["id"] in self.pending:
            return self.pending[record["id"]]
        address = " ".join(str(record[k]) for k in ("adresse", "code_postal", "commune") if record.get(k))
        structure = Structure(type=_provider_type(found), name=record["nom"], siret=record.get("siret"),
                              email=record.get("courriel"), phone=(record.get("telephone") or "")[:40] or None,
                              address=address[:255] or None, sensitive=False, is_pilot=False, demo=self.demo)
        self.session.add(structure)
        self.pending[record["id"]] = structure
        self.created.append(record["nom"])
        return structure


def _provider_type(provider: _Provider) -> str:
    candidates = list(provider.record.get("reseaux_porteurs") or [])
    if provider.raw.get("typologie"):
        candidates.append(str(provider.raw["typologie"]))
    for candidate in candidates:
        try:
            return normalize_structure_type(candidate)
        except InvalidInput:
            continue
    return "association"


def _name_key(name: str) -> str:
    return " ".join(_WORD.findall(fold(name)))


def seed_demo_offers(session: Session, now: datetime) -> ImportReport:
    """The demo catalogue (data/demo/offers.json, flagged demo), on the demo directory; idempotent."""
    report = import_offers(session, read_offer_file(DEMO_OFFERS_JSON), now=now, demo=True)
    if not report.ok:
        raise InvalidInput("the demo offers are invalid: " + "; ".join(map(str, report.errors)),
                           [e.to_dict() for e in report.errors])
    return report
