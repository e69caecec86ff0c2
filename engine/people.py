"""Persons accompanied, and the care team (groupe de suivi) of each case."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Base, BigId, UTCDateTime
from engine.directory import Structure, User

# Why an accompaniment ends. Positive exits and moves away may close without a hand-off.
EXIT_REASONS = {
    "emploi-durable": "Emploi durable (CDI, CDD de 6 mois ou plus)",
    "formation-qualifiante": "Formation qualifiante",
    "creation-entreprise": "Création d'entreprise",
    "demenagement-hors-territoire": "Déménagement hors du territoire",
    "relais-autre-structure": "Relais vers une autre structure",
    "fin-de-droits": "Fin de droits",
    "abandon": "Abandon",
    "refus": "Refus de l'accompagnement",
    "deces": "Décès",
    "autre": "Autre",
}
EXITS_WITHOUT_HAND_OFF = frozenset(
    {"emploi-durable", "formation-qualifiante", "creation-entreprise", "demenagement-hors-territoire", "deces"}
)


class Person(Base):
    """Minimal identity of a person accompanied (no NIR required)."""

    __tablename__ = "person"
    __table_args__ = (Index("ix_person_identity", "last_name", "first_name", "birth_date"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    first_name: Mapped[str] = mapped_column(String(120))
    last_name: Mapped[str] = mapped_column(String(120))
    birth_date: Mapped[date] = mapped_column(Date)
    commune_insee: Mapped[str] = mapped_column(String(5))
    contact: Mapped[dict] = mapped_column(JSON, default=dict)  # email, phone, if the person agrees
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# The identity look-up of engine.cases.find_or_create_person ignores case (migration 0007).
Index("ix_person_identity_lower", func.lower(Person.last_name), func.lower(Person.first_name), Person.birth_date)


class CareTeamMember(Base):
    """A structure (and usually one of its professionals) active on a case, with dates."""

    __tablename__ = "care_team_member"
    __table_args__ = (
        # The current members of a case, from the index alone (engine.access's visibility tests; migration 0007).
        Index("ix_care_team_current_case", "case_id", "structure_id", postgresql_where=text("ended_at IS NULL"),
              sqlite_where=text("ended_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    structure_id: Mapped[int] = mapped_column(ForeignKey("structure.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), index=True)
    role: Mapped[str] = mapped_column(String(20), default="referent")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(40))

    structure: Mapped[Structure] = relationship(lazy="joined")
    user: Mapped[User | None] = relationship(lazy="joined")
