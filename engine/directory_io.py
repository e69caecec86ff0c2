"""Directory (annuaire) import, export, consistency check and demo seed.

Why this module exists: task assignment resolves a lane's structure type to
*the* structure of that type covering the person's commune. That only works
when the directory is complete (every commune has one structure of each core
type) and unambiguous (never two of the same type). Départements maintain
their directory in spreadsheets, so the exchange format is a plain CSV that
round-trips: export, edit, import again.

Communes come from ``data/essonne-communes.csv`` (Etalab
``@etalab/decoupage-administratif``, MIT): one row per commune with
``code_insee, nom, codes_postaux`` (space separated), ``population``,
``arrondissement``, ``epci_siren``, ``epci_nom``, ...

Structures CSV (UTF-8, comma separated; a ``;`` separated file from a French
spreadsheet is accepted too), one row per structure:

=========  ==============================================================
column     meaning
=========  ==============================================================
id         optional: the structure's id, to update it (must exist)
type       our code (``mission-locale``, ``departement``...), a
           data·inclusion ``reseaux_porteurs`` code or a DORA code
           (``ML``, ``CD``, ``FT``, ``CAP_EMPLOI``...)
name       required
siret      optional: 14 digits with a valid check digit (Luhn)
email      optional contact address
phone      optional
address    optional
sensitive  true/false (addiction care, justice: hidden outside care teams)
is_pilot   true/false (the Département's SPIE project team)
demo       true/false (demo data)
communes   INSEE codes covered, separated by spaces
epci       EPCI SIREN codes, separated by spaces: covers all their communes
=========  ==============================================================

Only ``type`` and ``name`` are required columns; a column left out of the file
leaves that field (or the coverage) of existing structures as it is. A row
without ``id`` updates the structure with the same type and name, or creates
it. Import is all-or-nothing: every row is validated first and, if any row is
refused, the report lists each refusal with its line number and nothing is
written.
"""
from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from engine.directory import (
    CORE_STRUCTURE_TYPES,
    ROLES,
    STRUCTURE_TYPES,
    Commune,
    Structure,
    StructureCoverage,
    User,
    normalize_structure_type,
)
from engine.errors import InvalidInput, TooLarge
from engine.paths import PROJECT_ROOT

DATA_DIR = PROJECT_ROOT / "data"
COMMUNES_CSV = DATA_DIR / "essonne-communes.csv"
DEMO_STRUCTURES_CSV = DATA_DIR / "demo" / "structures.csv"
DEMO_USERS_CSV = DATA_DIR / "demo" / "users.csv"

STRUCTURE_COLUMNS = (
    "id", "type", "name", "siret", "email", "phone", "address",
    "sensitive", "is_pilot", "demo", "communes", "epci",
)
REQUIRED_COLUMNS = ("type", "name")
TEXT_FIELDS = ("name", "siret", "email", "phone", "address")
FLAG_FIELDS = ("sensitive", "is_pilot", "demo")
MAX_IMPORT_BYTES = 5 * 1024 * 1024

# Several associations may serve one commune; they are found by offer, not
# resolved by type for assignment, so they never count as an overlap.
OVERLAP_ALLOWED_TYPES = frozenset({"association"})

_TRUE = {"true", "1", "yes", "y", "oui", "o", "vrai"}
_FALSE = {"false", "0", "no", "n", "non", "faux", ""}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CODE_SEPARATORS = re.compile(r"[\s,;]+")


# --------------------------------------------------------------------------- communes

def load_communes(session: Session, path: Path = COMMUNES_CSV) -> int:
    """Insert or update the communes of ``path``; returns how many rows it holds."""
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8-sig"))))
    existing = {c.insee: c for c in session.scalars(select(Commune))}
    for row in rows:
        values = _commune_values(row)
        commune = existing.get(values["insee"])
        if commune is None:
            session.add(Commune(**values))
            continue
        for name, value in values.items():
            if getattr(commune, name) != value:
                setattr(commune, name, value)
    session.flush()
    return len(rows)


def _commune_values(row: dict[str, str]) -> dict:
    population = (row.get("population") or "").strip()
    return {
        "insee": row["code_insee"].strip(),
        "name": row["nom"].strip(),
        "postcodes": split_codes(row.get("codes_postaux")),
        "population": int(population) if population else None,
        "epci_siren": (row.get("epci_siren") or "").strip() or None,
        "epci_name": (row.get("epci_nom") or "").strip() or None,
    }


