"""Connexion and déconnexion: a signed session cookie holding ``user_id`` and the password's stamp
(read by api.auth.resolve_user)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from api.auth import client_address, now_utc, web_session_values
from api.extensions import db
from engine import accounts
from engine.access import CASE_ROLES
from engine.db import transaction
from web import csrf
from web.common import safe_next, web_user

bp = Blueprint("auth", __name__)

TOO_MANY = ("Trop de tentatives de connexion ont échoué. Pour protéger les comptes, la connexion est bloquée "
            "pendant 15 minutes : réessayez plus tard ou demandez à votre administrateur.")
WRONG = "Adresse électronique ou mot de passe incorrect."


@bp.get("/connexion")
def login():
    user = web_user()
    if user is not None:
        return redirect(safe_next(request.args.get("suivant"), landing(user)))
    return render_template("connexion.html", email="", error=None, suivant=request.args.get("suivant", ""))


@bp.post("/connexion")
def login_post():
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    target = request.form.get("suivant", "")
    try:
        with transaction(db.session):  # a failure is recorded (throttling), so commit either way
            user = accounts.authenticate(db.session, email, password, client_address(), now_utc())
    except accounts.TooManyAttempts:
        return render_template("connexion.html", email=email, error=TOO_MANY, suivant=target), 429
    if user is None:
        return render_template("connexion.html", email=email, error=WRONG, suivant=target), 401
    session.clear()
    session.update(web_session_values(user))
    csrf.renew()
    return redirect(safe_next(target, landing(user)), code=303)


def landing(user) -> str:
    """Where a login leads: the inbox for référents and supervisors, the home page's sections for the others."""
    return url_for("web.inbox.index" if user.role in CASE_ROLES else "web.inbox.home")


@bp.post("/deconnexion")
def logout():
    session.clear()
    flash("Vous êtes déconnecté.", "info")
    return redirect(url_for("web.auth.login"), code=303)
