"""Pathways: list, deploy (designers), read a version."""
from __future__ import annotations

from sqlalchemy import select

from api.auth import current_user, roles_required
from api.extensions import db
from api.schemas import DeployResult, PathwayDeploy, PathwayOut, PathwayVersionOut
from api.v1.common import Blueprint, engine_context
from engine import pathways
from engine.db import transaction
from engine.models import PathwayVersion

bp = Blueprint("pathways", __name__, url_prefix="/api/v1/pathways", description="Pathways")


@bp.get("")
@bp.response(200, PathwayOut(many=True))
@bp.problems(401)
def list_pathways():
    current_user()
    numbers: dict[str, list[int]] = {}
    for key, number in db.session.execute(select(PathwayVersion.key, PathwayVersion.version)
                                          .order_by(PathwayVersion.version)):
        numbers.setdefault(key, []).append(number)
    return [{"key": v.key, "name": v.name, "version": v.version, "versions": numbers[v.key],
             "deployed_at": v.deployed_at, "deployed_by": v.deployed_by}
            for v in pathways.list_latest(db.session)]


@bp.post("")
@roles_required("designer", "admin")
@bp.arguments(PathwayDeploy)
@bp.response(201, DeployResult)
@bp.alt_response(200, schema=DeployResult, description="identical content: the existing version", success=True)
@bp.problems(400, 401, 403, 413, 422)
def deploy(body):
    user = current_user()
    with transaction(db.session):
        result = pathways.deploy(db.session, engine_context(), body["bpmn_xml"], body["dmn_xml"],
                                 forms=body["forms"], deployed_by=user.email)
    version = result.version
    payload = {"key": version.key, "version": version.version, "created": result.created,
               "warnings": version.warnings}
    return payload, 201 if result.created else 200


@bp.get("/<name:key>/versions/<version:number>")
@bp.response(200, PathwayVersionOut)
@bp.problems(401, 404)
def get_version(key: str, number: int):
    current_user()
    version = pathways.get_version(db.session, key, number)
    return {"key": version.key, "version": version.version, "name": version.name, "sha256": version.sha256,
            "deployed_at": version.deployed_at, "deployed_by": version.deployed_by,
            "warnings": version.warnings, "bpmn_xml": version.bpmn_xml, "dmn_xml": version.dmn_xml}
