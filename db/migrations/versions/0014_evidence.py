"""evidence: every capture kept as its own item (WARC records, screenshots, frames,
match records), the daily manifests with their RFC 3161 tokens, and the case files.

Revision ID: 0014_evidence
Revises: 0013_rights_holders
Create Date: 2026-12-04 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014_evidence'
down_revision = '0013_rights_holders'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'evidence_manifests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('day', sa.String(length=10), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('path', sa.String(length=500), nullable=False),
        sa.Column('items', sa.Integer(), nullable=False),
        sa.Column('token', sa.LargeBinary(), nullable=True),
        sa.Column('tsa_url', sa.String(length=2000), nullable=True),
        sa.Column('tsa_time', sa.DateTime(timezone=True), nullable=True),
        sa.Column('token_error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_evidence_manifests_day', 'evidence_manifests', ['day'])
    op.create_table(
        'evidence_items',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('captured_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('day', sa.String(length=10), nullable=False),
        sa.Column('candidate_id', sa.Integer(), nullable=True),
        sa.Column('match_id', sa.Integer(), nullable=True),
        sa.Column('check_id', sa.Integer(), nullable=True),
        sa.Column('url', sa.String(length=2000), nullable=True),
        sa.Column('ip', sa.String(length=64), nullable=True),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('path', sa.String(length=500), nullable=False),
        sa.Column('offset', sa.BigInteger(), nullable=True),
        sa.Column('length', sa.BigInteger(), nullable=True),
        sa.Column('meta', sa.JSON(), nullable=False),
        sa.Column('manifest_id', sa.Integer(), nullable=True),
        sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['candidate_id'], ['candidates.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['match_id'], ['matches.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['check_id'], ['checks.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['manifest_id'], ['evidence_manifests.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_evidence_items_captured_at', 'evidence_items', ['captured_at'])
    op.create_index('ix_evidence_items_day', 'evidence_items', ['day'])
    op.create_index('ix_evidence_items_candidate_id', 'evidence_items', ['candidate_id'])
    op.create_index('ix_evidence_items_sha256', 'evidence_items', ['sha256'])
    op.create_index('ix_evidence_items_manifest_id', 'evidence_items', ['manifest_id'])
    op.create_table(
        'evidence_exports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('scope', sa.String(length=2000), nullable=False),
        sa.Column('path', sa.String(length=2000), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('item_ids', sa.JSON(), nullable=False),
        sa.Column('pinned', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade() -> None:
    op.drop_table('evidence_exports')
    op.drop_table('evidence_items')
    op.drop_table('evidence_manifests')
