"""needs_browser: a candidate whose player needs the browser resolver, crawled without one.

The status column is a VARCHAR(32) without a CHECK constraint (``db.models._enum``), so
the new state needs no schema change on the way up. On the way down, code that does not
know the state could not load such rows: they become ``failed`` with the reason kept.

Revision ID: 0010_needs_browser
Revises: 0009
Create Date: 2026-12-01 18:00:00
"""

from __future__ import annotations

import os

from alembic import op

revision = '0010_needs_browser'
# Chained after 0009 (login attempts, from a branch merged beside this one). Until that
# branch is merged, this one's head is 0007: the chain stays loadable either way. Once
# 0008 and 0009 are in, this is simply "0009".
_HERE = os.path.dirname(os.path.abspath(__file__))
down_revision = '0009' if any(f.startswith('0009') for f in os.listdir(_HERE)) else '0007_web_sessions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    op.execute("UPDATE candidates SET status = 'failed', "
               "error = 'needs the browser resolver (state unknown to this schema version)' "
               "WHERE status = 'needs_browser'")
