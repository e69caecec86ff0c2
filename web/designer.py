"""Pages of the process designers (Département SPIE team): deployed pathways, the modeler, lint, deploy, changes.

The modeler page edits a version's BPMN in the browser (bpmn-js) and posts the whole
exported XML, as the request body, to ``verifier`` (the deploy checks, nothing stored) or
``deployer`` (a new version). Both answer JSON; the CSRF token comes in the
``X-CSRF-Token`` header. A new version keeps the decision tables of the version it
replaces (the modeler edits only the BPMN) and any form that version brought which
``forms/`` does not have.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Blueprint, Response, abort, flash, jsonify, render_template, request, url_for
from sqlalchemy import select

from api.extensions import db
from engine import pathways
from engine.db import transaction
from engine.directory import STRUCTURE_TYPES, User
from engine.errors import Conflict, DeployError, TooLarge
from engine.forms import load_forms_dir
from engine.models import PathwayVersion
from engine.pathway_diff import diff_versions
from web import labels, pathway_wording
from web.common import current_user, engine_context, login_required

bp = Blueprint("designer", __name__, url_prefix="/parcours")

ROLES = ("designer", "admin")
SHORT_SHA = 12


def designer_required(view: Callable) -> Callable:
    """Signed in (else the login page) and a designer or an administrator (else 403)."""
    @login_required
    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_user().role not in ROLES:
            abort(403, description="Les parcours-types sont réservés aux concepteurs de parcours "
                                   "et aux administrateurs.")
        return view(*args, **kwargs)
    return wrapped


@bp.get("")
@designer_required
def index():
    rows = db.session.execute(
        select(PathwayVersion.key, PathwayVersion.name, PathwayVersion.version, PathwayVersion.sha256,
               PathwayVersion.deployed_at, PathwayVersion.deployed_by)
        .order_by(PathwayVersion.key, PathwayVersion.version.desc())
    ).all()
    authors = _names_of({row.deployed_by for row in rows})
    groups: dict[str, dict] = {}
    for row in rows:
        group = groups.setdefault(row.key, {"key": row.key, "name": row.name, "versions": []})
        group["versions"].append({"number": row.version, "sha": row.sha256[:SHORT_SHA], "sha256": row.sha256,
                                  "deployed_at": row.deployed_at,
                                  "deployed_by": authors.get(row.deployed_by, row.deployed_by)})
    return render_template("parcours.html", pathways=sorted(groups.values(), key=lambda g: g["name"].lower()))


@bp.get("/<name:key>/versions/<version:number>")
@designer_required
def version(key: str, number: int):
    found = pathways.get_version(db.session, key, number)
    problems = [pathway_wording.problem_out(w) for w in found.warnings]
    author = _names_of({found.deployed_by}).get(found.deployed_by, found.deployed_by)
    return render_template("parcours_version.html", version=found, problems=problems, author=author,
                           short_sha=found.sha256[:SHORT_SHA], latest=pathways.get_version(db.session, key).version)


@bp.get("/<name:key>/versions/<version:number>/schema.bpmn")
@designer_required
def source(key: str, number: int):
    """The version's BPMN, for bpmn-js (viewer or modeler)."""
    xml = pathways.get_version(db.session, key, number).bpmn_xml
    return Response(xml, mimetype="application/xml", headers={"Content-Disposition": "inline"})


@bp.get("/<name:key>/modeler")
@bp.get("/<name:key>/versions/<version:number>/modeler")
@designer_required
def modeler(key: str, number: int | None = None):
    base = pathways.get_version(db.session, key, number)
    latest = base if number is None else pathways.get_version(db.session, key)
    return render_template("modeleur.html", base=base, latest=latest, choices=_panel_choices(latest))


@bp.post("/<name:key>/verifier")
@designer_required
def check(key: str):
    latest = pathways.get_version(db.session, key)
    xml = _posted_xml()
    try:
        problems = pathways.check(db.session, engine_context(), xml, latest.dmn_xml, forms=_carried_forms(latest),
                                  key=key)
    except TooLarge:
        return _too_large()
    errors = sum(1 for p in problems if p.severity != "warning")
    return jsonify(problems=[pathway_wording.problem_out(p) for p in problems], errors=errors,
                   message=_summary(errors, len(problems) - errors))


