"""The administrators' pages under ``/admin``: « Utilisateurs », « Annuaire », « Journal des accès».

One parent blueprint ``web.admin`` checks, before any of its views, that the
visitor is signed in (else the login page, and back) and is an administrator
(else 403); the CSRF check of ``web`` runs first.
"""
from __future__ import annotations

from flask import Blueprint, abort

from web.admin import directory, journal, users
from web.common import current_user, login_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@login_required
def _administrators_only() -> None:
    if current_user().role != "admin":
        abort(403, description="Ces pages sont réservées aux administrateurs.")


bp.before_request(_administrators_only)
for _child in (users.bp, directory.bp, journal.bp):
    bp.register_blueprint(_child)
