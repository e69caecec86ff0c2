"""Simulated time: « Avancer le temps », for demos and training (simulation mode only)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for

from api.extensions import db
from engine import simulation
from engine.db import make_session_factory
from web import labels
from web.common import current_user, engine_context, login_required, safe_next, simulation_mode

bp = Blueprint("simulation", __name__, url_prefix="/simulation")


@bp.post("/avancer")
@login_required
def advance():
    if not simulation_mode():
        abort(404)
    if current_user().role not in ("admin", "supervisor"):
        abort(403, description="Seuls les encadrants et les administrateurs font avancer le temps simulé.")
    duration = request.form.get("duree", "")
    if duration not in labels.ADVANCE_CHOICES:
        abort(400, description="Durée inconnue : choisissez une des durées proposées.")
    db.session.rollback()  # end this request's read transaction: the clock moves in transactions of its own
    result = simulation.advance(make_session_factory(db.engine), engine_context(), duration)
    fired = result.firings
    flash(f"Temps avancé de {labels.ADVANCE_CHOICES[duration]} : nous sommes le {labels.datetime_fr(result.now)}"
          f" ({fired} déclenchement{'s' if fired > 1 else ''} d'échéances).", "succes")
    return redirect(safe_next(request.form.get("suivant"), url_for("web.inbox.home")), code=303)
