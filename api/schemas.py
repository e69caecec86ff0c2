"""Marshmallow schemas of the REST API v1: every request body, query and response."""
from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, validate

from engine.directory import ROLES, STRUCTURE_TYPES

# Identifiers are 64-bit database keys: a bigger number is refused (422), never sent to the database.
ID_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
# PostgreSQL text cannot hold U+0000: refuse it at the door (422) rather than fail in the database (500).
NUL_FREE = r"^[^\x00]*$"
INSEE_CODE = r"^[0-9][0-9AB][0-9]{3}$"


def text(*, max: int, min: int = 0, **kwargs) -> fields.Str:
    """A string field of bounded length without NUL characters."""
    return fields.Str(validate=[validate.Length(min=min, max=max),
                                validate.Regexp(NUL_FREE, error="must not contain NUL characters")], **kwargs)


def ident(**kwargs) -> fields.Int:
    """A database identifier (1 .. 2^63-1)."""
    return fields.Int(validate=validate.Range(min=1, max=ID_MAX), **kwargs)


class ProblemOut(Schema):
    """An error, as RFC 9457 problem details (``application/problem+json``)."""

    type = fields.Str(required=True, metadata={"example": "about:blank"})
    title = fields.Str(required=True, metadata={"example": "Not Found"})
    status = fields.Int(required=True, metadata={"example": 404})
    detail = fields.Str()
    errors = fields.List(fields.Dict(), metadata={
        "description": "field errors ({field, message}) or deploy problems ({element_id, line, rule, message, "
                       "severity, code, params}: code names which of the rule's messages, params its values)"})


class StructureRef(Schema):
    id = fields.Int()
    name = fields.Str()
    type = fields.Str()


class UserRef(Schema):
    id = fields.Int()
    name = fields.Str()
    email = fields.Email()


# --- auth and users ---------------------------------------------------------------------------

class TokenRequest(Schema):
    email = text(required=True, max=255)
    password = fields.Str(required=True, load_only=True, validate=validate.Length(max=1024))


class TokenResponse(Schema):
    token = fields.Str(required=True)
    expires_at = fields.DateTime(required=True)


class UserCreate(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=255))
    name = text(required=True, min=1, max=255)
    password = fields.Str(required=True, load_only=True, validate=validate.Length(min=12, max=1024))
    role = fields.Str(required=True, validate=validate.OneOf(ROLES))
    structure_id = ident(allow_none=True, load_default=None)


class UserOut(Schema):
    id = fields.Int()
    email = fields.Email()
    name = fields.Str()
    role = fields.Str()
    structure = fields.Nested(StructureRef, allow_none=True)
    active = fields.Bool()


# --- directory --------------------------------------------------------------------------------

class Pagination(Schema):
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Int(load_default=50, validate=validate.Range(min=1, max=200))


class StructureQuery(Pagination):
    type = text(max=60, metadata={"description": "a type code (mission-locale...), a DORA code (ML) or a label"})
    commune = fields.Str(validate=validate.Regexp(INSEE_CODE))


class StructureOut(Schema):
    id = fields.Int()
    type = fields.Str(metadata={"enum": list(STRUCTURE_TYPES)})
    name = fields.Str()
    siret = fields.Str(allow_none=True)
    email = fields.Str(allow_none=True)
    phone = fields.Str(allow_none=True)
    address = fields.Str(allow_none=True)
    is_pilot = fields.Bool()
    communes = fields.List(fields.Str())


# --- pathways ---------------------------------------------------------------------------------

class PathwayOut(Schema):
    key = fields.Str()
    name = fields.Str()
    version = fields.Int()
    versions = fields.List(fields.Int())
    deployed_at = fields.DateTime()
    deployed_by = fields.Str()


class PathwayDeploy(Schema):
    bpmn_xml = text(required=True, max=8 * 1024 * 1024)
    dmn_xml = fields.List(text(max=8 * 1024 * 1024), load_default=list)
    forms = fields.Dict(keys=fields.Str(validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,119}$")),
                        values=fields.Dict(), load_default=dict)


class Problem(Schema):
    element_id = fields.Str(allow_none=True)
    line = fields.Int(allow_none=True)
    rule = fields.Str()
    message = fields.Str()
    severity = fields.Str()
    code = fields.Str(allow_none=True, metadata={"description": "which of the rule's messages (stable)"})
    params = fields.Dict(metadata={"description": "the values in the message, by name"})


class DeployResult(Schema):
    key = fields.Str()
    version = fields.Int()
    created = fields.Bool()
    warnings = fields.List(fields.Nested(Problem))


class PathwayVersionOut(Schema):
    key = fields.Str()
    version = fields.Int()
    name = fields.Str()
    sha256 = fields.Str()
    deployed_at = fields.DateTime()
    deployed_by = fields.Str()
    warnings = fields.List(fields.Nested(Problem))
    bpmn_xml = fields.Str()
    dmn_xml = fields.List(fields.Str())


# --- cases and tasks --------------------------------------------------------------------------

class PersonIn(Schema):
    first_name = text(required=True, min=1, max=120, metadata={"example": "Inès"})
    last_name = text(required=True, min=1, max=120, metadata={"example": "Martin"})
    birth_date = fields.Date(required=True, metadata={"example": "2001-01-02"})
    commune_insee = fields.Str(required=True, validate=validate.Regexp(INSEE_CODE),
                               metadata={"example": "91228", "description": "code INSEE de la commune"})


