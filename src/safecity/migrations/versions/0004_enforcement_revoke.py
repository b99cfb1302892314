"""calibrations can be revoked from a moment on (a faulty device, a withdrawn certificate)

Revision ID: 0004_enforcement_revoke
Revises: 0003_enforcement_clock
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import safecity.core.db

revision = "0004_enforcement_revoke"
down_revision = "0003_enforcement_clock"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("camera_calibrations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("revoked_from", safecity.core.db.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("revoked_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("revoked_by", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column("revoked_reason", sa.String(length=500), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("camera_calibrations", schema=None) as batch_op:
        batch_op.drop_column("revoked_reason")
        batch_op.drop_column("revoked_by")
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("revoked_from")
