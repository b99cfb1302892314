"""maintenance: camera health spans, faults, tickets and their actions (the maintenance branch)

Revision ID: 0001_maintenance
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import safecity.core.db


revision = "0001_maintenance"
down_revision = "0001_foundation"
branch_labels = ("maintenance",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "camera_faults",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("started_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("outage_since", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=100), nullable=True),
        sa.Column("resolution", sa.String(length=500), nullable=False),
        sa.Column("frame_ref", sa.String(length=200), nullable=True),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_camera_faults")),
        sa.UniqueConstraint("event_key", name=op.f("uq_camera_faults_event_key")),
    )
    with op.batch_alter_table("camera_faults", schema=None) as batch_op:
        batch_op.create_index("ix_camera_faults_camera_open", ["camera_id", "ended_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_camera_faults_started_at"), ["started_at"], unique=False)

    op.create_table(
        "camera_health_spans",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("since", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("until", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("frame_ref", sa.String(length=200), nullable=True),
        sa.Column("fps", sa.Float(), nullable=True),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_camera_health_spans")),
        sa.UniqueConstraint("event_key", name=op.f("uq_camera_health_spans_event_key")),
    )
    with op.batch_alter_table("camera_health_spans", schema=None) as batch_op:
        batch_op.create_index("ix_camera_health_spans_camera_since", ["camera_id", "since"], unique=False)
        batch_op.create_index(batch_op.f("ix_camera_health_spans_until"), ["until"], unique=False)

    op.create_table(
        "maintenance_tickets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("fault_id", sa.String(length=32), nullable=True),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("assignee", sa.String(length=100), nullable=True),
        sa.Column("opened_by", sa.String(length=100), nullable=False),
        sa.Column("opened_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.String(length=100), nullable=True),
        sa.Column("closed_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("close_note", sa.String(length=2000), nullable=False),
        sa.Column("auto_key", sa.String(length=100), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["fault_id"],
            ["camera_faults.id"],
            name=op.f("fk_maintenance_tickets_fault_id_camera_faults"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_tickets")),
        sa.UniqueConstraint("auto_key", name=op.f("uq_maintenance_tickets_auto_key")),
    )
    with op.batch_alter_table("maintenance_tickets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_maintenance_tickets_assignee"), ["assignee"], unique=False)
        batch_op.create_index(batch_op.f("ix_maintenance_tickets_camera_id"), ["camera_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_maintenance_tickets_opened_at"), ["opened_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_maintenance_tickets_status"), ["status"], unique=False)

    op.create_table(
        "maintenance_ticket_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.String(length=32), nullable=False),
        sa.Column("at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["maintenance_tickets.id"],
            name=op.f("fk_maintenance_ticket_actions_ticket_id_maintenance_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_ticket_actions")),
    )
    with op.batch_alter_table("maintenance_ticket_actions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_maintenance_ticket_actions_ticket_id"), ["ticket_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("maintenance_ticket_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_maintenance_ticket_actions_ticket_id"))

    op.drop_table("maintenance_ticket_actions")
    with op.batch_alter_table("maintenance_tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_maintenance_tickets_status"))
        batch_op.drop_index(batch_op.f("ix_maintenance_tickets_opened_at"))
        batch_op.drop_index(batch_op.f("ix_maintenance_tickets_camera_id"))
        batch_op.drop_index(batch_op.f("ix_maintenance_tickets_assignee"))

    op.drop_table("maintenance_tickets")
    with op.batch_alter_table("camera_health_spans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_camera_health_spans_until"))
        batch_op.drop_index("ix_camera_health_spans_camera_since")

    op.drop_table("camera_health_spans")
    with op.batch_alter_table("camera_faults", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_camera_faults_started_at"))
        batch_op.drop_index("ix_camera_faults_camera_open")

    op.drop_table("camera_faults")
