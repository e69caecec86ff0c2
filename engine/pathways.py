"""Deploying pathways: validate, version, store once."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.bpmn_parsing import LibraryEntry, ParsedPathway, parse_pathway
from engine.spec_cache import library_entry
from engine.context import EngineContext
from engine.errors import Conflict, DeployError, NotFound, Problem
from engine.forms import check_form_schemas, load_forms_dir
from engine.models import PathwayVersion


@dataclass
class DeployResult:
    version: PathwayVersion
    created: bool


def deploy(
    session: Session,
    ctx: EngineContext,
    bpmn_xml: bytes | str,
    dmn_xmls: Sequence[bytes | str] = (),
    *,
    forms: Mapping[str, dict] | None = None,
    deployed_by: str,
    key: str | None = None,
) -> DeployResult:
    """Validate and store a new version, or return the identical existing one.

    ``key``, when given, is the pathway the caller means to version (a modeler page for that
    pathway): a diagram whose executable process has another id is refused rather than
    deployed under a new key.
    """
    bpmn = _as_bytes(bpmn_xml)
    dmns = [_as_bytes(d) for d in dmn_xmls]
    parsed, available_forms = _validate(session, ctx, bpmn, dmns, forms, key)
    used_forms = {
        task.form_key: available_forms[task.form_key]
        for task in parsed.user_tasks.values()
        if task.form_key in available_forms
    }
    digest = _digest(bpmn, dmns, used_forms)
    existing = session.scalar(
        select(PathwayVersion).where(PathwayVersion.key == parsed.key, PathwayVersion.sha256 == digest)
    )
    if existing is not None:
        return DeployResult(existing, created=False)
    version = PathwayVersion(
        key=parsed.key,
        version=_next_version_number(session, parsed.key),
        name=parsed.name,
        sha256=digest,
        bpmn_xml=bpmn.decode("utf-8"),
        dmn_xml=[d.decode("utf-8") for d in dmns],
        forms=used_forms,
        dependencies=_dependencies(session, parsed),
        meta=_meta(parsed),
        warnings=[w.to_dict() for w in parsed.warnings],
        deployed_at=ctx.clock.now(session),
        deployed_by=deployed_by,
    )
    session.add(version)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"another deployment of {parsed.key} happened at the same time; retry") from exc
    return DeployResult(version, created=True)


def check(
    session: Session,
    ctx: EngineContext,
    bpmn_xml: bytes | str,
    dmn_xmls: Sequence[bytes | str] = (),
    *,
    forms: Mapping[str, dict] | None = None,
    key: str | None = None,
) -> list[Problem]:
    """What deploy would say of these files, errors and warnings, without storing anything (a dry run).

    Raises TooLarge, like deploy, for a file over the size bound.
    """
    try:
        parsed, _ = _validate(session, ctx, _as_bytes(bpmn_xml), [_as_bytes(d) for d in dmn_xmls], forms, key)
    except DeployError as exc:
        return list(exc.problems)
    return list(parsed.warnings)


def _validate(session, ctx, bpmn: bytes, dmns: list[bytes], forms, key) -> tuple[ParsedPathway, dict[str, dict]]:
    """Parse and lint as deploy does (XSD, generic and SPIE rules); raise DeployError on any error."""
    uploaded_forms = dict(forms or {})
    form_problems = check_form_schemas(uploaded_forms)
    if form_problems:
        raise DeployError(form_problems)
    available_forms = {**load_forms_dir(ctx.forms_dir), **uploaded_forms}
    parsed = parse_pathway(bpmn, dmns, library=_latest_library(session), form_keys=available_forms)
    if key is not None and parsed.key != key:
        message = (f"the executable process of this diagram is {parsed.key!r}, not {key!r}: "
                   f"keep the process id {key!r} to version this pathway")
        raise DeployError([Problem("process-key", message, element_id=parsed.key, code="process-key-changed",
                                   params={"found": parsed.key, "expected": key})])
    return parsed, available_forms


def get_version(session: Session, key: str, number: int | None = None) -> PathwayVersion:
    """The named version of a pathway, or its latest."""
    query = select(PathwayVersion).where(PathwayVersion.key == key)
    if number is None:
        query = query.order_by(PathwayVersion.version.desc()).limit(1)
    else:
        query = query.where(PathwayVersion.version == number)
    version = session.scalar(query)
    if version is None:
        raise _not_deployed(key, number)
    return version


def version_ref(session: Session, key: str, number: int | None = None) -> tuple[int, int]:
    """``(id, number)`` of the named version of a pathway, or of its latest: all a case start reads.

    One prepared statement on two columns, where :func:`get_version` loads the
    whole row (the BPMN, tens of kB) into the session.
    """
    query = _LATEST_REF if number is None else _NUMBERED_REF
    found = session.execute(query, {"key": key, "number": number}).first()
    if found is None:
        raise _not_deployed(key, number)
    return found.id, found.version


_REF = select(PathwayVersion.id, PathwayVersion.version).where(PathwayVersion.key == bindparam("key"))
_LATEST_REF = _REF.order_by(PathwayVersion.version.desc()).limit(1)
_NUMBERED_REF = _REF.where(PathwayVersion.version == bindparam("number"))


def _not_deployed(key: str, number: int | None) -> NotFound:
    return NotFound(f"pathway {key!r}" + (f" version {number}" if number else "") + " is not deployed")


def list_latest(session: Session) -> list[PathwayVersion]:
    latest = (
        select(PathwayVersion.key, func.max(PathwayVersion.version).label("version"))
        .group_by(PathwayVersion.key)
        .subquery()
    )
    query = select(PathwayVersion).join(
        latest, (PathwayVersion.key == latest.c.key) & (PathwayVersion.version == latest.c.version)
    )
    return list(session.scalars(query.order_by(PathwayVersion.key)))


def _latest_library(session: Session) -> dict[str, LibraryEntry]:
    return {v.key: library_entry(v) for v in list_latest(session)}



def _dependencies(session: Session, parsed: ParsedPathway) -> dict[str, int]:
    deployed = {v.key: v.id for v in list_latest(session)}
    return {key: deployed[key] for key in sorted(parsed.called_processes) if key in deployed and key != parsed.key}


def _meta(parsed: ParsedPathway) -> dict:
    return {
        "processes": sorted(parsed.processes),
        "user_tasks": {k: asdict(v) for k, v in parsed.user_tasks.items()},
        "lanes": {
            name: {"structure_types": list(lane.structure_types), "structure_type_variable": lane.structure_type_variable}
            for name, lane in parsed.lanes.items()
        },
        "exits": sorted(parsed.exits),
        "hand_offs": parsed.hand_offs,
    }


def _next_version_number(session: Session, key: str) -> int:
    current = session.scalar(select(func.max(PathwayVersion.version)).where(PathwayVersion.key == key))
    return (current or 0) + 1


def _digest(bpmn: bytes, dmns: list[bytes], forms: dict) -> str:
    sha = hashlib.sha256(bpmn)
    for dmn in dmns:
        sha.update(b"\0dmn\0" + dmn)
    sha.update(b"\0forms\0" + json.dumps(forms, sort_keys=True).encode("utf-8"))
    return sha.hexdigest()


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value
