"""« Annuaire »: the structures (type, communes and EPCI covered, active référents, sensitive flag), a structure's
page, the communes left without a structure of a core type (``spie directory check``), and the CSV import and
export of :mod:`engine.directory_io` (all-or-nothing import: a refused line leaves the directory as it was).
"""
from __future__ import annotations

import unicodedata
from collections import Counter

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from api.auth import now_utc
from api.extensions import db
from engine import admin_log
from engine.db import transaction
from engine.directory import STRUCTURE_TYPES, Commune, Structure, StructureCoverage, User
from engine.directory_io import MAX_IMPORT_BYTES, STRUCTURE_COLUMNS, check_directory, export_structures, import_structures
from engine.errors import InvalidInput
from web import labels
from web.admin import wording
from web.admin.common import contains, page_of, read_filters
from web.common import current_user, now
from web.tasks import ID

bp = Blueprint("directory", __name__, url_prefix="/annuaire")

PER_PAGE = 25
FILE_FIELD = "fichier"


@bp.get("")
def index():
    filters = read_filters("q", "type", "commune")
    values = filters.values
    communes = commune_choices()
    if values["type"] and values["type"] not in STRUCTURE_TYPES:
        filters.error("type", "Choisissez un des types proposés.")
    if values["commune"] and values["commune"] not in dict(communes):
        filters.error("commune", "Choisissez une commune de la liste.")
    page = None
    if not filters.errors:
        page = page_of(_structures_query(values["q"], values["type"], values["commune"]), PER_PAGE)
    return render_template(
        "admin/annuaire.html", filters=filters, page=page, rows=_rows(page.items if page else []),
        types=STRUCTURE_TYPES, communes=communes, check=check_directory(db.session),
    ), 400 if filters.errors else 200


@bp.get(f"/<{ID}:structure_id>")
def show(structure_id: int):
    structure = db.session.get(Structure, structure_id)
    if structure is None:
        abort(404)
    covered = {item.commune_insee: item.via_epci for item in structure.coverage}
    communes = sorted(db.session.scalars(select(Commune).where(Commune.insee.in_(covered))), key=lambda c: _sort_key(c.name))
    users = db.session.scalars(select(User).where(User.structure_id == structure.id)
                               .order_by(User.active.desc(), func.lower(User.name))).all()
    return render_template("admin/structure.html", structure=structure, row=_rows([structure])[0],
                           communes=communes, covered=covered, users=users)


@bp.get("/import")
def import_form():
    return render_template("admin/import.html", errors=[], columns=STRUCTURE_COLUMNS,
                           max_mb=MAX_IMPORT_BYTES // (1024 * 1024))


@bp.post("/import")
def import_file():
    upload = request.files.get(FILE_FIELD)
    errors: list[tuple[int | None, str | None, str]] = []
    if upload is None or not upload.filename:
        errors.append((None, None, "Choisissez le fichier CSV à importer."))
    else:
        try:
            with transaction(db.session):
                report = import_structures(db.session, upload.stream)  # writes nothing when a line is refused
                if report.ok:
                    admin_log.record(db.session, actor=current_user(), action="directory_imported", at=now_utc(),
                                     detail={"file": upload.filename[:200], "created": len(report.created),
                                             "updated": len(report.updated), "unchanged": len(report.unchanged)})
            errors = [(e.line, e.column, wording.import_message(e.message)) for e in report.errors]
        except InvalidInput as exc:  # too large, not UTF-8
            errors.append((None, None, wording.import_message(str(exc))))
    if errors:
        return render_template("admin/import.html", errors=errors, columns=STRUCTURE_COLUMNS,
                               max_mb=MAX_IMPORT_BYTES // (1024 * 1024)), 422
    flash(f"Annuaire importé : {len(report.created)} structure{'s' if len(report.created) > 1 else ''} "
          f"créée{'s' if len(report.created) > 1 else ''}, {len(report.updated)} modifiée"
          f"{'s' if len(report.updated) > 1 else ''}, {len(report.unchanged)} inchangée"
          f"{'s' if len(report.unchanged) > 1 else ''}.", "succes")
    return redirect(url_for("web.admin.directory.index"), code=303)


@bp.get("/export.csv")
def export():
    # A byte order mark, so that a spreadsheet opens the accents right; the import skips it.
    body = "\ufeff" + export_structures(db.session)
    filename = f"annuaire-structures-{now().date().isoformat()}.csv"
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def commune_choices() -> list[tuple[str, str]]:
    """(INSEE code, « Name (code) ») of every commune of the directory, in French alphabetical order."""
    rows = db.session.execute(select(Commune.insee, Commune.name)).all()
    return [(insee, f"{name} ({insee})") for insee, name in sorted(rows, key=lambda row: _sort_key(row[1]))]


def _sort_key(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _structures_query(search: str, structure_type: str, commune: str):
    query = (select(Structure).options(selectinload(Structure.coverage))
             .order_by(func.lower(Structure.name), Structure.id))
    if search:
        query = query.where(or_(contains(Structure.name, search), Structure.siret == search))
    if structure_type:
        query = query.where(Structure.type == structure_type)
    if commune:
        query = query.where(Structure.coverage.any(StructureCoverage.commune_insee == commune))
    return query


def _rows(structures: list[Structure]) -> list[dict]:
    """What a line of the directory shows: coverage in communes and whole EPCI, active référents."""
    ids = [s.id for s in structures]
    referents = Counter(dict(db.session.execute(
        select(User.structure_id, func.count()).where(User.structure_id.in_(ids), User.role == "referent",
                                                      User.active.is_(True)).group_by(User.structure_id)).all()))
    sirens = {item.via_epci for s in structures for item in s.coverage if item.via_epci}
    epci_names = dict(db.session.execute(select(Commune.epci_siren, Commune.epci_name).distinct()
                                         .where(Commune.epci_siren.in_(sirens))).all()) if sirens else {}
    return [{
        "structure": s, "type": labels.structure_type(s.type), "communes": len(s.coverage),
        "epci": sorted({epci_names.get(item.via_epci, item.via_epci) for item in s.coverage if item.via_epci}),
        "referents": referents[s.id],
    } for s in structures]
