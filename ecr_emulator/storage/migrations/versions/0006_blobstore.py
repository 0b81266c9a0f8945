"""uploads recorded in the database (size, staging segments, hash state, lease); shared emulator state

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Uploads in flight across the upgrade were staged as one file each, which the new staging
    # does not read: they are dropped (a client starts such an upload again) and their files
    # go with the next garbage collection.
    op.execute("DELETE FROM uploads")
    with op.batch_alter_table('uploads') as batch:
        batch.add_column(sa.Column('size', sa.BigInteger(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('segments', sa.JSON(), nullable=False, server_default='[]'))
        batch.add_column(sa.Column('hash_state', sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column('lease_token', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('lease_until', sa.Double(), nullable=True))
    with op.batch_alter_table('uploads') as batch:
        batch.alter_column('size', server_default=None)
        batch.alter_column('segments', server_default=None)
    op.create_table('emulator_state',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_emulator_state')),
    info={'keep_on_reset': True}
    )


def downgrade() -> None:
    op.drop_table('emulator_state')
    op.execute("DELETE FROM uploads")
    with op.batch_alter_table('uploads') as batch:
        batch.drop_column('lease_until')
        batch.drop_column('lease_token')
        batch.drop_column('hash_state')
        batch.drop_column('segments')
        batch.drop_column('size')
