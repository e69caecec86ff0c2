"""A per-session CSRF token, checked on every POST of the web pages.

Why not Flask-WTF's ``CSRFProtect``: our forms are built from JSON Schemas,
not WTForms, so the library would be a dependency for these thirty lines. The
scheme is the usual synchronizer token: a random token kept in the (signed)
session cookie, put in every form as ``csrf_token`` (htmx posts the form, so
it goes too; scripts may send the ``X-CSRF-Token`` header instead), compared
in constant time. The session cookie is also ``SameSite=Lax`` (api/app.py).
"""
from __future__ import annotations

import hmac
import secrets

from flask import Blueprint, abort, request, session

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def token() -> str:
    """This session's token, created on first use (templates call it as ``csrf_token()``)."""
    value = session.get(FIELD)
    if not value:
        value = session[FIELD] = secrets.token_urlsafe(32)
    return value


def renew() -> str:
    """A new token, after login: a token seen before login is worth nothing after it."""
    session.pop(FIELD, None)
    return token()


def check() -> None:
    """Refuse (400) an unsafe request whose token is missing or is not this session's."""
    if request.method in _SAFE_METHODS:
        return
    expected = session.get(FIELD)
    sent = request.form.get(FIELD) or request.headers.get(HEADER) or ""
    if not expected or not hmac.compare_digest(str(expected), str(sent)):
        abort(400, description="Le formulaire a expiré ou ne vient pas de ce site : rechargez la page et recommencez.")


def protect(bp: Blueprint) -> None:
    """Check the token before every view of ``bp`` and of its child blueprints."""
    bp.before_request(check)
    bp.app_context_processor(lambda: {"csrf_token": token})