def split_codes(value: str | None) -> list[str]:
    """Codes separated by spaces (commas and semicolons are tolerated)."""
    return [code for code in _CODE_SEPARATORS.split(value or "") if code]


# --------------------------------------------------------------------------- validation helpers

def siret_is_valid(siret: str) -> bool:
    """14 digits with a valid Luhn key (or La Poste's digit-sum rule for its establishments)."""
    if not re.fullmatch(r"\d{14}", siret):
        return False
    digits = [int(d) for d in siret]
    if _luhn_ok(digits):
        return True
    # La Poste (SIREN 356000000) numbers its many establishments with a digit sum multiple of 5.
    return siret.startswith("356000000") and sum(digits) % 5 == 0


def _luhn_ok(digits: list[int]) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def parse_flag(value: str | None) -> bool:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


# --------------------------------------------------------------------------- import

@dataclass(frozen=True)
class RowError:
    """One refused row: the file's line number, the column at fault and why."""

    line: int
    message: str
    column: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" ({self.column})" if self.column else "")
        return f"{where}: {self.message}"

    def to_dict(self) -> dict:
        return {"line": self.line, "column": self.column, "message": self.message}


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        if self.errors:
            return f"refused: {len(self.errors)} error(s), nothing written"
        return f"{len(self.created)} created, {len(self.updated)} updated, {len(self.unchanged)} unchanged"


@dataclass
class _Row:
    """A validated structures row, ready to be written."""

    line: int
    structure_id: int | None
    type: str
    fields: dict  # only the columns present in the file
    coverage: dict[str, str | None] | None  # INSEE -> via EPCI SIREN; None: leave coverage alone


class _DirectoryIndex:
    """What validation needs from the database, loaded once per import."""

    def __init__(self, session: Session):
        self.communes: set[str] = set()
        self.epci: dict[str, list[str]] = defaultdict(list)
        for insee, siren in session.execute(select(Commune.insee, Commune.epci_siren)):
            self.communes.add(insee)
            if siren:
                self.epci[siren].append(insee)
        self.structures: dict[int, Structure] = {
            s.id: s for s in session.scalars(select(Structure).options(selectinload(Structure.coverage)))}
        self.by_key: dict[tuple[str, str], Structure] = {
            (s.type, s.name): s for s in sorted(self.structures.values(), key=lambda s: s.id, reverse=True)
        }


def import_structures(session: Session, source: str | bytes | Path | IO) -> ImportReport:
    """Validate every row, then create or update structures; all-or-nothing.

    ``source`` is CSV text, bytes, a :class:`~pathlib.Path` or an open file.
    """
    text = _read_source(source)
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text), delimiter=_guess_delimiter(text))
    header_errors = _check_header(reader.fieldnames)
    if header_errors:
        report.errors.extend(header_errors)
        return report
    columns = {name.strip().lower() for name in reader.fieldnames}
    index = _DirectoryIndex(session)
    rows = _validate_rows(reader, columns, index, report)
    if report.errors:
        return report
    for row in rows:
        _write_row(session, index, row, report)
    session.flush()
    return report


def _read_source(source: str | bytes | Path | IO) -> str:
    if isinstance(source, Path):
        source = source.read_bytes()
    elif hasattr(source, "read"):
        source = source.read(MAX_IMPORT_BYTES + 1)
    if isinstance(source, bytes):
        if len(source) > MAX_IMPORT_BYTES:
            raise TooLarge(f"the file is over {MAX_IMPORT_BYTES // (1024 * 1024)} MB")
        try:
            source = source.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput("the file is not UTF-8 text (save it as CSV UTF-8)") from exc
    if len(source) > MAX_IMPORT_BYTES:
        raise TooLarge(f"the file is over {MAX_IMPORT_BYTES // (1024 * 1024)} MB")
    return source.lstrip("\ufeff")


def _guess_delimiter(text: str) -> str:
    header = text.split("\n", 1)[0]
    return ";" if header.count(";") > header.count(",") else ","


def _check_header(fieldnames: list[str] | None) -> list[RowError]:
    if not fieldnames:
        return [RowError(1, "empty file: expected a header line with at least type and name")]
    names = [name.strip().lower() for name in fieldnames]
    errors = [RowError(1, f"unknown column {name!r}; expected columns: {', '.join(STRUCTURE_COLUMNS)}")
              for name in names if name not in STRUCTURE_COLUMNS]
    errors += [RowError(1, f"missing column {name!r}") for name in REQUIRED_COLUMNS if name not in names]
    errors += [RowError(1, f"column {name!r} appears twice") for name in sorted(set(names)) if names.count(name) > 1]
    return errors


