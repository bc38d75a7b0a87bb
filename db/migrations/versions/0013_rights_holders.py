"""rights holders: organisations that own rights (or act for those who do), their rights
on titles per territory, agents' mandates, offers' release windows, and staff scope.

Every distinct ``titles.rights_owner`` string becomes a rights holder of that name with
worldwide rights on its titles, so a catalogue made before this revision notifies as it
did (a title with no holder is never notified from now on). ``rights_owner`` stays as the
name given at cataloguing time. Users get the organisation they work for (empty: the
installation's staff, who see everything), notices the organisation that sent them.

Revision ID: 0013_rights_holders
Revises: 0012_inbox
Create Date: 2026-12-04 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013_rights_holders'
down_revision = '0012_inbox'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'rights_holders',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.Enum('holder', 'agent', name='orgkind', native_enum=False, length=32),
                  nullable=False),
        sa.Column('legal_name', sa.String(length=300), nullable=False),
        sa.Column('address', sa.Text(), nullable=True),
        sa.Column('signatory', sa.String(length=300), nullable=True),
        sa.Column('email', sa.String(length=300), nullable=True),
        sa.Column('phone', sa.String(length=100), nullable=True),
        sa.Column('country', sa.String(length=2), nullable=True),
        sa.Column('logo', sa.LargeBinary(), nullable=True),
        sa.Column('logo_type', sa.String(length=32), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    op.create_table(
        'title_rights',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('title_id', sa.Integer(), nullable=False),
        sa.Column('holder_id', sa.Integer(), nullable=False),
        sa.Column('territory', sa.String(length=200), nullable=False),
        sa.Column('valid_from', sa.Date(), nullable=True),
        sa.Column('valid_until', sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(['holder_id'], ['rights_holders.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['title_id'], ['titles.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_title_rights_title_id', 'title_rights', ['title_id'])
    op.create_index('ix_title_rights_holder_id', 'title_rights', ['holder_id'])
    op.create_table(
        'mandates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=False),
        sa.Column('principal_id', sa.Integer(), nullable=False),
        sa.Column('all_titles', sa.Boolean(), nullable=False),
        sa.Column('valid_from', sa.Date(), nullable=False),
        sa.Column('valid_until', sa.Date(), nullable=True),
        sa.Column('document_sha256', sa.String(length=64), nullable=True),
        sa.Column('document_name', sa.String(length=300), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['agent_id'], ['rights_holders.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['principal_id'], ['rights_holders.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_mandates_agent_id', 'mandates', ['agent_id'])
    op.create_index('ix_mandates_principal_id', 'mandates', ['principal_id'])
    op.create_table(
        'mandate_titles',
        sa.Column('mandate_id', sa.Integer(), nullable=False),
        sa.Column('title_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['mandate_id'], ['mandates.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['title_id'], ['titles.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('mandate_id', 'title_id'),
    )
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('valid_from', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('valid_until', sa.Date(), nullable=True))
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notifier_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_notices_notifier_id', ['notifier_id'])
        batch_op.create_foreign_key('fk_notices_notifier_id', 'rights_holders', ['notifier_id'], ['id'],
                                    ondelete='SET NULL')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('org_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_users_org_id', ['org_id'])
        batch_op.create_foreign_key('fk_users_org_id', 'rights_holders', ['org_id'], ['id'], ondelete='RESTRICT')
    _holders_from_rights_owner()


def _holders_from_rights_owner() -> None:
    """A holder per distinct ``rights_owner`` (its name and legal name), worldwide rights."""
    conn = op.get_bind()
    owners = [r[0] for r in conn.execute(sa.text(
        "SELECT DISTINCT rights_owner FROM titles WHERE rights_owner IS NOT NULL AND rights_owner <> ''"))]
    for owner in owners:
        name = " ".join(owner.split())[:200] or owner[:200]
        holder_id = conn.execute(sa.text("SELECT id FROM rights_holders WHERE name = :n"), {"n": name}).scalar()
        if holder_id is None:
            conn.execute(sa.text("INSERT INTO rights_holders (name, kind, legal_name, created_at) "
                                 "VALUES (:n, 'holder', :l, CURRENT_TIMESTAMP)"), {"n": name, "l": owner[:300]})
            holder_id = conn.execute(sa.text("SELECT id FROM rights_holders WHERE name = :n"), {"n": name}).scalar()
        conn.execute(sa.text("INSERT INTO title_rights (title_id, holder_id, territory) "
                             "SELECT id, :h, '*' FROM titles WHERE rights_owner = :o"), {"h": holder_id, "o": owner})


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint('fk_users_org_id', type_='foreignkey')
        batch_op.drop_index('ix_users_org_id')
        batch_op.drop_column('org_id')
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_constraint('fk_notices_notifier_id', type_='foreignkey')
        batch_op.drop_index('ix_notices_notifier_id')
        batch_op.drop_column('notifier_id')
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.drop_column('valid_until')
        batch_op.drop_column('valid_from')
    op.drop_table('mandate_titles')
    op.drop_index('ix_mandates_principal_id', table_name='mandates')
    op.drop_index('ix_mandates_agent_id', table_name='mandates')
    op.drop_table('mandates')
    op.drop_index('ix_title_rights_holder_id', table_name='title_rights')
    op.drop_index('ix_title_rights_title_id', table_name='title_rights')
    op.drop_table('title_rights')
    op.drop_table('rights_holders')