@bp.post("/<name:key>/deployer")
@designer_required
def deploy(key: str):
    latest = pathways.get_version(db.session, key)
    previous = latest.version
    xml = _posted_xml()
    user = current_user()
    try:
        with transaction(db.session):
            result = pathways.deploy(db.session, engine_context(), xml, latest.dmn_xml,
                                     forms=_carried_forms(latest), deployed_by=user.email, key=key)
    except TooLarge:
        return _too_large()
    except DeployError as exc:
        problems = [pathway_wording.problem_out(p) for p in exc.problems]
        errors = sum(1 for p in exc.problems if p.severity != "warning")
        return jsonify(problems=problems, errors=errors,
                       message=f"Rien n'a été déployé. {_summary(errors, len(problems) - errors)}"), 422
    except Conflict:
        return jsonify(problems=[], errors=0, message="Un autre déploiement de ce parcours vient d'avoir lieu : "
                                                      "rechargez la page et recommencez."), 409
    number = result.version.version
    if not result.created:
        return jsonify(created=False, version=number,
                       message=f"Contenu identique à la version {number} : aucune nouvelle version déployée.")
    warnings = len(result.version.warnings)
    remark = (f" avec {warnings} avertissement{'s' if warnings > 1 else ''} (voir la page de la version)"
              if warnings else "")
    flash(f"Version {number} de « {result.version.name} » déployée{remark}.", "succes")
    target = url_for("web.designer.differences", key=key, a=previous, b=number)
    return jsonify(created=True, version=number, redirect=target), 201


@bp.get("/<name:key>/versions/<version:a>/differences/<version:b>")
@designer_required
def differences(key: str, a: int, b: int):
    old, new = pathways.get_version(db.session, key, a), pathways.get_version(db.session, key, b)
    diff = diff_versions(old.bpmn_xml, new.bpmn_xml)
    changes = [pathway_wording.describe(change, diff) for change in diff.changes]
    return render_template("parcours_differences.html", old=old, new=new, changes=changes)


def _posted_xml() -> bytes:
    """The request body (the exported BPMN); Flask's MAX_CONTENT_LENGTH bounds it (413), like the API's."""
    xml = request.get_data(cache=False)
    if not xml.strip():
        abort(400, description="Aucun schéma BPMN reçu.")
    return xml


def _too_large():
    return jsonify(problems=[], errors=1, message="Le schéma dépasse la taille maximale acceptée (5 Mo)."), 413


def _summary(errors: int, warnings: int) -> str:
    if not errors and not warnings:
        return "Aucun problème : le parcours peut être déployé."
    parts = [f"{errors} erreur{'s' if errors > 1 else ''}"] if errors else []
    if warnings:
        parts.append(f"{warnings} avertissement{'s' if warnings > 1 else ''}")
    verdict = "à corriger avant de déployer" if errors else "le déploiement reste possible"
    return f"{' et '.join(parts)} : {verdict}."


def _carried_forms(version: PathwayVersion) -> dict[str, dict]:
    """Forms the version was deployed with that ``forms/`` does not have (uploaded through the API)."""
    on_disk = load_forms_dir(engine_context().forms_dir)
    return {key: schema for key, schema in (version.forms or {}).items() if key not in on_disk}


def _panel_choices(version: PathwayVersion) -> dict:
    """What the modeler's side panel offers: forms, structure types, audiences, care-team actions."""
    forms = {**load_forms_dir(engine_context().forms_dir), **(version.forms or {})}
    return {
        "forms": sorted(([key, schema.get("title") or key] for key, schema in forms.items()),
                        key=lambda item: item[1].lower()),
        "structure_types": list(STRUCTURE_TYPES.items()),
        "audiences": list(labels.AUDIENCES.items()),
        "actions": list(pathway_wording.ACTIONS.items()),
    }


def _names_of(emails: set[str]) -> dict[str, str]:
    if not emails:
        return {}
    return dict(db.session.execute(select(User.email, User.name).where(User.email.in_(emails))).tuples().all())
