"""alerts: a reason code on each alert action (dismissal reasons feed the false-alarm figures)

Revision ID: 0001_alerts
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_alerts"
down_revision = "0001_foundation"
branch_labels = ("alerts",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert_actions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason_code", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_alert_actions_reason_code"), ["reason_code"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alert_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_actions_reason_code"))
        batch_op.drop_column("reason_code")
