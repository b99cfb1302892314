"""cameras: substream_url, a camera's second, smaller stream for the video wall

Revision ID: 0003_cameras
Revises: 0002_cameras
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_cameras"
down_revision = "0002_cameras"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("substream_url", sa.String(length=1000), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_column("substream_url")
