"""watch-list photos carry the encoder (name and version) of their embeddings

Revision ID: 0003_faces_encoder
Revises: 0002_faces

Every embedding stored before this revision was made by dlib's ResNet with mirror averaging (the only
encoder there was), so existing rows get that encoder's name and version.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_faces_encoder"
down_revision = "0002_faces"
branch_labels = None
depends_on = None

DLIB_NAME, DLIB_VERSION = "dlib-resnet-v1", "1+flip"


def upgrade() -> None:
    with op.batch_alter_table("watchlist_photos", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("encoder", sa.String(length=64), nullable=False, server_default=DLIB_NAME)
        )
        batch_op.add_column(
            sa.Column("encoder_version", sa.String(length=32), nullable=False, server_default=DLIB_VERSION)
        )
        batch_op.create_index(batch_op.f("ix_watchlist_photos_encoder"), ["encoder"], unique=False)
    # The defaults only filled the rows there were; new rows always name their encoder.
    with op.batch_alter_table("watchlist_photos", schema=None) as batch_op:
        batch_op.alter_column("encoder", server_default=None)
        batch_op.alter_column("encoder_version", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("watchlist_photos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_watchlist_photos_encoder"))
        batch_op.drop_column("encoder_version")
        batch_op.drop_column("encoder")
