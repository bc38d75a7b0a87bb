"""inbox: the hosts' replies (inbox_messages) and counter-notices (counter_notices).

Revision ID: 0012_inbox
Revises: 0011_notice_workflow
Create Date: 2026-12-04 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012_inbox'
down_revision = '0011_notice_workflow'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(300), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("imap_folder", sa.String(200), nullable=True),
        sa.Column("imap_uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("imap_uid", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("from_addr", sa.String(500), nullable=True),
        sa.Column("subject", sa.String(500), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("notice_id", sa.Integer(), sa.ForeignKey("notices.id", ondelete="SET NULL"), nullable=True),
        sa.Column("host_id", sa.Integer(), sa.ForeignKey("hosts.id", ondelete="SET NULL"), nullable=True),
        sa.Column("threaded_by", sa.String(32), nullable=True),
        sa.Column("kind", sa.Enum("ack", "removed", "refused", "redirect", "bounce", "counter_notice", "other",
                                  name="replykind", native_enum=False, create_constraint=False, length=32),
                  nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("rule", sa.String(200), nullable=True),
        sa.Column("ticket", sa.String(100), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("redirect_to", sa.String(500), nullable=True),
        sa.Column("state", sa.Enum("filed", "staff", "closed", name="inboxstate", native_enum=False,
                                   create_constraint=False, length=32), nullable=False),
        sa.Column("staff_reason", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("handled_by", sa.String(100), nullable=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("sha256"),
    )
    op.create_index("ix_inbox_messages_imap", "inbox_messages", ["imap_folder", "imap_uidvalidity", "imap_uid"])
    for col in ("message_id", "received_at", "notice_id", "host_id", "kind", "state"):
        op.create_index(f"ix_inbox_messages_{col}", "inbox_messages", [col])
    op.create_table(
        "counter_notices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("inbox_messages.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("notice_id", sa.Integer(), sa.ForeignKey("notices.id", ondelete="SET NULL"), nullable=True),
        sa.Column("regime", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("urls", sa.JSON(), nullable=False),
        sa.Column("statements", sa.JSON(), nullable=False),
        sa.Column("putback_from", sa.Date(), nullable=True),
        sa.Column("putback_until", sa.Date(), nullable=True),
        sa.Column("state", sa.Enum("open", "accepted", "court_action", "complaint", name="counternoticestate",
                                   native_enum=False, create_constraint=False, length=32), nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
    )
    for col in ("message_id", "notice_id", "state"):
        op.create_index(f"ix_counter_notices_{col}", "counter_notices", [col])


def downgrade() -> None:
    op.drop_table("counter_notices")
    op.drop_table("inbox_messages")
