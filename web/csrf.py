"""A per-session CSRF token, checked on every POST of the web pages.

Why not Flask-WTF's ``CSRFProtect``: our forms are built from JSON Schemas,
not WTForms, so the library would be a dependency for these thirty lines. The
scheme is the usual synchronizer token: a random token kept in the (signed)
session cookie, put in every form as ``csrf_token`` (htmx posts the form, so
it goes too; scripts may send the ``X-CSRF-Token`` header instead), compared
in constant time. The session cookie is also ``SameSite=Lax`` (api/app.py).

Forms for visitors without an account (:func:`signed_form`) get no session, hence no
cookie: their token is signed with the app's secret key and dated instead (valid
:data:`SIGNED_MAX_AGE` seconds), and the view checks it (:func:`check_signed`) once it
has bounded the request's size.
"""
from __future__ import annotations

import hmac
import secrets

from flask import Blueprint, abort, current_app, request, session
from itsdangerous import BadSignature, URLSafeTimedSerializer

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SIGNED = "spie_signed_form"
SIGNED_MAX_AGE = 2 * 3600
EXPIRED = "Le formulaire a expiré ou ne vient pas de ce site : rechargez la page et recommencez."


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
    if request.method in _SAFE_METHODS or getattr(current_app.view_functions.get(request.endpoint), _SIGNED, False):
        return
    expected = session.get(FIELD)
    sent = request.form.get(FIELD) or request.headers.get(HEADER) or ""
    if not expected or not hmac.compare_digest(str(expected), str(sent)):
        abort(400, description=EXPIRED)


def signed_form(view):
    """Mark a view whose form is for visitors without an account: it calls :func:`check_signed` itself."""
    setattr(view, _SIGNED, True)
    return view


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="spie-formulaire-public")


def signed_token(purpose: str) -> str:
    """A dated token for the form ``purpose``, without session (templates: ``signed_csrf_token("demande")``)."""
    return _serializer().dumps(purpose)


def check_signed(purpose: str) -> None:
    """Refuse (400) a POST whose signed token is missing, forged, older than SIGNED_MAX_AGE or for another form."""
    try:
        signed = _serializer().loads(str(request.form.get(FIELD, "")), max_age=SIGNED_MAX_AGE)
    except BadSignature:
        abort(400, description=EXPIRED)
    if signed != purpose:
        abort(400, description=EXPIRED)


def protect(bp: Blueprint) -> None:
    """Check the token before every view of ``bp`` and of its child blueprints."""
    bp.before_request(check)
    bp.app_context_processor(lambda: {"csrf_token": token, "signed_csrf_token": signed_token})
