"""POST /auth/token (log in), DELETE /auth/token (revoke the token in use)."""
from __future__ import annotations

from flask import abort

from api.auth import bearer_token, client_address, current_user, now_utc
from api.extensions import db
from api.schemas import TokenRequest, TokenResponse
from api.v1.common import Blueprint
from engine import accounts
from engine.db import transaction

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Authentication", public=True)


@bp.post("/token")
@bp.doc(security=[])
@bp.arguments(TokenRequest)
@bp.response(201, TokenResponse)
@bp.problems(400, 401, 413, 422, 429)
def create_token(body):
    now = now_utc()
    with transaction(db.session):
        user = accounts.authenticate(db.session, body["email"], body["password"], client_address(), now)
        token = accounts.issue_token(db.session, user, now) if user is not None else None
    if token is None:
        abort(401, description="wrong email or password")
    return {"token": token, "expires_at": now + accounts.TOKEN_LIFETIME}


@bp.delete("/token")
@bp.response(204)
@bp.problems(401)
def revoke_token():
    current_user()
    with transaction(db.session):
        accounts.revoke_token(db.session, bearer_token() or "", now_utc())
