"""alerts: when an unacknowledged alert was escalated to the supervisors

Revision ID: 0002_alerts_escalation
Revises: 0001_alerts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import safecity.core.db

revision = "0002_alerts_escalation"
down_revision = "0001_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("escalated_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("escalated_at")
