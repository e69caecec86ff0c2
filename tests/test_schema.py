"""Migrations and models agree, on both databases."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import text

from engine.db import Base
from engine.models import Case
from tests.helpers import deploy_fixture, start


def test_migrations_match_the_models(migrated_engine):
    with migrated_engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []



def test_case_state_is_compressed_with_lz4_on_postgresql(db_engine, session_factory, ctx):
    """Migration 0008: states are stored with lz4 where the server has it, and read back unchanged."""
    data = {"notes": " ".join(f"entretien {i} fait" for i in range(800))}  # well over the 2 kB PostgreSQL compresses
    deploy_fixture(session_factory, ctx, "simple.bpmn")
    case_id = start(session_factory, ctx, "simple", data=data)
    with session_factory() as session:
        case = session.get(Case, case_id)
        pathway = ctx.specs.get(session, case.pathway_version_id)
        workflow = ctx.serializer.load(case.state, pathway.spec, pathway.subprocess_specs)
        assert workflow.get_next_task(state=TaskState.READY, manual=True).data["notes"] == data["notes"]
        if db_engine.dialect.name != "postgresql":
            return
        lz4 = "lz4" in session.scalar(text(
            "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'"))
        stored = session.scalar(text('SELECT pg_column_compression(state) FROM "case" WHERE id = :id'), {"id": case_id})
    assert stored == ("lz4" if lz4 else "pglz")
