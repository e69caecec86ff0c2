"""Liveness and readiness: load balancers and ``spie serve`` smoke tests use it."""
from flask import Blueprint
from sqlalchemy import text

from api.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    db.session.execute(text("SELECT 1"))
    return {"status": "ok"}
