"""Accounts, managed by administrators."""
from __future__ import annotations

from sqlalchemy import select

from api.auth import current_user, now_utc, roles_required
from api.extensions import db
from api.presenters import user_out
from api.schemas import Pagination, UserCreate, UserOut
from api.v1.common import TOTAL_COUNT, Blueprint, paginate
from engine import user_admin
from engine.db import transaction
from engine.directory import User

bp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="Users (admin)")


@bp.post("")
@roles_required("admin")
@bp.arguments(UserCreate, example={"email": "camille.durand@example.org", "name": "Camille Durand",
                                   "password": "une phrase de passe assez longue", "role": "admin"})
@bp.response(201, UserOut)
@bp.problems(400, 401, 403, 413, 422)
def create_user(body):
    with transaction(db.session):
        user, _ = user_admin.create_user(db.session, actor=current_user(), now=now_utc(), **body)
    return user_out(user)


@bp.get("")
@roles_required("admin")
@bp.arguments(Pagination, location="query")
@bp.response(200, UserOut(many=True), headers=TOTAL_COUNT)
@bp.problems(401, 403, 422)
def list_users(args):
    users, headers = paginate(select(User).order_by(User.id), args)
    return [user_out(u) for u in users], 200, headers
