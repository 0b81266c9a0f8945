"""managed signing: image signing statuses and the signing keys

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('image_signings',
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('profile_arn', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('failure_code', sa.String(length=64), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('signature_digest', sa.String(length=160), nullable=True),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], name=op.f('fk_image_signings_image_id_images'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'profile_arn', name=op.f('pk_image_signings'))
    )
    op.create_table('signing_keys',
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('private_key', sa.Text(), nullable=False),
    sa.Column('certificate', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'region', 'name', name=op.f('pk_signing_keys')),
    info={'keep_on_reset': True}
    )


def downgrade() -> None:
    op.drop_table('signing_keys')
    op.drop_table('image_signings')
