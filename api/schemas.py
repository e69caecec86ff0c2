"""Marshmallow schemas of the REST API v1: every request body, query and response."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from engine.directory import ROLES, STRUCTURE_TYPES


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
    email = fields.Str(required=True, validate=validate.Length(max=255))
    password = fields.Str(required=True, load_only=True, validate=validate.Length(max=1024))


class TokenResponse(Schema):
    token = fields.Str(required=True)
    expires_at = fields.DateTime(required=True)


class UserCreate(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=255))
    name = fields.Str(required=True, validate=validate.Length(min=1, max=255))
    password = fields.Str(required=True, load_only=True, validate=validate.Length(min=12, max=1024))
    role = fields.Str(required=True, validate=validate.OneOf(ROLES))
    structure_id = fields.Int(allow_none=True, load_default=None)


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
    type = fields.Str(validate=validate.Length(max=60))
    commune = fields.Str(validate=validate.Regexp(r"^[0-9][0-9AB][0-9]{3}$"))


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
    bpmn_xml = fields.Str(required=True)
    dmn_xml = fields.List(fields.Str(), load_default=list)
    forms = fields.Dict(keys=fields.Str(validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,119}$")),
                        values=fields.Dict(), load_default=dict)


class Problem(Schema):
    element_id = fields.Str(allow_none=True)
    line = fields.Int(allow_none=True)
    rule = fields.Str()
    message = fields.Str()
    severity = fields.Str()


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
    first_name = fields.Str(required=True, validate=validate.Length(min=1, max=120))
    last_name = fields.Str(required=True, validate=validate.Length(min=1, max=120))
    birth_date = fields.Date(required=True)
    commune_insee = fields.Str(required=True, validate=validate.Regexp(r"^[0-9][0-9AB][0-9]{3}$"))


class PersonOut(Schema):
    id = fields.Int()
    first_name = fields.Str()
    last_name = fields.Str()
    birth_date = fields.Date()
    commune_insee = fields.Str()


class CaseCreate(Schema):
    person = fields.Nested(PersonIn, required=True)
    pathway_key = fields.Str(required=True, validate=validate.Length(min=1, max=120))
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
    user_id = fields.Int(required=True)


class MessageIn(Schema):
    payload = fields.Dict(load_default=dict)


class OverdueQuery(Pagination):
    structure = fields.Int()
    pathway = fields.Str(validate=validate.Length(max=120))


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


class AdvanceIn(Schema):
    duration = fields.Str(required=True, validate=validate.Regexp(r"^P(?!$)[0-9YMWDTHS.]+$"))


class AdvanceOut(Schema):
    started_at = fields.DateTime()
    now = fields.DateTime()
    firings = fields.Int()


class AuditQuery(Pagination):
    case = fields.Int()
    user = fields.Int()


class AuditOut(Schema):
    at = fields.DateTime()
    user_id = fields.Int(allow_none=True)
    case_id = fields.Int(allow_none=True)
    action = fields.Str()
    outcome = fields.Str()
    address = fields.Str(allow_none=True)
    detail = fields.Str(allow_none=True)