def _validate_rows(reader: csv.DictReader, columns: set[str], index: _DirectoryIndex,
                   report: ImportReport) -> list[_Row]:
    rows: list[_Row] = []
    seen_ids: dict[int, int] = {}
    seen_keys: dict[tuple[str, str], int] = {}
    for raw in reader:
        line = reader.line_num
        values = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        if None in raw:
            report.errors.append(RowError(line, "more values than columns"))
            continue
        if not any(values.values()):
            continue  # blank line
        errors: list[RowError] = []
        row = _validate_row(line, values, columns, index, errors)
        if row is not None:
            _check_duplicates(row, seen_ids, seen_keys, index, errors)
        report.errors.extend(errors)
        if row is not None and not errors:
            rows.append(row)
    return rows


def _validate_row(line: int, values: dict[str, str], columns: set[str], index: _DirectoryIndex,
                  errors: list[RowError]) -> _Row | None:
    def error(column: str, message: str) -> None:
        errors.append(RowError(line, message, column))

    structure_id = None
    if values.get("id"):
        if not values["id"].isdigit():
            error("id", f"id must be a whole number, got {values['id']!r}")
        elif int(values["id"]) not in index.structures:
            error("id", f"no structure with id {values['id']} (leave id empty to create one)")
        else:
            structure_id = int(values["id"])
    try:
        structure_type = normalize_structure_type(values.get("type", ""))
    except InvalidInput as exc:
        error("type", str(exc))
        structure_type = None
    fields = _validate_fields(values, columns, error)
    coverage = _validate_coverage(values, columns, index, error)
    if structure_type is None:
        return None
    return _Row(line, structure_id, structure_type, fields, coverage)


def _validate_fields(values: dict[str, str], columns: set[str], error) -> dict:
    fields: dict = {}
    name = values.get("name", "")
    if not name:
        error("name", "the name is missing")
    elif len(name) > 255:
        error("name", "the name is longer than 255 characters")
    fields["name"] = name
    if "siret" in columns:
        siret = re.sub(r"\s", "", values.get("siret", ""))
        if siret and not siret_is_valid(siret):
            error("siret", f"invalid SIRET {values['siret']!r}: 14 digits with a valid check digit expected")
        fields["siret"] = siret or None
    if "email" in columns:
        email = values.get("email", "")
        if email and not _EMAIL.match(email):
            error("email", f"invalid email address {email!r}")
        fields["email"] = email or None
    for column, limit in (("phone", 40), ("address", 255)):
        if column in columns:
            if len(values.get(column, "")) > limit:
                error(column, f"longer than {limit} characters")
            fields[column] = values.get(column) or None
    for column in FLAG_FIELDS:
        if column in columns:
            try:
                fields[column] = parse_flag(values.get(column))
            except ValueError as exc:
                error(column, str(exc))
    return fields


def _validate_coverage(values: dict[str, str], columns: set[str], index: _DirectoryIndex,
                       error) -> dict[str, str | None] | None:
    if "communes" not in columns and "epci" not in columns:
        return None
    coverage: dict[str, str | None] = {}
    communes = split_codes(values.get("communes"))
    unknown = [code for code in communes if code not in index.communes]
    if unknown:
        error("communes", f"unknown INSEE code(s): {', '.join(unknown)}")
    coverage.update((code, None) for code in communes)
    sirens = split_codes(values.get("epci"))
    unknown = [siren for siren in sirens if siren not in index.epci]
    if unknown:
        error("epci", f"unknown EPCI SIREN code(s) (no commune of the directory belongs to it): {', '.join(unknown)}")
    for siren in sirens:
        coverage.update((code, siren) for code in index.epci.get(siren, ()))
    return coverage


def _check_duplicates(row: _Row, seen_ids: dict[int, int], seen_keys: dict[tuple[str, str], int],
                      index: _DirectoryIndex, errors: list[RowError]) -> None:
    key = (row.type, row.fields["name"])
    if row.structure_id is not None:
        if row.structure_id in seen_ids:
            first = seen_ids[row.structure_id]
            errors.append(RowError(row.line, f"id {row.structure_id} already given on line {first}", "id"))
        seen_ids[row.structure_id] = row.line
        other = index.by_key.get(key)
        if other is not None and other.id != row.structure_id:
            errors.append(RowError(row.line, f"structure {other.id} already has this type and name", "name"))
    if key in seen_keys:
        errors.append(RowError(row.line, f"same type and name as line {seen_keys[key]}", "name"))
    seen_keys[key] = row.line


