"""notice_workflow: submission tasks, jurisdiction sources, removal pages, published titles.

* ``notices.ticket_ref`` / ``submitted_by``: a web-form or API notice marked submitted by
  staff, with the host's ticket reference (``notices.workflow``).
* ``hosts.jurisdiction_source``: where a host's jurisdiction came from (staff, cctld,
  language, default); hosts whose jurisdiction was set before this revision count as set
  by staff.
* ``hosts.removal_pattern``: the host's own "content removed" page, for verification.
* ``titles.published`` / ``publish_from``: public pages only for published titles. New
  titles start unpublished; titles that existed before this revision are published when
  they have at least one legitimate offer (a released film, whose public page notices
  already sent may link to), unpublished otherwise (a film with nothing to point to is
  most likely one watched for leaks before its release).

Revision ID: 0011_notice_workflow
Revises: 0010_needs_browser
Create Date: 2026-12-04 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011_notice_workflow'
down_revision = '0010_needs_browser'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('titles') as batch_op:
        batch_op.add_column(sa.Column('published', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('publish_from', sa.Date(), nullable=True))
    with op.batch_alter_table('hosts') as batch_op:
        batch_op.add_column(sa.Column('jurisdiction_source', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('removal_pattern', sa.String(length=500), nullable=True))
    with op.batch_alter_table('notices') as batch_op:
        batch_op.add_column(sa.Column('ticket_ref', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('submitted_by', sa.String(length=100), nullable=True))
    op.execute("UPDATE titles SET published = true WHERE EXISTS "
               "(SELECT 1 FROM offers WHERE offers.title_id = titles.id)")
    op.execute("UPDATE hosts SET jurisdiction_source = 'staff' WHERE jurisdiction IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('notices') as batch_op:
        batch_op.drop_column('submitted_by')
        batch_op.drop_column('ticket_ref')
    with op.batch_alter_table('hosts') as batch_op:
        batch_op.drop_column('removal_pattern')
        batch_op.drop_column('jurisdiction_source')
    with op.batch_alter_table('titles') as batch_op:
        batch_op.drop_column('publish_from')
        batch_op.drop_column('published')
