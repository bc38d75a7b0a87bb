"""needs_browser: a candidate whose player needs the browser resolver, crawled without one.

The status column is a VARCHAR(32) without a CHECK constraint (``db.models._enum``), so
the new state needs no schema change on the way up. On the way down, code that does not
know the state could not load such rows: they become ``failed`` with the reason kept.

Revision ID: 0010_needs_browser
Revises: 0009_login_attempts
Create Date: 2026-12-01 18:00:00
"""

from __future__ import annotations

from alembic import op

revision = '0010_needs_browser'
down_revision = '0009_login_attempts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    op.execute("UPDATE candidates SET status = 'failed', "
               "error = 'needs the browser resolver (state unknown to this schema version)' "
               "WHERE status = 'needs_browser'")
