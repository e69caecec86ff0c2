"""``spie directory``: import, export and check the directory, seed the demo one.

A separate click group so the directory tooling stays out of ``api/cli.py``;
``api.cli`` registers it with ``main.add_command(directory)``. The engine
functions live in :mod:`engine.directory_io`; this module only parses
arguments, runs each command in one transaction and prints the outcome.
"""
from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from api.extensions import db
from engine.db import transaction
from engine.directory import CORE_STRUCTURE_TYPES, STRUCTURE_TYPES
from engine.directory_io import check_directory, export_structures, import_structures, seed_demo
from engine.errors import EngineError


@click.group("directory")
def directory() -> None:
    """Directory (annuaire): communes, structures and their coverage."""


@directory.command("import")
@click.argument("file", type=click.File("rb"))
@with_appcontext
def import_command(file) -> None:
    """Create or update structures from a CSV FILE ('-' for stdin); all rows or none."""
    try:
        with transaction(db.session):
            report = import_structures(db.session, file)  # writes nothing when a row is refused
    except EngineError as exc:
        raise click.ClickException(str(exc)) from exc
    source = getattr(file, "name", "<stdin>")
    for error in report.errors:
        click.echo(f"{source}: {error}", err=True)
    click.echo(f"{source}: {report.summary()}", err=not report.ok)
    if not report.ok:
        sys.exit(1)


@directory.command("export")
@click.argument("file", type=click.File("w", encoding="utf-8"), default="-")
@with_appcontext
def export_command(file) -> None:
    """Write every structure as CSV to FILE (default: stdout), in the import format."""
    file.write(export_structures(db.session))
    db.session.rollback()  # read only: end the transaction the export opened


@directory.command("check")
@click.option("--type", "types", multiple=True, type=click.Choice(list(STRUCTURE_TYPES)),
              help="Structure type that must cover every commune (repeatable; default: the core types).")
@with_appcontext
def check_command(types: tuple[str, ...]) -> None:
    """Report communes without a structure of a type, and same-type overlaps; exit 1 if any."""
    report = check_directory(db.session, types or CORE_STRUCTURE_TYPES)
    db.session.rollback()
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        sys.exit(1)


@directory.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Load the Essonne communes and the demo structures and users (idempotent)."""
    try:
        with transaction(db.session):
            report = seed_demo(db.session)
    except EngineError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in report.lines():
        click.echo(line)
