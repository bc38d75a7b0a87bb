"""notices: which process claimed a notice being sent (claimed_by), so that a sender
that died on this machine has its claim released at once, not after the lease.

Revision ID: 0015_notice_claimant
Revises: 0014_evidence
Create Date: 2026-12-05 10:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015_notice_claimant'
down_revision = '0014_evidence'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('notices', sa.Column('claimed_by', sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('notices') as batch:
        batch.drop_column('claimed_by')
