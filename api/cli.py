"""The ``spie`` command line."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
import signal
import sys
import threading
from pathlib import Path

import click
from flask.cli import FlaskGroup, with_appcontext

from api.app import create_app, engine_context, session_factory
from api.cli_directory import directory
from api.extensions import db
from engine import offers, pathways, simulation, user_admin
from engine.demo import DEMO_PASSWORD, deploy_pathways, set_demo_passwords
from engine.directory_io import seed_demo
from engine.db import transaction
from engine.errors import EngineError
from engine.gc_policy import tune_for_service
from engine.schema import create_revision, upgrade_database
from engine.timers import fire_due_timers

log = logging.getLogger("spie")


@click.group(cls=FlaskGroup, create_app=create_app, add_default_commands=False, add_version_option=False)
def main() -> None:
    """SPIE pathways engine."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("spiff").setLevel(logging.WARNING)  # one line per task state change otherwise


main.add_command(directory)


@main.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Create or migrate the schema to the latest revision."""
    upgrade_database(db.engine)
    click.echo("database is up to date")


@db_group.command("revision")
@click.option("-m", "--message", required=True)
@with_appcontext
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (for developers)."""
    create_revision(db.engine, message)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", "deployed_by", default="cli", help="Who deploys (recorded on the version).")
@with_appcontext
def deploy(files: tuple[Path, ...], deployed_by: str) -> None:
    """Deploy BPMN files; a .dmn given after a .bpmn goes with it."""
    ctx = engine_context()
    failed = False
    for bpmn, dmns in _group_files(files):
        try:
            with transaction(db.session):
                result = pathways.deploy(db.session, ctx, bpmn.read_bytes(), [d.read_bytes() for d in dmns],
                                         deployed_by=deployed_by)
        except EngineError as exc:
            failed = True
            click.echo(f"{bpmn}: {exc}", err=True)
            continue
        verb = "deployed" if result.created else "unchanged"
        click.echo(f"{bpmn}: {verb} {result.version.key} v{result.version.version}")
    if failed:
        sys.exit(1)


@main.command("import-offers")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--structures", "structures_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The data·inclusion structures of the services (JSON or CSV), when FILE has none.")
@click.option("--demo", is_flag=True, help="Flag the offers, and the providers added, as demo data.")
@click.option("--dry-run", is_flag=True, help="Validate only; write nothing.")
@with_appcontext
def import_offers(file: Path, structures_file: Path | None, demo: bool, dry_run: bool) -> None:
    """Import a data·inclusion v1 export (JSON, or CSV of services): every row, or none."""
    try:
        parsed = offers.read_offer_file(file, structures_path=structures_file)
        with transaction(db.session):
            report = offers.import_offers(db.session, parsed, now=datetime.now(timezone.utc), demo=demo,
                                          dry_run=dry_run)
    except EngineError as exc:
        raise click.ClickException(f"{file}: {exc}") from exc
    if not report.ok:
        for error in report.errors:
            click.echo(f"{file}: {error}", err=True)
        click.echo(f"{file}: {report.rejected_rows} row(s) rejected; nothing imported", err=True)
        sys.exit(1)
    if dry_run:
        click.echo(f"{file}: {len(report.created)} service(s) valid; nothing written (--dry-run)")
        return
    click.echo(f"{file}: {len(report.created)} offer(s) created, {len(report.updated)} updated, "
               f"{len(report.unchanged)} unchanged")
    for name in report.providers_created:
        click.echo(f"  provider added to the directory: {name}")


@main.command("create-admin")
@click.option("--email", required=True)
@click.option("--password", required=True, help="At least 12 characters.")
@click.option("--name", default="Administrateur")
@with_appcontext
def create_admin(email: str, password: str, name: str) -> None:
    """Create an administrator account."""
    try:
        with transaction(db.session):
            user_admin.create_user(db.session, actor=None, email=email, name=name, role="admin", structure_id=None,
                                   password=password, now=datetime.now(timezone.utc))
    except EngineError as exc:
        raise click.ClickException(f"{exc}: {getattr(exc, 'errors', '')}") from exc
    click.echo(f"administrator {email} created")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--no-serve", is_flag=True, help="Seed and deploy only.")
