"""The directory (annuaire): communes, structures, what they cover, and professionals.

Structure types follow data·inclusion's ``reseaux_porteurs`` codes; DORA's
legacy typology codes are accepted on input (:func:`normalize_structure_type`).
"""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from engine.db import Base, BigId, UTCDateTime
from engine.errors import InvalidInput

# Our codes (data·inclusion reseaux_porteurs, shortened where they are long) and French labels.
STRUCTURE_TYPES = {
    "mission-locale": "Mission Locale",
    "departement": "Département",
    "france-travail": "France Travail",
    "caf": "CAF",
    "plie": "PLIE",
    "ccas": "CCAS / CIAS",
    "cap-emploi": "Cap Emploi",
    "ase": "Aide sociale à l'enfance",
    "maison-emploi": "Maison de l'emploi / MDEF",
    "association": "Association",
}
CORE_STRUCTURE_TYPES = ("mission-locale", "departement", "france-travail", "caf", "cap-emploi", "ase")

_ALIASES = {
    # data·inclusion v1 reseaux_porteurs
    "departements": "departement",
    "ccas-cias": "ccas",
    "cap-emploi-reseau-cheops": "cap-emploi",
    "maisons-de-l-emploi": "maison-emploi",
    # DORA / data·inclusion v0 typologie
    "ml": "mission-locale",
    "cd": "departement",
    "dept": "departement",
    "mds": "departement",
    "ft": "france-travail",
    "pe": "france-travail",
    "cap_emploi": "cap-emploi",
    "cias": "ccas",
    "mde": "maison-emploi",
    "asso": "association",
}


def normalize_structure_type(value: str) -> str:
    """Our code for a data·inclusion or DORA type, or a French label ("Département"); raises on unknown."""
    code = _slug(value or "")
    code = _ALIASES.get(code, _ALIASES.get(code.replace("-", "_"), code))
    if code not in STRUCTURE_TYPES:
        raise InvalidInput(f"unknown structure type {value!r}; expected one of {', '.join(STRUCTURE_TYPES)}")
    return code


def _slug(value: str) -> str:
    """'Mission Locale' -> 'mission-locale', 'Département' -> 'departement', 'CAP_EMPLOI' -> 'cap_emploi'."""
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9_]+", "-", ascii_text.strip().lower()).strip("-")


class Commune(Base):
    __tablename__ = "commune"

    insee: Mapped[str] = mapped_column(String(5), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    postcodes: Mapped[list[str]] = mapped_column(JSON, default=list)
    population: Mapped[int | None]
    epci_siren: Mapped[str | None] = mapped_column(String(9), index=True)
    epci_name: Mapped[str | None] = mapped_column(String(200))


class Structure(Base):
    __tablename__ = "structure"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    type: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(255))
    siret: Mapped[str | None] = mapped_column(String(14))
    email: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(255))
    # Addiction care, justice...: never shown outside the care team.
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    # The Département's SPIE project team: receives unassigned tasks and escalations.
    is_pilot: Mapped[bool] = mapped_column(Boolean, default=False)
    demo: Mapped[bool] = mapped_column(Boolean, default=False)

    # Loaded when read (``selectinload`` where many structures' coverage is read): not with every structure a
    # request touches (the caller's, a page's), which cost 3-9 ms of ORM work per request (docs/operations.md).
    coverage: Mapped[list[StructureCoverage]] = relationship(
        back_populates="structure", cascade="all, delete-orphan", lazy="select"
    )


class StructureCoverage(Base):
    """A commune a structure covers; ``via_epci`` keeps where it came from (a whole EPCI)."""

    __tablename__ = "structure_coverage"
    __table_args__ = (
        UniqueConstraint("structure_id", "commune_insee"),
        Index("ix_structure_coverage_commune", "commune_insee", "structure_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    structure_id: Mapped[int] = mapped_column(ForeignKey("structure.id", ondelete="CASCADE"))
    commune_insee: Mapped[str] = mapped_column(ForeignKey("commune.insee"))
    via_epci: Mapped[str | None] = mapped_column(String(9))

    structure: Mapped[Structure] = relationship(back_populates="coverage")


class User(Base):
    """A professional (or an administrator) working in one structure."""

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))  # referent, supervisor, designer, admin
    structure_id: Mapped[int | None] = mapped_column(ForeignKey("structure.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    structure: Mapped[Structure | None] = relationship(lazy="joined")


ROLES = ("referent", "supervisor", "designer", "admin")


def structures_covering(session: Session, structure_type: str, commune_insee: str) -> list[Structure]:
    query = (
        select(Structure)
        .join(StructureCoverage, StructureCoverage.structure_id == Structure.id)
        .where(Structure.type == structure_type, StructureCoverage.commune_insee == commune_insee)
        .order_by(Structure.id)
    )
    return list(session.scalars(query))


def pilot_structure(session: Session) -> Structure | None:
    return session.scalar(select(Structure).where(Structure.is_pilot.is_(True)).order_by(Structure.id).limit(1))


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))
