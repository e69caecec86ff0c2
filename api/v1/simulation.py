"""Simulated time, for demos, training and rehearsing a pathway; absent outside simulation mode."""
from __future__ import annotations

from flask import abort, current_app

from api.auth import current_user
from api.extensions import db
from api.schemas import AdvanceIn, AdvanceOut
from api.v1.common import Blueprint, engine_context
from engine import simulation
from engine.db import make_session_factory

bp = Blueprint("simulation", __name__, url_prefix="/api/v1/simulation", description="Simulation mode")


@bp.post("/advance")
@bp.arguments(AdvanceIn)
@bp.response(200, AdvanceOut)
@bp.problems(400, 401, 403, 404, 413, 422)
def advance(body):
    if not current_app.config["SPIE_SIMULATION"]:
        abort(404)
    if current_user().role not in ("admin", "supervisor"):
        abort(403, description="only administrators and supervisors move simulated time")
    result = simulation.advance(make_session_factory(db.engine), engine_context(), body["duration"])
    return {"started_at": result.started_at, "now": result.now, "firings": result.firings}
