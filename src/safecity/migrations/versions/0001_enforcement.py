"""enforcement: violations, speed sections, signal phases, calibrations, policy

Revision ID: 0001_enforcement
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import safecity.core.db


revision = "0001_enforcement"
down_revision = "0001_foundation"
branch_labels = ("enforcement",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "camera_calibrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("image_points", sa.JSON(), nullable=False),
        sa.Column("ground_points", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_camera_calibrations")),
    )
    with op.batch_alter_table("camera_calibrations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_camera_calibrations_camera_id"), ["camera_id"], unique=False)

    op.create_table(
        "enforcement_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enforcement_policy")),
    )
    op.create_table(
        "section_sightings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("section_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("plate", sa.String(length=20), nullable=False),
        sa.Column("at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("crop_ref", sa.String(length=120), nullable=True),
        sa.Column("frame_ref", sa.String(length=120), nullable=True),
        sa.Column("vehicle_class", sa.String(length=16), nullable=True),
        sa.Column("paired", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_section_sightings")),
        sa.UniqueConstraint("section_id", "role", "event_key", name="uq_section_sightings_event"),
    )
    with op.batch_alter_table("section_sightings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_section_sightings_lookup", ["section_id", "plate", "role", "at"], unique=False
        )

    op.create_table(
        "signal_phase_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("junction", sa.String(length=64), nullable=False),
        sa.Column("phase", sa.String(length=8), nullable=False),
        sa.Column("at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("recorded_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal_phase_changes")),
    )
    with op.batch_alter_table("signal_phase_changes", schema=None) as batch_op:
        batch_op.create_index("ix_signal_phase_changes_junction_at", ["junction", "at"], unique=False)

    op.create_table(
        "speed_sections",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("entry_camera_id", sa.String(length=64), nullable=False),
        sa.Column("exit_camera_id", sa.String(length=64), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_speed_sections")),
    )
    with op.batch_alter_table("speed_sections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_speed_sections_entry_camera_id"), ["entry_camera_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_speed_sections_exit_camera_id"), ["exit_camera_id"], unique=False
        )

    op.create_table(
        "violations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("offence", sa.String(length=32), nullable=False),
        sa.Column("plate", sa.String(length=20), nullable=True),
        sa.Column("camera_id", sa.String(length=64), nullable=True),
        sa.Column("at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("measured", sa.Float(), nullable=True),
        sa.Column("limit", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("vehicle_class", sa.String(length=16), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("source_key", sa.String(length=200), nullable=False),
        sa.Column("dedup_key", sa.String(length=200), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("auto_approved", sa.Boolean(), nullable=False),
        sa.Column("reviewed_by", sa.String(length=100), nullable=True),
        sa.Column("reviewed_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("review_reason", sa.String(length=500), nullable=False),
        sa.Column("hold_reason", sa.String(length=500), nullable=False),
        sa.Column("challan_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_violations")),
        sa.UniqueConstraint("source_key", name=op.f("uq_violations_source_key")),
    )
    with op.batch_alter_table("violations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_violations_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_violations_camera_id"), ["camera_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_violations_challan_id"), ["challan_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_violations_dedup_key"), ["dedup_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_violations_offence"), ["offence"], unique=False)
        batch_op.create_index(batch_op.f("ix_violations_plate"), ["plate"], unique=False)
        batch_op.create_index("ix_violations_status_created", ["status", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("violations", schema=None) as batch_op:
        batch_op.drop_index("ix_violations_status_created")
        batch_op.drop_index(batch_op.f("ix_violations_plate"))
        batch_op.drop_index(batch_op.f("ix_violations_offence"))
        batch_op.drop_index(batch_op.f("ix_violations_dedup_key"))
        batch_op.drop_index(batch_op.f("ix_violations_challan_id"))
        batch_op.drop_index(batch_op.f("ix_violations_camera_id"))
        batch_op.drop_index(batch_op.f("ix_violations_at"))

    op.drop_table("violations")
    with op.batch_alter_table("speed_sections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_speed_sections_exit_camera_id"))
        batch_op.drop_index(batch_op.f("ix_speed_sections_entry_camera_id"))

    op.drop_table("speed_sections")
    with op.batch_alter_table("signal_phase_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_signal_phase_changes_junction_at")

    op.drop_table("signal_phase_changes")
    with op.batch_alter_table("section_sightings", schema=None) as batch_op:
        batch_op.drop_index("ix_section_sightings_lookup")

    op.drop_table("section_sightings")
    op.drop_table("enforcement_policy")
    with op.batch_alter_table("camera_calibrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_camera_calibrations_camera_id"))

    op.drop_table("camera_calibrations")
