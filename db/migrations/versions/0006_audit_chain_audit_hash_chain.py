"""audit hash chain: prev_hash and row_hash on audit_log (db/auditchain.py); rows
written before stay without a hash, at the start of the chain.

Revision ID: 0006_audit_chain
Revises: 0005_item_role
Create Date: 2026-11-26 11:19:20.708056
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0006_audit_chain'
down_revision = '0005_item_role'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('row_hash', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_column('row_hash')
        batch_op.drop_column('prev_hash')
