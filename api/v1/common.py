"""Helpers shared by the v1 views: blueprint, URL converters, pagination, access logging, the engine context."""
from __future__ import annotations

from http import HTTPStatus

import flask_smorest
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.sql import Select
from webargs.flaskparser import FlaskParser, abort as webargs_abort
from werkzeug.routing import BaseConverter, IntegerConverter

from api.auth import client_address, current_user, now_utc
from api.extensions import db
from api.presenters import case_out
from api.schemas import ID_MAX, INT32_MAX
from engine import access
from engine.context import EngineContext
from engine.directory import User
from engine.models import Case


class Parser(FlaskParser):
    """webargs' parser, also refusing (400) JSON too deeply nested for Python's parser."""

    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            webargs_abort(400, messages={"json": ["Invalid JSON body: nested too deeply."]})


class Blueprint(flask_smorest.Blueprint):
    """A v1 blueprint: its views need a user (401 before any argument is even parsed) unless ``public``."""

    ARGUMENTS_PARSER = Parser()

    def __init__(self, *args, public: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not public:
            self.before_request(_require_user)

    def problems(self, *codes: int):
        """Document the error responses (problem+json) a view can return."""
        def decorator(view):
            for code in sorted(codes, reverse=True):
                view = self.alt_response(code, response=HTTPStatus(code).name)(view)
            return view
        return decorator


def _require_user() -> None:
    current_user()  # aborts with 401 without a valid token; returning None lets the view run


class IdConverter(IntegerConverter):
    """``<id:case_id>``: a database identifier, 1 .. 2^63-1; anything else matches no route (404)."""

    def __init__(self, map, *args, **kwargs):
        super().__init__(map, min=1, max=ID_MAX)


class NameConverter(BaseConverter):
    """``<name:key>``: one path segment of printable characters (a pathway key, a message name)."""

    regex = r"[^/\x00-\x1f\x7f]{1,200}"


def name_param_schema(converter: NameConverter) -> dict:
    return {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"^[^/\x00-\x1f\x7f]+$"}


class VersionConverter(IntegerConverter):
    """``<version:number>``: a pathway version number, 1 .. 2^31-1 (a 32-bit column)."""

    def __init__(self, map, *args, **kwargs):
        super().__init__(map, min=1, max=INT32_MAX)


CONVERTERS = {"id": IdConverter, "name": NameConverter, "version": VersionConverter}

# Paginated lists: ``?page=&per_page=`` and the total over all pages in a header.
TOTAL_COUNT = {"X-Total-Count": {"description": "number of items over all pages", "schema": {"type": "integer"}}}
# Lists that can run to thousands (a queue, a board) count no further than this (``paginate``'s ``count_cap``;
# the web inbox shows « 1 000+ »): measured in docs/operations.md, "Indexes and query plans".
COUNT_CAP = 1_000
CAPPED_TOTAL_COUNT = {
    "X-Total-Count": {"description": "number of items over all pages, counted up to a bound (then the bound "
                                     "itself, with X-Total-Count-Capped)", "schema": {"type": "integer"}},
    "X-Total-Count-Capped": {"description": "present (true) when there are more items than X-Total-Count: "
                                            "counting stopped there", "schema": {"type": "boolean"}},
}


def engine_context() -> EngineContext:
    return current_app.extensions["spie"]


def paginate(query: Select, args: dict, *, count_cap: int | None = None) -> tuple[list, dict]:
    """One page of ``query`` and the ``X-Total-Count`` header.

    A short page that is not past the end gives the total without a count. With ``count_cap``,
    counting stops after that many rows: the header is then the cap, with ``X-Total-Count-Capped: true``
    (a count costs a scan of all it counts; a queue of 9,000 tasks is not read page by page).
    """
    page, per_page = args["page"], args["per_page"]
    items = list(db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)))
    if len(items) < per_page and (items or page == 1):
        return items, {"X-Total-Count": str((page - 1) * per_page + len(items))}
    counted = query.order_by(None) if count_cap is None else query.order_by(None).limit(count_cap + 1)
    return items, total_count_headers(db.session.scalar(select(func.count()).select_from(counted.subquery())),
                                      count_cap)


def total_count_headers(total: int, count_cap: int | None = None) -> dict[str, str]:
    """``X-Total-Count`` of a count that stopped after ``count_cap`` + 1 rows (see ``CAPPED_TOTAL_COUNT``)."""
    if count_cap is not None and total > count_cap:
        return {"X-Total-Count": str(count_cap), "X-Total-Count-Capped": "true"}
    return {"X-Total-Count": str(total)}


# Workaround: access_log.case_id is a 32-bit INTEGER (engine/access.py, migration 0003) while case.id is a
# BIGINT. An id above it cannot be stored there (PostgreSQL: "integer out of range", a 500): such an access
# is logged without case_id, the id kept in ``detail``. Remove once the column is a BigId.
AUDIT_CASE_ID_MAX = INT32_MAX


def log_access(user: User | None, case_id: int | None, action: str, outcome: str = "allowed",
               detail: str | None = None) -> None:
    log_accesses(user, [case_id], action, outcome, detail)


def log_accesses(user: User | None, case_ids: list[int | None], action: str, outcome: str = "allowed",
                 detail: str | None = None) -> None:
    """One access row per case, written in one statement (see the workaround above for very large ids)."""
    at, address = now_utc(), client_address()
    storable = [case_id for case_id in case_ids if case_id is None or case_id <= AUDIT_CASE_ID_MAX]
    if storable:
        access.record(db.session, user=user, case_ids=storable, action=action, outcome=outcome, at=at,
                      address=address, detail=detail)
    for case_id in case_ids:
        if case_id is not None and case_id > AUDIT_CASE_ID_MAX:
            access.record(db.session, user=user, case_ids=[None], action=action, outcome=outcome, at=at,
                          address=address, detail=f"case {case_id}" + (f"; {detail}" if detail else ""))


def case_answer(case: Case) -> dict:
    """The case as a command or a read answers it.

    Called inside the command's transaction: the answer shows what the command
    wrote, and the request takes no second connection and transaction for it.
    """
    ctx = engine_context()
    return case_out(db.session, ctx.specs, case, ctx.clock.now(db.session))