@with_appcontext
def demo(host: str, port: int, no_serve: bool) -> None:
    """Seed the Essonne demo directory and accounts, deploy the pathways, serve in simulation mode."""
    from flask import current_app

    if not current_app.config["SPIE_SIMULATION"]:
        raise click.ClickException("the demo runs in simulation mode: set SPIE_SIMULATION=1")
    upgrade_database(db.engine)
    with transaction(db.session):
        seed_demo(db.session)
        offers.seed_demo_offers(db.session, datetime.now(timezone.utc))
        accounts_with_password = set_demo_passwords(db.session, DEMO_PASSWORD)
    for result in deploy_pathways(db.session, engine_context(), deployed_by="demo"):
        click.echo(f"pathway {result.version.key} v{result.version.version}")
    click.echo(f"\nDemo accounts (password for all: {DEMO_PASSWORD}):")
    for user in accounts_with_password:
        structure = user.structure.name if user.structure else "-"
        click.echo(f"  {user.role:<10} {user.email:<55} {structure}")
    if not no_serve:
        _serve(host, port, timers=True)


@main.group()
def clock() -> None:
    """Simulated time (SPIE_SIMULATION=1)."""


@clock.command("advance")
@click.argument("duration")
@with_appcontext
def clock_advance(duration: str) -> None:
    """Advance simulated time by an ISO 8601 duration (e.g. P15D), firing due timers."""
    try:
        result = simulation.advance(session_factory(), engine_context(), duration)
    except EngineError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"clock: {result.started_at.isoformat()} -> {result.now.isoformat()}; "
               f"{result.firings} timer firing(s)")


@clock.command("show")
@with_appcontext
def clock_show() -> None:
    """Print the engine's current time."""
    click.echo(engine_context().clock.now(db.session).isoformat())


@main.command("check")
@click.option("--batch", default=500, show_default=True, type=click.IntRange(min=1), help="Cases read at a time.")
@click.option("--directory", "directory_decides", is_flag=True,
              help="Exit 1 on directory gaps or overlaps too (by default only the cases decide).")
@with_appcontext
def check(batch: int, directory_decides: bool) -> None:
    """Check every case's saved state against its tasks, timers, care team and timeline; exit 1 on problems."""
    from engine.consistency import check_database
    from engine.directory_io import check_directory

    report = check_database(db.session, engine_context(), batch=batch)
    click.echo("cases:")
    for line in report.lines():
        click.echo(f"  {line}")
    directory_report = check_directory(db.session)
    db.session.rollback()  # read only
    click.echo("directory:")
    for line in directory_report.lines():
        click.echo(f"  {line}")
    if not report.ok or (directory_decides and not directory_report.ok):
        sys.exit(1)


@main.command()
@click.option("--interval", default=1.0, show_default=True, help="Seconds between polls.")
@click.option("--once", is_flag=True, help="Fire what is due now and exit.")
@with_appcontext
def worker(interval: float, once: bool) -> None:
    """Fire due timers until stopped (several workers may run on PostgreSQL)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    factory, ctx = session_factory(), engine_context()
    tune_for_service()
    while not stop.is_set():
        try:
            count = fire_due_timers(factory, ctx)
            if count:
                log.info("fired timers of %d case(s)", count)
        except Exception:  # noqa: BLE001 - a failed batch is rolled back and retried next poll
            log.exception("timer batch failed; retrying")
        if once:
            return
        stop.wait(interval)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--no-timers", is_flag=True, help="Do not fire timers in this process (run `spie worker`).")
@with_appcontext
def serve(host: str, port: int, no_timers: bool) -> None:
    """Serve the application, with an in-process timer scheduler (APScheduler)."""
    upgrade_database(db.engine)
    _serve(host, port, timers=not no_timers)


def _serve(host: str, port: int, *, timers: bool) -> None:
    from flask import current_app
    from werkzeug.serving import run_simple

    from api.scheduler import start_timer_scheduler

    app = current_app._get_current_object()
    scheduler = start_timer_scheduler(app) if timers else None
    tune_for_service()
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)


def _group_files(files: tuple[Path, ...]) -> list[tuple[Path, list[Path]]]:
    groups: list[tuple[Path, list[Path]]] = []
    for path in files:
        if path.suffix == ".dmn":
            if not groups:
                raise click.UsageError(f"{path}: a .dmn must follow the .bpmn that uses it")
            groups[-1][1].append(path)
        else:
            groups.append((path, []))
    return groups
