"""What the offer and prescription pages show: offers with their labels and zones, prescriptions, proposals.

Shared by the catalogue (web.offers), the carnet's « Offres proposées » (web.cases), the
provider's queue (web.prescriptions) and the public request page (web.public). Searching is
:func:`engine.offers.search_offers`; seeing is :func:`engine.prescriptions.visible_prescriptions`.
"""
from __future__ import annotations

from enum import Enum

from data_inclusion.schema.v1 import Categorie, Frais, ModeAccueil, Thematique, TypeService
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import offers, prescriptions
from engine.directory import Commune, StructureCoverage, User
from engine.offers import BARRIERS, PROFESSIONNELS, Offer
from engine.prescriptions import OPEN, REFUSAL_REASONS, STATES, Prescription
from web import labels

PROPOSALS = 5  # offers proposed on the carnet; the catalogue has the rest
CATEGORIES = sorted(Categorie, key=lambda c: c.label)


def enum_label(kind: type[Enum], code: str | None) -> str:
    """The data·inclusion label of a code (« Garde d'enfants »), the code itself when unknown."""
    try:
        return kind(code).label.replace("’", "'")
    except ValueError:
        return code or ""


def thematique_choices() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(category code, label, [(thématique code, label)]) for the search form's grouped list."""
    return [(c.value, c.label, sorted(((t.value, enum_label(Thematique, t.value)) for t in Thematique
                                       if t.value.startswith(f"{c.value}--")), key=lambda t: t[1]))
            for c in CATEGORIES]


def communes(session: Session) -> list[tuple[str, str]]:
    """(INSEE code, name) of the communes of the territory, by name."""
    return session.execute(select(Commune.insee, Commune.name).order_by(Commune.name, Commune.insee)).tuples().all()


def commune_names_of(session: Session, codes) -> dict[str, str]:
    return dict(session.execute(select(Commune.insee, Commune.name).where(Commune.insee.in_(codes))).tuples().all())


def zones(session: Session, found: list[Offer]) -> dict[int, str]:
    """For each offer, where it is open: its zone's communes, EPCI and départements, else its provider's area."""
    codes = {row.code for offer in found for row in offer.zone_rows}
    names = commune_names_of(session, codes)
    names.update(session.execute(select(Commune.epci_siren, Commune.epci_name).where(
        Commune.epci_siren.in_(codes)).distinct()).tuples().all())
    names.update({code: text for code, text in labels.ZONES.items() if code in codes})
    unzoned = {offer.structure_id for offer in found if not offer.zone_rows}
    covered = dict(session.execute(select(StructureCoverage.structure_id, func.count()).where(
        StructureCoverage.structure_id.in_(unzoned)).group_by(StructureCoverage.structure_id)).tuples().all())
    out = {}
    for offer in found:
        if offer.zone_rows:
            out[offer.id] = ", ".join(names.get(row.code, row.code) for row in offer.zone_rows)
        else:
            count = covered.get(offer.structure_id, 0)
            out[offer.id] = f"les {count} commune{'s' if count > 1 else ''} couvertes par {offer.provider.name}"
    return out


def offer_rows(session: Session, found: list[Offer]) -> list[dict]:
    """What a card of the catalogue shows for each offer."""
    if not found:
        return []
    where = zones(session, found)
    rows = []
    for offer in found:
        di = offer.di or {}
        rows.append({
            "id": offer.di_id, "name": offer.name, "description": offer.description, "provider": offer.provider.name,
            "type": enum_label(TypeService, offer.type) if offer.type else "",
            "thematiques": [enum_label(Thematique, code) for code in offer.thematiques],
            "freins": [(code, BARRIERS[code]) for code in offers.barriers_of(offer.thematiques)],
            "zone": where[offer.id], "frais": enum_label(Frais, di.get("frais")) if di.get("frais") else "",
            "modes_accueil": [enum_label(ModeAccueil, m) for m in di.get("modes_accueil") or ()],
            "contact": [v for v in (di.get("adresse"), _joined(di.get("code_postal"), di.get("commune")),
                                    di.get("telephone"), di.get("courriel")) if v],
            "mobilisation": di.get("mobilisation_precisions") or "",
            "prescribable": offer.prescribable, "self_requestable": offer.self_requestable, "demo": offer.demo,
        })
    return rows


def proposals(session: Session, barriers: list[str], commune: str | None) -> list[Offer]:
    """Offers a référent may prescribe that lift one of the barriers and are open in the commune."""
    if not barriers:
        return []
    query = offers.search_offers(session, frein=barriers, commune=commune, mobilisable_par=PROFESSIONNELS)
    return list(session.scalars(query.limit(PROPOSALS)))


def case_prescriptions(session: Session, case_id: int) -> list[Prescription]:
    """The prescriptions of a case, newest first (whoever may see the case sees them)."""
    return list(session.scalars(select(Prescription).where(Prescription.case_id == case_id)
                                .order_by(Prescription.created_at.desc(), Prescription.id.desc())))


def awaiting_answer(found: list[Prescription]) -> set[str]:
    """The offers (data·inclusion ids) of these prescriptions that still await the provider's answer."""
    return {item.offer.di_id for item in found if item.state == OPEN}


def prescription_rows(session: Session, found: list[Prescription]) -> list[dict]:
    """What the carnet and the queues show of each prescription."""
    if not found:
        return []
    prescriber_ids = {p.prescriber_id for p in found if p.prescriber_id}
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_(prescriber_ids)))}
    persons = {item.id: prescriptions.person_of(session, item) or {} for item in found}
    codes = {person.get("commune_insee") for person in persons.values()} - {None}
    commune_names = commune_names_of(session, codes)
    rows = []
    for item in found:
        prescriber = people.get(item.prescriber_id)
        person = persons[item.id]
        rows.append({
            "id": item.id, "state": item.state, "state_label": STATES[item.state], "case_id": item.case_id,
            "origin_label": labels.PRESCRIPTION_ORIGINS.get(item.origin, item.origin),
            "offer": item.offer.name, "provider": item.provider.name,
            "prescriber": prescriber.name if prescriber else None,
            "prescriber_structure": prescriber.structure.name if prescriber and prescriber.structure else None,
            "person": person, "person_name": _joined(person.get("first_name"), person.get("last_name")),
            "commune": commune_names.get(person.get("commune_insee"), person.get("commune_insee")),
            "frein": BARRIERS.get(item.frein or ""), "message": item.message,
            "reason": REFUSAL_REASONS.get(item.refusal_reason or ""), "answer": item.answer_message,
            "created_at": item.created_at, "expires_at": item.expires_at, "answered_at": item.answered_at,
            "expired_at": item.expired_at, "reminders": item.reminders,
        })
    return rows


def _joined(*parts: str | None) -> str:
    return " ".join(part for part in parts if part)
