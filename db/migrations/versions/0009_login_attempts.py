"""login attempts: the review app's login throttle, kept in the database so it holds
across restarts and several `vigie serve` processes (webapp/accounts.py).

Revision ID: 0009_login_attempts
Revises: 0008_allowed_material
Create Date: 2026-12-01 17:30:00
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0009_login_attempts'
down_revision = '0008_allowed_material'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempts_account_at', ['account', 'at'], unique=False)
        batch_op.create_index('ix_login_attempts_ip_at', ['ip', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_attempts_at'), ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_attempts_at'))
        batch_op.drop_index('ix_login_attempts_ip_at')
        batch_op.drop_index('ix_login_attempts_account_at')

    op.drop_table('login_attempts')