def _write_row(session: Session, index: _DirectoryIndex, row: _Row, report: ImportReport) -> None:
    if row.structure_id is not None:
        structure = index.structures[row.structure_id]
    else:
        structure = index.by_key.get((row.type, row.fields["name"]))
    if structure is None:
        structure = Structure(**{"sensitive": False, "is_pilot": False, "demo": False, **row.fields, "type": row.type})
        session.add(structure)
        _sync_coverage(structure, row.coverage or {})
        report.created.append(structure.name)
        return
    changed = _apply_fields(structure, {"type": row.type, **row.fields})
    if row.coverage is not None:
        changed = _sync_coverage(structure, row.coverage) or changed
    (report.updated if changed else report.unchanged).append(structure.name)


def _apply_fields(structure: Structure, fields: dict) -> bool:
    changed = False
    for name, value in fields.items():
        if getattr(structure, name) != value:
            setattr(structure, name, value)
            changed = True
    return changed


def _sync_coverage(structure: Structure, wanted: dict[str, str | None]) -> bool:
    """Make the structure's coverage exactly ``wanted``; True if anything changed."""
    changed = False
    for item in list(structure.coverage):
        if item.commune_insee not in wanted:
            structure.coverage.remove(item)
            changed = True
        elif item.via_epci != wanted[item.commune_insee]:
            item.via_epci = wanted[item.commune_insee]
            changed = True
    present = {item.commune_insee for item in structure.coverage}
    for insee in sorted(wanted.keys() - present):
        structure.coverage.append(StructureCoverage(commune_insee=insee, via_epci=wanted[insee]))
        changed = True
    return changed


# --------------------------------------------------------------------------- export

def export_structures(session: Session) -> str:
    """Every structure in the import format; importing the result changes nothing."""
    epci_members = _epci_members(session)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STRUCTURE_COLUMNS)
    for structure in session.scalars(select(Structure).options(selectinload(Structure.coverage))
                                     .order_by(Structure.id)):
        communes, epci = _coverage_columns(structure, epci_members)
        writer.writerow([
            structure.id, structure.type, structure.name, structure.siret or "", structure.email or "",
            structure.phone or "", structure.address or "", _flag(structure.sensitive),
            _flag(structure.is_pilot), _flag(structure.demo), communes, epci,
        ])
    return out.getvalue()


def _epci_members(session: Session) -> dict[str, set[str]]:
    members: dict[str, set[str]] = defaultdict(set)
    for insee, siren in session.execute(select(Commune.insee, Commune.epci_siren)):
        if siren:
            members[siren].add(insee)
    return members


def _coverage_columns(structure: Structure, epci_members: dict[str, set[str]]) -> tuple[str, str]:
    """An EPCI the structure covers whole (through it) goes to ``epci``; the rest to ``communes``."""
    by_epci: dict[str, set[str]] = defaultdict(set)
    for item in structure.coverage:
        if item.via_epci:
            by_epci[item.via_epci].add(item.commune_insee)
    whole = {siren for siren, covered in by_epci.items() if epci_members.get(siren) and covered >= epci_members[siren]}
    communes = sorted(item.commune_insee for item in structure.coverage if item.via_epci not in whole)
    return " ".join(communes), " ".join(sorted(whole))


def _flag(value: bool | None) -> str:
    return "true" if value else "false"


# --------------------------------------------------------------------------- check

@dataclass(frozen=True)
class Overlap:
    type: str
    commune_insee: str
    commune_name: str
    structures: tuple[str, ...]


@dataclass
class DirectoryReport:
    communes: int
    types: tuple[str, ...]
    gaps: dict[str, list[tuple[str, str]]]  # type -> [(INSEE, name)] of communes without one
    overlaps: list[Overlap]

    @property
    def ok(self) -> bool:
        return self.communes > 0 and not self.overlaps and not any(self.gaps.values())

    def lines(self) -> list[str]:
        if not self.communes:
            return ["no commune in the directory: run `spie directory seed-demo` or import the communes"]
        lines = [f"{self.communes} communes; types checked: {', '.join(self.types)}"]
        for structure_type in self.types:
            missing = self.gaps.get(structure_type, [])
            if not missing:
                lines.append(f"{structure_type}: every commune covered")
                continue
            listed = ", ".join(f"{insee} {name}" for insee, name in missing[:20])
            more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
            lines.append(f"{structure_type}: {len(missing)} commune(s) without a structure: {listed}{more}")
        if not self.overlaps:
            lines.append("overlaps: none")
        for overlap in self.overlaps:
            lines.append(f"overlap {overlap.type} on {overlap.commune_insee} {overlap.commune_name}: "
                         + " / ".join(overlap.structures))
        return lines


