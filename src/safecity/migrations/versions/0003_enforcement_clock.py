"""camera clock checks: the measurement's uncertainty and how it was made (ONVIF probes)

Revision ID: 0003_enforcement_clock
Revises: 0002_enforcement
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_enforcement_clock"
down_revision = "0002_enforcement"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("camera_clock_checks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uncertainty_s", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("detail", sa.String(length=500), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("camera_clock_checks", schema=None) as batch_op:
        batch_op.drop_column("detail")
        batch_op.drop_column("uncertainty_s")
