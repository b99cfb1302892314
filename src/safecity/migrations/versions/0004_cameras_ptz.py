"""cameras: PTZ as the camera's ONVIF service said (ptz_found at ptz_checked_url), and the control leases

Revision ID: 0004_cameras_ptz
Revises: 0003_cameras
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from safecity.core.db import UtcDateTime

revision = "0004_cameras_ptz"
down_revision = "0003_cameras"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ptz_found", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("ptz_checked_url", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("ptz_checked_at", UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("ptz_detail", sa.String(length=500), server_default="", nullable=False))
    op.create_table(
        "camera_ptz_leases",
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("since", UtcDateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("camera_id", name=op.f("pk_camera_ptz_leases")),
    )


def downgrade() -> None:
    op.drop_table("camera_ptz_leases")
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_column("ptz_detail")
        batch_op.drop_column("ptz_checked_at")
        batch_op.drop_column("ptz_checked_url")
        batch_op.drop_column("ptz_found")