def check_directory(session: Session, types: Iterable[str] = CORE_STRUCTURE_TYPES) -> DirectoryReport:
    """Communes without a structure of each of ``types``, and same-type overlaps (any type).

    A CCAS and a Département service on one commune is normal (different
    types); two CCAS on one commune is an overlap like any other.
    """
    types = tuple(normalize_structure_type(t) for t in types)
    communes = dict(session.execute(select(Commune.insee, Commune.name).order_by(Commune.insee)).all())
    covering: dict[tuple[str, str], list[str]] = defaultdict(list)
    query = (
        select(Structure.type, StructureCoverage.commune_insee, Structure.name)
        .join(StructureCoverage, StructureCoverage.structure_id == Structure.id)
        .order_by(Structure.type, StructureCoverage.commune_insee, Structure.id)
    )
    for structure_type, insee, name in session.execute(query):
        covering[(structure_type, insee)].append(name)
    gaps = {t: [(insee, name) for insee, name in communes.items() if (t, insee) not in covering] for t in types}
    overlaps = [
        Overlap(structure_type, insee, communes.get(insee, ""), tuple(names))
        for (structure_type, insee), names in sorted(covering.items())
        if len(names) > 1 and structure_type not in OVERLAP_ALLOWED_TYPES
    ]
    return DirectoryReport(len(communes), types, gaps, overlaps)


# --------------------------------------------------------------------------- demo seed

@dataclass
class SeedReport:
    communes: int
    structures: ImportReport
    users_created: list[str]
    users_updated: list[str]

    def lines(self) -> list[str]:
        return [
            f"communes: {self.communes}",
            f"structures: {self.structures.summary()}",
            f"users: {len(self.users_created)} created, {len(self.users_updated)} updated",
        ]


def seed_demo(session: Session) -> SeedReport:
    """Load the communes, the demo structures and the demo users (idempotent).

    Demo data only: contact addresses are on ``example.org`` and users get no
    password here (the auth layer sets them).
    """
    communes = load_communes(session)
    structures = import_structures(session, DEMO_STRUCTURES_CSV)
    if not structures.ok:
        raise InvalidInput("the demo structures are invalid: " + "; ".join(map(str, structures.errors)),
                           [e.to_dict() for e in structures.errors])
    created, updated = load_users(session, DEMO_USERS_CSV)
    return SeedReport(communes, structures, created, updated)


def load_users(session: Session, path: Path) -> tuple[list[str], list[str]]:
    """Upsert users from a CSV ``email,name,role,structure`` (structure name); never touches passwords."""
    reader = csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8-sig")))
    structures = {s.name: s for s in session.scalars(select(Structure))}
    users = {u.email: u for u in session.scalars(select(User))}
    rows, errors = [], []
    for row in reader:
        email = (row.get("email") or "").strip().lower()
        role = (row.get("role") or "").strip()
        structure = structures.get((row.get("structure") or "").strip())
        if not _EMAIL.match(email) or role not in ROLES or structure is None:
            errors.append(f"line {reader.line_num}: needs a valid email, a role among {', '.join(ROLES)} "
                          f"and the name of an existing structure")
            continue
        rows.append((email, (row.get("name") or "").strip() or email, role, structure))
    if errors:
        raise InvalidInput(f"{path.name} refused: " + "; ".join(errors))
    created, updated = [], []
    for email, name, role, structure in rows:
        user = users.get(email)
        if user is None:
            session.add(User(email=email, name=name, role=role, structure=structure, active=True,
                             created_at=datetime.now(timezone.utc)))
            created.append(email)
        elif (user.name, user.role, user.structure_id) != (name, role, structure.id):
            user.name, user.role, user.structure = name, role, structure
            updated.append(email)
    session.flush()
    return created, updated


__all__ = [
    "COMMUNES_CSV", "DEMO_STRUCTURES_CSV", "DEMO_USERS_CSV", "STRUCTURE_COLUMNS", "STRUCTURE_TYPES",
    "DirectoryReport", "ImportReport", "Overlap", "RowError", "SeedReport",
    "check_directory", "export_structures", "import_structures", "load_communes", "load_users",
    "seed_demo", "siret_is_valid",
]
