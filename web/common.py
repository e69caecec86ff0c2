"""What the page blueprints share: the signed-in user, the clock, access logging, errors, headers, filters."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from api.auth import resolve_user
from api.extensions import db
from api.v1.common import log_access, log_accesses  # noqa: F401 - the pages record reads as the API does
from engine.context import EngineContext
from engine.directory import User
from engine.errors import Conflict, EngineError, NotFound
from web import labels

log = logging.getLogger(__name__)

# Pages of the nav: (endpoint, label, roles allowed, blueprints of its section). Later pages (supervision,
# modeler, admin) add theirs here.
NAV: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = [
    ("web.inbox.index", "Tâches", ("referent", "supervisor"), ("web.inbox", "web.tasks", "web.cases")),
    ("web.designer.index", "Parcours", ("designer", "admin"), ("web.designer",)),
    ("web.offers.index", "Offres", ("referent", "supervisor"), ("web.offers",)),
    ("web.prescriptions.index", "Demandes reçues", ("referent", "supervisor"), ("web.prescriptions",)),
    ("web.supervision.board", "Tâches en retard", ("supervisor",), ()),
    ("web.supervision.indicators", "Indicateurs", ("supervisor",), ()),
    ("web.admin.users.index", "Utilisateurs", ("admin",), ("web.admin.users",)),
    ("web.admin.directory.index", "Annuaire", ("admin",), ("web.admin.directory",)),
    ("web.admin.journal.index", "Journal des accès", ("admin",), ("web.admin.journal",)),
]

# What the home page (accueil.html) says under each section's link, for those whose home is not the inbox.
NAV_DESCRIPTIONS: dict[str, str] = {
    "web.inbox.index": "Les tâches de votre structure et celles à votre nom, avec leurs échéances.",
    "web.offers.index": "Le catalogue des offres d'insertion du territoire, pour orienter une personne.",
    "web.prescriptions.index": "Les orientations adressées à votre structure, à accepter ou à refuser.",
    "web.supervision.board": "Les tâches et les passages de relais en retard, avec leur niveau d'escalade.",
    "web.supervision.indicators": "Les chiffres du territoire : parcours, délais, relais.",
    "web.admin.users.index": "Créer les comptes des professionnels, changer leur rôle ou leur structure, "
                             "les désactiver, réinitialiser un mot de passe.",
    "web.admin.directory.index": "Les structures, les communes qu'elles couvrent, leurs référents ; "
                                 "importer ou exporter l'annuaire en CSV.",
    "web.admin.journal.index": "Qui a consulté ou modifié quel dossier, et quand ; les actions des administrateurs.",
    "web.designer.index": "Les parcours-types déployés : les modifier dans le modeleur, les vérifier, déployer "
                          "une nouvelle version et relire ses changements.",
}

# Content Security Policy: our scripts and styles only (no inline script; bpmn-js sets style attributes).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")


def engine_context() -> EngineContext:
    return current_app.extensions["spie"]


def now() -> datetime:
    """The engine's time: simulated in simulation mode (due dates and overdue are judged against it)."""
    if "spie_now" not in g:
        g.spie_now = engine_context().clock.now(db.session)
    return g.spie_now


def simulation_mode() -> bool:
    return bool(current_app.config.get("SPIE_SIMULATION"))


def web_user() -> User | None:
    return resolve_user()


def login_required(view: Callable) -> Callable:
    """Send visitors without a session to the login page, back here afterwards."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        if web_user() is None:
            target = request.full_path if request.method == "GET" else None
            return redirect(url_for("web.auth.login", suivant=target.rstrip("?") if target else None))
        return view(*args, **kwargs)
    return wrapped


def current_user() -> User:
    user = web_user()
    assert user is not None, "use @login_required"
    return user


def safe_next(target: str | None, default: str) -> str:
    """A local path to go back to, never another site (no scheme, no host, no ``//``)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def nav_items(user: User | None) -> list[tuple[str, str, str | None]]:
    """(endpoint, label, aria-current: "page" on the page itself, "true" elsewhere in its section)."""
    if user is None:
        return []
    items = []
    for endpoint, label, roles, section in NAV:
        if user.role in roles:
            in_section = request.blueprint in section and request.endpoint != "web.inbox.home"  # home: no section
            current = "page" if request.endpoint == endpoint else ("true" if in_section else None)
            items.append((endpoint, label, current))
    return items


def _context() -> dict:
    user = web_user()
    data = {"user": user, "nav_items": nav_items(user), "simulation": simulation_mode(), "labels": labels}
    if simulation_mode():
        data["simulated_now"] = now()
        data["may_advance_time"] = user is not None and user.role in ("admin", "supervisor")
        data["advance_choices"] = labels.ADVANCE_CHOICES
    return data


def render_error(status: int, message: str | None = None):
    title = labels.HTTP_TITLES.get(status, "Erreur")
    return render_template("error.html", status=status, title=title, message=message), status


def _http_error(exc: HTTPException):
    message = exc.description if exc.description and not exc.description.startswith(("The ", "You ")) else None
    return render_error(exc.code or 500, message)


def _engine_error(exc: EngineError):
    if isinstance(exc, NotFound):
        return render_error(404)
    if isinstance(exc, Conflict):
        return render_error(409, labels.engine_message(str(exc)))
    return render_error(422, labels.engine_message(str(exc)))


def _unexpected(exc: Exception):
    log.exception("unhandled error on %s %s", request.method, request.path)
    return render_error(500)


def _security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.endpoint not in ("web.static", "web.vendor.asset"):
        # Personal data: not kept in shared caches nor shown again by "back" after logging out.
        response.headers["Cache-Control"] = "no-store"
    return response


def setup(bp: Blueprint) -> None:
    """Error pages, security headers and template context for every page blueprint."""
    bp.register_error_handler(HTTPException, _http_error)
    bp.register_error_handler(EngineError, _engine_error)
    bp.register_error_handler(Exception, _unexpected)
    bp.after_request(_security_headers)
    bp.context_processor(_context)


def init_app(app: Flask) -> None:
    """Template filters (French dates) for the app's Jinja environment."""
    app.add_template_filter(labels.date_fr, "date_fr")
    app.add_template_filter(labels.datetime_fr, "datetime_fr")
    app.add_template_filter(labels.short_date_fr, "short_date_fr")
