"""notice item role: hosting (the host stores the video) or linking (a page pointing to it)

Revision ID: 0005_item_role
Revises: 0004_ops
Create Date: 2026-11-26 10:33:47.466565

Items written before this revision were the page URL sent to the candidate's host, which
verification treated as the host of the video: they become ``hosting``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_item_role'
down_revision = '0004_ops'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notice_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.Enum('hosting', 'linking', name='itemrole', native_enum=False,
                                                      length=32), server_default='hosting', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('notice_items', schema=None) as batch_op:
        batch_op.drop_column('role')
