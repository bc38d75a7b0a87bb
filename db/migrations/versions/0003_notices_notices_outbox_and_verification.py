"""notices outbox and verification: escalation chain, claim/backoff timestamps, item deadlines

Revision ID: 0003_notices
Revises: 0002_reports
Create Date: 2026-11-26 10:05:44.882935
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0003_notices'
down_revision = '0002_reports'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notice_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('escalation_level', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=32), server_default='notice', nullable=False))
        batch_op.add_column(sa.Column('parent_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('recipient_source', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('data_started_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key('fk_notices_parent_id', 'notices', ['parent_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_constraint('fk_notices_parent_id', type_='foreignkey')
        batch_op.drop_column('data_started_at')
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('approved_at')
        batch_op.drop_column('recipient_source')
        batch_op.drop_column('parent_id')
        batch_op.drop_column('kind')

    with op.batch_alter_table('notice_items', schema=None) as batch_op:
        batch_op.drop_column('last_checked_at')
        batch_op.drop_column('escalation_level')
        batch_op.drop_column('due_at')

