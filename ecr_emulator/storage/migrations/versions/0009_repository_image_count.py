"""repositories.image_count, kept by triggers on images, so a push checks the image limit
without counting the repository's images

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

from ecr_emulator.storage.models.registry import IMAGE_COUNT, IMAGE_COUNT_DROP

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('repositories', sa.Column('image_count', sa.Integer(), server_default='0', nullable=False))
    op.execute("UPDATE repositories SET image_count = "
               "(SELECT count(*) FROM images WHERE images.repository_id = repositories.id)")
    for statement in IMAGE_COUNT[op.get_bind().dialect.name]:
        op.execute(statement)


def downgrade() -> None:
    for statement in IMAGE_COUNT_DROP[op.get_bind().dialect.name]:
        op.execute(statement)
    op.execute("ALTER TABLE repositories DROP COLUMN image_count")
