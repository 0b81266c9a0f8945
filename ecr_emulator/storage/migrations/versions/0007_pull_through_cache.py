"""pull through cache: rules, the tags the cache refreshes, fetch leases

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pull_through_rules',
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('prefix', sa.String(length=32), nullable=False),
    sa.Column('upstream_registry', sa.String(length=32), nullable=False),
    sa.Column('upstream_url', sa.String(length=256), nullable=False),
    sa.Column('upstream_prefix', sa.String(length=32), nullable=False),
    sa.Column('credential_arn', sa.String(length=612), nullable=True),
    sa.Column('custom_role_arn', sa.String(length=2048), nullable=True),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'region', 'key', name=op.f('pk_pull_through_rules'))
    )
    op.create_table('pull_through_tags',
    sa.Column('repository_id', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=300), nullable=False),
    sa.Column('next_check_at', sa.Double(), nullable=False),
    sa.ForeignKeyConstraint(['repository_id'], ['repositories.id'],
                            name=op.f('fk_pull_through_tags_repository_id_repositories'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('repository_id', 'tag', name=op.f('pk_pull_through_tags'))
    )
    op.create_table('upstream_fetches',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('lease_token', sa.String(length=32), nullable=False),
    sa.Column('lease_until', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_upstream_fetches'))
    )


def downgrade() -> None:
    op.drop_table('upstream_fetches')
    op.drop_table('pull_through_tags')
    op.drop_table('pull_through_rules')
