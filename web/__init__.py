"""The French web interface: server-rendered pages (Jinja + htmx) on the same engine as the API.

One parent blueprint ``web`` carries what every page shares (templates,
static files, CSRF check, security headers, error pages); each concern is a
child blueprint:

- référents: ``web.auth`` (connexion), ``web.inbox`` (the inbox), ``web.tasks`` (task form, claim,
  release), ``web.cases`` (the carnet), ``web.offers`` (catalogue, prescribing for a case),
  ``web.prescriptions`` (a provider's incoming prescriptions, the ones sent);
- supervisors: ``web.supervision`` (overdue board, reassignment, CSV export, indicators);
- designers: ``web.designer`` (pathway versions, modeler, lint, deploy, changes between versions);
- administrators: ``web.admin`` (users, directory, access and administration logs);
- everyone: ``web.public`` (a person's own request, without an account), ``web.simulation``
  (simulated time), ``web.vendor`` (front-end libraries from ``node_modules``).

The access rules are the API's (:mod:`engine.access`), and so is the login:
``session["user_id"]`` (with the stamp of the password it was opened with) is what
:func:`api.auth.resolve_user` reads.
"""
from __future__ import annotations

from flask import Blueprint, Flask

from web import (admin, auth, cases, common, csrf, designer, inbox, offers, prescriptions, public, simulation,
                 supervision, tasks, vendor)

# Built once at import: a blueprint can be registered on many apps (tests make one per test).
bp = Blueprint("web", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/web")
csrf.protect(bp)
common.setup(bp)
for _child in (auth.bp, inbox.bp, tasks.bp, cases.bp, offers.bp, prescriptions.bp, supervision.bp, designer.bp,
               admin.bp, public.bp, simulation.bp, vendor.bp):
    bp.register_blueprint(_child)


def init_web(app: Flask) -> None:
    """Register the web pages on ``app`` (called once by the app factory)."""
    app.register_blueprint(bp)
    common.init_app(app)
