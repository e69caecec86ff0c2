"""drop indexes no query uses

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29

Every index of ``human_task`` is written when a task is created and again when it
is completed (its state is indexed, so the update is never HOT), and the same goes
for ``timer`` when a timer fires or is cancelled: fewer indexes, cheaper commands.
These serve no query (docs/operations.md, "Indexes and query plans", plans taken on
the national data set of bench/generate.py):

- ``ix_human_task_inbox (state, lane, due_at)``: the inboxes and boards read the
  partial indexes of migration 0005;
- ``ix_human_task_case_id (case_id)``: the unique ``(case_id, task_uuid)`` index
  starts with the same column;
- ``ix_timer_state_due (state, due_at)``: the timer worker claims cases by
  ``case.next_timer_at``; timer rows are only read by case;
- ``ix_timer_case_id (case_id)``: the unique ``(case_id, task_uuid)`` index again;
- ``ix_care_team_active (case_id, ended_at)``: ``ix_care_team_member_case_id`` and
  the partial ``ix_care_team_current_case`` (migration 0007) serve its queries.

On PostgreSQL they are dropped ``CONCURRENTLY``, outside the migration's
transaction, so that commands go on while they go.
"""
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

INDEXES = (  # name, table, columns
    ("ix_human_task_inbox", "human_task", ["state", "lane", "due_at"]),
    ("ix_human_task_case_id", "human_task", ["case_id"]),
    ("ix_timer_state_due", "timer", ["state", "due_at"]),
    ("ix_timer_case_id", "timer", ["case_id"]),
    ("ix_care_team_active", "care_team_member", ["case_id", "ended_at"]),
)


def upgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    with op.get_context().autocommit_block():
        for name, table, _ in INDEXES:
            op.drop_index(name, table_name=table, if_exists=True, postgresql_concurrently=postgresql)


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    with op.get_context().autocommit_block():
        for name, table, columns in reversed(INDEXES):
            op.create_index(name, table, columns, unique=False, if_not_exists=True,
                            postgresql_concurrently=postgresql)
