"""Who works a new user task: lane → structure type → structure of the person's commune → référent.

A lane names one or more structure types (``spie:structureType="ccas|departement"``
is "the CCAS if one covers the commune, else the Département"), or a data
variable holding them. The first type with a structure covering the case's
commune wins; the task goes to the case's active référent of that structure,
else to the structure's queue. Escalation tasks go to the structure's
supervisors (``spie:audience="supervisor"``) or to the Département pilot.
When nothing covers the commune, the pilot's queue gets the task, flagged
unassigned with the reason: a task is never lost.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.directory import STRUCTURE_TYPES, Structure, StructureCoverage, User, normalize_structure_type, pilot_structure
from engine.errors import InvalidInput
from engine.people import CareTeamMember


@dataclass(frozen=True)
class Assignment:
    structure_id: int | None
    assignee: str | None = None
    unassigned_reason: str | None = None


def lane_structure_types(lane: dict, task_data: dict, lane_name: str | None) -> list[str]:
    """Structure types of a lane, in order of preference (codes normalized, unknown ones kept).

    ``spie:structureTypeVariable`` wins when the case data holds it; ``spie:structureType``
    (or else the lane's name) is the default, e.g. for a pathway started directly.
    """
    variable = lane.get("structure_type_variable")
    chosen = str(task_data.get(variable) or "") if variable else ""
    candidates = chosen.split("|") if chosen else list(lane.get("structure_types") or []) or [lane_name or ""]
    return [_normalized(c) for c in candidates if c and c.strip()]


def assign(session: Session, *, case, lane_types: list[str], audience: str) -> Assignment:
    if case.commune_insee is None:  # a technical case with no person: no directory involved
        return Assignment(None)
    if audience == "pilot":
        return _to_pilot(session, None)
    structure_id, referent_email = _covering(session, lane_types, case.commune_insee, case.id)
    if structure_id is None:
        wanted = " or ".join(lane_types) or "(none)"
        return _to_pilot(session, f"no structure of type {wanted} covers commune {case.commune_insee}")
    if audience == "supervisor":
        return Assignment(structure_id)
    return Assignment(structure_id, assignee=referent_email)


def resolve_structure_id(session: Session, case, lane_types: list[str]) -> int | None:
    return _covering(session, lane_types, case.commune_insee, None)[0] if case.commune_insee else None


def _covering(session: Session, lane_types: list[str], commune_insee: str,
              case_id: int | None) -> tuple[int | None, str | None]:
    """The structure of the first of ``lane_types`` that covers the commune (the lowest id of that type),
    and the email of the case's latest active référent of that structure (None without one)."""
    for structure_type in lane_types:
        if structure_type not in STRUCTURE_TYPES:
            continue
        found = session.execute(_FIRST_COVERING, {"structure_type": structure_type, "commune": commune_insee,
                                                  "case_id": case_id}).first()
        if found is not None:
            return found[0], found[1]
    return None, None


def _to_pilot(session: Session, reason: str | None) -> Assignment:
    pilot = pilot_structure(session)
    if pilot is None and reason is None:
        reason = "no pilot structure in the directory"
    return Assignment(pilot.id if pilot else None, unassigned_reason=reason)


# Every new task of a person's case asks it: built once, two columns, no objects loaded.
_ACTIVE_REFERENT_EMAIL = (
    select(User.email)
    .join(CareTeamMember, CareTeamMember.user_id == User.id)
    .where(CareTeamMember.case_id == bindparam("case_id"), CareTeamMember.structure_id == Structure.id,
           CareTeamMember.ended_at.is_(None))
    .order_by(CareTeamMember.started_at.desc())
    .limit(1)
    .scalar_subquery()
)
_FIRST_COVERING = (
    select(Structure.id, _ACTIVE_REFERENT_EMAIL)
    .join(StructureCoverage, StructureCoverage.structure_id == Structure.id)
    .where(Structure.type == bindparam("structure_type"), StructureCoverage.commune_insee == bindparam("commune"))
    .order_by(Structure.id)
    .limit(1)
)


def _normalized(value: str) -> str:
    try:
        return normalize_structure_type(value)
    except InvalidInput:
        return value.strip()