class PersonOut(Schema):
    id = fields.Int()
    first_name = fields.Str()
    last_name = fields.Str()
    birth_date = fields.Date()
    commune_insee = fields.Str()


class CaseCreate(Schema):
    person = fields.Nested(PersonIn, required=True)
    pathway_key = text(required=True, min=1, max=120, metadata={"example": "jeune-sortant-mission-locale"})
    data = fields.Dict(load_default=dict)


class CareTeamOut(Schema):
    structure = fields.Nested(StructureRef)
    user = fields.Nested(UserRef, allow_none=True)
    role = fields.Str()
    started_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)
    end_reason = fields.Str(allow_none=True)


class TaskOut(Schema):
    id = fields.Int()
    case_id = fields.Int()
    bpmn_id = fields.Str()
    name = fields.Str()
    lane = fields.Str(allow_none=True)
    structure = fields.Nested(StructureRef, allow_none=True)
    assignee = fields.Str(allow_none=True)
    state = fields.Str()
    audience = fields.Str()
    unassigned = fields.Bool()
    form_key = fields.Str(allow_none=True)
    created_at = fields.DateTime()
    due_at = fields.DateTime(allow_none=True)
    ended_at = fields.DateTime(allow_none=True)
    escalation_level = fields.Int()
    overdue = fields.Bool()


class TaskDetail(TaskOut):
    form_schema = fields.Dict(allow_none=True)
    data = fields.Dict()


class EventOut(Schema):
    at = fields.DateTime()
    actor = fields.Str()
    kind = fields.Str()
    bpmn_id = fields.Str(allow_none=True)
    summary = fields.Dict()


class PathwayRef(Schema):
    key = fields.Str()
    version = fields.Int()


class CaseOut(Schema):
    id = fields.Int()
    status = fields.Str()
    pathway = fields.Nested(PathwayRef)
    person = fields.Nested(PersonOut, allow_none=True)
    commune_insee = fields.Str(allow_none=True)
    exit_reason = fields.Str(allow_none=True)
    incident = fields.Dict(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)
    care_team = fields.List(fields.Nested(CareTeamOut))
    open_tasks = fields.List(fields.Nested(TaskOut))
    timeline = fields.List(fields.Nested(EventOut))


class CaseSummary(Schema):
    id = fields.Int()
    status = fields.Str()
    pathway = fields.Nested(PathwayRef)
    person = fields.Nested(PersonOut, allow_none=True)
    updated_at = fields.DateTime()


class CaseQuery(Pagination):
    status = fields.Str(validate=validate.OneOf(("active", "closed", "incident")))


class TaskQuery(Pagination):
    scope = fields.Str(load_default="mine", validate=validate.OneOf(("mine", "structure")))
    status = fields.Str(load_default="open", validate=validate.OneOf(("open", "completed")))
    overdue = fields.Bool(load_default=False)


class TaskComplete(Schema):
    data = fields.Dict(required=True)


class TaskAssign(Schema):
    user_id = ident(required=True)


class MessageIn(Schema):
    payload = fields.Dict(load_default=dict)


class OverdueQuery(Pagination):
    structure = ident()
    pathway = text(max=120)
    min_age_days = fields.Int(load_default=0, validate=validate.Range(min=0, max=3660),
                              metadata={"description": "overdue by at least this many days"})
    escalation_level = fields.Int(validate=validate.Range(min=0, max=2))
    hand_offs = fields.Bool(load_default=False, metadata={"description": "only the receiving side of hand-offs"})


class OverdueOut(Schema):
    task_id = fields.Int()
    case_id = fields.Int()
    name = fields.Str()
    pathway = fields.Str()
    structure = fields.Nested(StructureRef, allow_none=True)
    due_at = fields.DateTime()
    age_days = fields.Float()
    escalation_level = fields.Int()
    audience = fields.Str()
    initials = fields.Str()


MAX_ADVANCE_DAYS = 100 * 366
_DAYS_PER = {"Y": 366, "M": 31, "W": 7, "D": 1, "TH": 1 / 24, "TM": 1 / 1440, "TS": 1 / 86400}


def _bounded_duration(value: str) -> None:
    """At most a century: the engine adds months one loop turn at a time and fires every timer on the way."""
    date_part, _, time_part = value[1:].partition("T")
    try:
        days = sum(float(n) * _DAYS_PER[prefix + unit]
                   for prefix, part in (("", date_part), ("T", time_part))
                   for n, unit in re.findall(r"([0-9.]+)([A-Z])", part) if prefix + unit in _DAYS_PER)
    except ValueError:
        return  # malformed numbers: the engine refuses them with a 422 of its own
    if days > MAX_ADVANCE_DAYS:
        raise ValidationError("at most 100 years at a time")


class AdvanceIn(Schema):
    duration = fields.Str(required=True, validate=[validate.Length(max=40), validate.Regexp(r"^P(?!$)[0-9YMWDTHS.]+$"),
                                                   _bounded_duration],
                          metadata={"example": "P15D", "description": "an ISO 8601 duration, at most 100 years"})


class AdvanceOut(Schema):
    started_at = fields.DateTime()
    now = fields.DateTime()
    firings = fields.Int()


class AuditQuery(Pagination):
    case = ident()
    user = ident()


class AuditOut(Schema):
    at = fields.DateTime()
    user_id = fields.Int(allow_none=True)
    case_id = fields.Int(allow_none=True)
    action = fields.Str()
    outcome = fields.Str()
    address = fields.Str(allow_none=True)
    detail = fields.Str(allow_none=True)
