"""The directory: structures by type and commune. Sensitive ones only for their own staff and admins."""
from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from api.auth import current_user
from api.schemas import StructureOut, StructureQuery
from api.v1.common import TOTAL_COUNT, Blueprint, paginate
from engine.directory import Structure, StructureCoverage, normalize_structure_type

bp = Blueprint("structures", __name__, url_prefix="/api/v1/structures", description="Directory")


@bp.get("")
@bp.arguments(StructureQuery, location="query")
@bp.response(200, StructureOut(many=True), headers=TOTAL_COUNT)
@bp.problems(401, 422)
def list_structures(args):
    user = current_user()
    query = select(Structure).options(selectinload(Structure.coverage)).order_by(Structure.id)
    if user.role != "admin":
        query = query.where(or_(Structure.sensitive.is_(False), Structure.id == user.structure_id))
    if args.get("type"):
        query = query.where(Structure.type == normalize_structure_type(args["type"]))
    if args.get("commune"):
        query = query.where(Structure.coverage.any(StructureCoverage.commune_insee == args["commune"]))
    structures, headers = paginate(query, args)
    return [_out(s) for s in structures], 200, headers


def _out(structure: Structure) -> dict:
    return {"id": structure.id, "type": structure.type, "name": structure.name, "siret": structure.siret,
            "email": structure.email, "phone": structure.phone, "address": structure.address,
            "is_pilot": structure.is_pilot, "communes": sorted(c.commune_insee for c in structure.coverage)}
