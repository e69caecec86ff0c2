"""queue and identity indexes

Revision ID: 0007
Revises: 0006_admin_event
Create Date: 2026-11-28

- ``ix_care_team_current_case``: the current members of a case, by structure, read from the
  index alone: the visibility tests of engine.access (is the user's structure on the care
  team, is a sensitive structure on it) probe it once per task of a queue;
- ``ix_person_identity_lower``: the person look-up of a case start ignores case (``lower()``
  on both names, which ``ix_person_identity`` cannot serve: PostgreSQL scanned the whole
  index for the birth date, 58-159 ms per start with two million persons).

Measured on the national data set of bench/generate.py: see docs/operations.md
("Indexes and query plans").

On PostgreSQL the indexes are built ``CONCURRENTLY``, outside the migration's
transaction, as in 0005: web nodes and workers keep writing while they build. A build
interrupted half-way leaves an INVALID index: drop it and run the upgrade again.
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006_admin_event'
branch_labels = None
depends_on = None

INDEXES = (  # name, table, columns (SQL expressions), rows (partial index) or None
    ("ix_care_team_current_case", "care_team_member", ["case_id", "structure_id"], "ended_at IS NULL"),
    ("ix_person_identity_lower", "person", ["lower(last_name)", "lower(first_name)", "birth_date"], None),
)


def upgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    with op.get_context().autocommit_block():
        for name, table, columns, where in INDEXES:
            condition = sa.text(where) if where else None
            op.create_index(name, table, [sa.text(c) for c in columns], unique=False, if_not_exists=True,
                            postgresql_where=condition, sqlite_where=condition, postgresql_concurrently=postgresql)


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    with op.get_context().autocommit_block():
        for name, table, *_ in reversed(INDEXES):
            op.drop_index(name, table_name=table, if_exists=True, postgresql_concurrently=postgresql)
