"""query indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28

Partial indexes on the open tasks (``state IN ('open', 'claimed')``, about a fifth
of ``human_task``) for the inbox, the overdue boards, the visibility test and the
case page, and one on completed tasks for a référent's history. Measured on the
national data set of bench/generate.py (2,000,000 cases, 10 million task rows):
see docs/operations.md ("Indexes and query plans").

On PostgreSQL the indexes are built ``CONCURRENTLY``, outside the migration's
transaction, so web nodes and workers keep writing while they build (about a
minute each on 10 million rows). A build interrupted half-way leaves an INVALID
index: drop it and run the upgrade again.
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

OPEN = "state IN ('open', 'claimed')"
COMPLETED = "state = 'completed'"
INDEXES = (  # name, columns, rows, INCLUDE columns (PostgreSQL: index-only counts of a structure's queue)
    ("ix_human_task_open_structure", ["structure_id", "due_at", "id"], OPEN, ["case_id", "audience"]),
    ("ix_human_task_open_due", ["due_at", "id"], OPEN, []),
    ("ix_human_task_open_case", ["case_id", "structure_id", "audience"], OPEN, []),
    ("ix_human_task_completed_by", ["completed_by", "ended_at"], COMPLETED, []),
)


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            for name, columns, where, include in INDEXES:
                op.create_index(name, "human_task", columns, unique=False, postgresql_where=sa.text(where),
                                postgresql_include=include, postgresql_concurrently=True, if_not_exists=True)
        return
    with op.batch_alter_table("human_task", schema=None) as batch_op:
        for name, columns, where, _ in INDEXES:
            batch_op.create_index(name, columns, unique=False, sqlite_where=sa.text(where))


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            for name, *_ in reversed(INDEXES):
                op.drop_index(name, table_name="human_task", postgresql_concurrently=True, if_exists=True)
        return
    with op.batch_alter_table("human_task", schema=None) as batch_op:
        for name, *_ in reversed(INDEXES):
            batch_op.drop_index(name)
