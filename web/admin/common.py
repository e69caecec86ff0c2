"""What the administration pages share: paginated lists, reading filters from the query string, structure choices."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from flask import request
from sqlalchemy import func, select
from sqlalchemy.sql import Select

from api.extensions import db
from engine.directory import Structure
from engine.folding import contains_folded
from web import labels, queries

MAX_PAGE = 100_000


@dataclass
class Page:
    """One page of a list: its items, its number (from 1), how many pages and items over all."""

    items: list
    number: int
    pages: int
    total: int


def page_of(query: Select, per_page: int) -> Page:
    """The page ``?page=`` of ``query`` (the last one if the number is past the end)."""
    raw = request.args.get("page", "1")
    number = int(raw) if raw.isdigit() and 0 < int(raw) <= MAX_PAGE else 1
    total = queries.count(db.session, query)
    pages = max(1, -(-total // per_page))
    number = min(number, pages)
    items = list(db.session.scalars(query.limit(per_page).offset((number - 1) * per_page)))
    return Page(items, number, pages, total)


@dataclass
class Filters:
    """Values of a filter form as typed (to show them again) and the errors found in them, by field."""

    values: dict[str, str]
    errors: dict[str, list[str]] = field(default_factory=dict)

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def params(self) -> dict[str, str]:
        """The non-empty values, for the links of the pagination."""
        return {k: v for k, v in self.values.items() if v}


def read_filters(*names: str) -> Filters:
    return Filters({name: request.args.get(name, "").strip()[:200] for name in names})


def id_value(filters: Filters, name: str, message: str) -> int | None:
    """An identifier typed or chosen in a filter (``None`` if empty); an error when it is not one."""
    raw = filters.values[name]
    if not raw:
        return None
    if raw.isdigit() and 0 < int(raw) <= 9_223_372_036_854_775_807:
        return int(raw)
    filters.error(name, message)
    return None


def date_value(filters: Filters, name: str) -> date | None:
    raw = filters.values[name]
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        filters.error(name, "Indiquez une date au format jj/mm/aaaa.")
        return None


def day_start(day: date) -> datetime:
    """Midnight at the start of ``day``, Paris time: the bound of a date filter."""
    return datetime.combine(day, time.min, tzinfo=labels.PARIS)


def day_end(day: date) -> datetime:
    return day_start(day + timedelta(days=1))


def contains(column, search: str):
    """``column`` contains ``search``, ignoring case and accents (« helene » finds Hélène; engine.folding)."""
    return contains_folded(column, search, db.engine.dialect.name)


def structure_choices() -> list[tuple[str, str]]:
    """(id, name) of every structure, by name, for the structure selects."""
    rows = db.session.execute(select(Structure.id, Structure.name).order_by(func.lower(Structure.name)))
    return [(str(structure_id), name) for structure_id, name in rows]
