"""Every error as ``application/problem+json`` (RFC 9457): type, title, status, detail, errors."""
from __future__ import annotations

import logging

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from engine.accounts import THROTTLE_WINDOW, TooManyAttempts
from engine.errors import Conflict, EngineError, InvalidInput, NotFound, TooLarge

log = logging.getLogger(__name__)

_STATUS = [(TooLarge, 413), (NotFound, 404), (Conflict, 409), (InvalidInput, 422)]


def problem(status: int, title: str, detail: str | None = None, errors: list | None = None) -> Response:
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    return Response(json.dumps(body), status=status, mimetype="application/problem+json")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(EngineError, _engine_error)
    app.register_error_handler(TooManyAttempts, _too_many_attempts)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _too_many_attempts(exc: TooManyAttempts) -> Response:
    response = problem(429, "Too Many Requests", str(exc))
    response.headers["Retry-After"] = str(int(THROTTLE_WINDOW.total_seconds()))
    return response


def _engine_error(exc: EngineError) -> Response:
    status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)
    errors = getattr(exc, "errors", None)
    return problem(status, _title(status), str(exc), errors)


def _http_error(exc: HTTPException) -> Response:
    errors = None
    messages = (getattr(exc, "data", None) or {}).get("messages")  # webargs/marshmallow validation
    if messages:
        errors = list(_flatten(messages))
    status = exc.code or 500
    detail = "the request has invalid fields" if errors else exc.description
    response = problem(status, _title(status), detail, errors)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="spie"'  # RFC 9110 §11.6.1
    elif status == 405 and getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return problem(500, "Internal Server Error", "an unexpected error happened; it has been logged")


def _flatten(messages, prefix: str = ""):
    """webargs' {"json": {"person": {"birth_date": ["Not a valid date."]}}} → [{field, message}]."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key in ("json", "query", "form", "headers", "view_args") and not prefix:
                yield from _flatten(value, "")
            else:
                yield from _flatten(value, f"{prefix}/{key}" if prefix else str(key))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        for message in messages:
            yield {"field": prefix, "message": message}
    else:
        for item in messages:
            yield from _flatten(item, prefix)


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
