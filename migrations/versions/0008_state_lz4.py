"""case state compressed with lz4 on PostgreSQL

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

Every command rewrites ``case.state`` (20 to 30 kB of JSON), which PostgreSQL
compresses before storing it out of line.  Its default method, pglz, is the
largest part of what a write costs the server; lz4 compresses this JSON about as
well (4.5 kB instead of 4.2 kB at mid-pathway) for much less CPU: measured with
``bench/engine.py`` (see bench/README.md, "Latest figures").

Only values written from now on use lz4; rows already stored keep pglz and read
as before, so the upgrade takes a moment whatever the size of the table.  A
server built without lz4 (PostgreSQL before 14, or compiled without it) keeps
pglz: nothing changes there.  SQLite stores text as it is.
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    if _lz4_available():
        op.execute('ALTER TABLE "case" ALTER COLUMN state SET COMPRESSION lz4')


def downgrade():
    if _lz4_available():
        op.execute('ALTER TABLE "case" ALTER COLUMN state SET COMPRESSION default')


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    methods = bind.execute(sa.text(
        "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")).scalar()
    return bool(methods) and "lz4" in methods
