"""Who is calling: bearer tokens for the API (a login session for the web pages comes with them).

The seam for ProConnect (the State's OpenID Connect for professionals) is
:func:`resolve_user`: an OIDC login would map the verified email to a
``User`` and open the same kind of session, with Authlib, without touching
the views.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime, timezone
from functools import wraps

from flask import abort, current_app, g, request, session

from api.extensions import db
from engine.accounts import user_for_token
from engine.directory import User


def now_utc() -> datetime:
    """Wall-clock time for security decisions (tokens, throttling), even in simulation mode."""
    return datetime.now(timezone.utc)


def client_address() -> str:
    return (request.remote_addr or "unknown")[:64]


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def resolve_user() -> User | None:
    """The authenticated user of this request (bearer token, else web session), or None."""
    if "user" not in g:
        token = bearer_token()
        user = None
        if token:
            user = user_for_token(db.session, token, now_utc())
        elif session.get("user_id"):
            user = db.session.get(User, session["user_id"])
            valid = user is not None and user.active and hmac.compare_digest(
                session.get("password_stamp", ""), password_stamp(user))
            user = user if valid else None
        g.user = user
    return g.user


def web_session_values(user: User) -> dict:
    """What a login leaves in the web session: the user, and the stamp of the password it was opened with."""
    return {"user_id": user.id, "password_stamp": password_stamp(user)}


def password_stamp(user: User) -> str:
    """What ties a web session to the password it was opened with: a new password closes the open sessions.

    A keyed digest of the password's hash, so the cookie (signed, not encrypted) tells nothing of it.
    """
    key = current_app.secret_key
    key = key if isinstance(key, bytes) else str(key).encode()
    return hmac.new(key, (user.password_hash or "").encode(), hashlib.sha256).hexdigest()[:32]


def current_user() -> User:
    user = resolve_user()
    if user is None:
        abort(401, description="authentication required: send 'Authorization: Bearer <token>'")
    return user


def roles_required(*roles: str) -> Callable:
    """Refuse (403) users whose role is not one of ``roles``; 401 without a user."""
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if current_user().role not in roles:
                abort(403, description=f"this needs the role {' or '.join(roles)}")
            return view(*args, **kwargs)
        return wrapped
    return decorator


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        current_user()
        return view(*args, **kwargs)
    return wrapped
