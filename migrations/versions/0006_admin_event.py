"""admin event: the administration log (accounts created, changed, deactivated; passwords reset; directory imports)

Revision ID: 0006_admin_event
Revises: 0005
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
import engine.db


revision = '0006_admin_event'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('admin_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', engine.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['app_user.id'], name=op.f('fk_admin_event_actor_id_app_user')),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_admin_event_user_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_event'))
    )
    with op.batch_alter_table('admin_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admin_event_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_admin_event_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_admin_event_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('admin_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_admin_event_user_id'))
        batch_op.drop_index(batch_op.f('ix_admin_event_at'))
        batch_op.drop_index(batch_op.f('ix_admin_event_actor_id'))

    op.drop_table('admin_event')
