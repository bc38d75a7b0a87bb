"""allowed material: reference videos that are trailers, promos, public-domain footage or
logos (``vigie catalog allow``), and per-frame marks of references (static, shared).

``reference_videos.allowed_reason`` is empty for a film reference; allowed material may
belong to no title, so ``reference_videos.title_id`` becomes nullable, and so does
``matches.title_id`` (a match of a logo that belongs to no title). ``reference_videos.flags``
holds one byte per stored frame; references made before this revision have none (the
index computes their static marks from the hashes). The new states (``matches.decision``
``allowed``, ``candidates.status`` ``allowed``) are plain VARCHAR values: no DDL.

Revision ID: 0008_allowed_material
Revises: 0007_web_sessions
Create Date: 2026-12-01 17:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_allowed_material'
down_revision = '0007_web_sessions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('reference_videos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flags', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('allowed_reason', sa.Enum('trailer', 'promo', 'public-domain', 'logo',
                                                                name='allowedreason', native_enum=False,
                                                                length=32), nullable=True))
        batch_op.alter_column('title_id', existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.alter_column('title_id', existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    # Rows that only this revision allows cannot go back: allowed material and its matches.
    op.execute("DELETE FROM matches WHERE decision = 'allowed' OR title_id IS NULL")
    op.execute("UPDATE candidates SET status = 'no_match' WHERE status = 'allowed'")
    op.execute("DELETE FROM reference_videos WHERE allowed_reason IS NOT NULL OR title_id IS NULL")
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.alter_column('title_id', existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table('reference_videos', schema=None) as batch_op:
        batch_op.alter_column('title_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('allowed_reason')
        batch_op.drop_column('flags')
