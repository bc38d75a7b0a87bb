"""Report archive, match thumbnails (reference and candidate frames), title posters.

Revision ID: 0002_reports
Revises: 0001
Create Date: 2026-11-26 10:05:35.903439
"""

from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0002_reports'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('generated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('files', sa.JSON(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('mailed_to', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('day')
    )
    op.create_table('title_posters',
    sa.Column('title_id', sa.Integer(), nullable=False),
    sa.Column('t_s', sa.Float(), nullable=False),
    sa.Column('jpeg', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['title_id'], ['titles.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('title_id')
    )
    op.create_table('match_frames',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('match_id', sa.Integer(), nullable=False),
    sa.Column('ref_t', sa.Float(), nullable=False),
    sa.Column('cand_t', sa.Float(), nullable=False),
    sa.Column('ref_jpeg', sa.LargeBinary(), nullable=True),
    sa.Column('cand_jpeg', sa.LargeBinary(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['match_id'], ['matches.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('match_frames', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_match_frames_match_id'), ['match_id'], unique=True)



def downgrade() -> None:
    with op.batch_alter_table('match_frames', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_match_frames_match_id'))

    op.drop_table('match_frames')
    op.drop_table('title_posters')
    op.drop_table('reports')
