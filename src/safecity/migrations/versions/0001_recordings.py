"""recordings: segments, holds, policies, volumes, clips, recorder states (the recordings branch)

Revision ID: 0001_recordings
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import safecity.core.db


revision = "0001_recordings"
down_revision = "0001_foundation"
branch_labels = ("recordings",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recorder_status",
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("since", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("camera_id", name=op.f("pk_recorder_status")),
    )
    op.create_table(
        "recording_clips",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("start", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("end", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("due_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("media_ref", sa.String(length=120), nullable=True),
        sa.Column("covered_seconds", sa.Float(), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("created_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("done_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_clips")),
        sa.UniqueConstraint("ref", "camera_id", name="uq_recording_clips_ref_camera"),
    )
    with op.batch_alter_table("recording_clips", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recording_clips_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_recording_clips_ref"), ["ref"], unique=False)
        batch_op.create_index(batch_op.f("ix_recording_clips_status"), ["status"], unique=False)

    op.create_table(
        "recording_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("start", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("end", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("created_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("released_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_holds")),
        sa.UniqueConstraint("kind", "ref", "camera_id", name="uq_recording_holds_kind_ref_camera"),
    )
    with op.batch_alter_table("recording_holds", schema=None) as batch_op:
        batch_op.create_index("ix_recording_holds_camera_start", ["camera_id", "start"], unique=False)
        batch_op.create_index(batch_op.f("ix_recording_holds_ref"), ["ref"], unique=False)

    op.create_table(
        "recording_policies",
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("continuous_days", sa.Integer(), nullable=False),
        sa.Column("event_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_recording_policies")),
    )
    op.create_table(
        "recording_segments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("volume", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("start", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("end", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("codec", sa.String(length=32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("packets", sa.Integer(), nullable=False),
        sa.Column("created_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_segments")),
        sa.UniqueConstraint("path", name=op.f("uq_recording_segments_path")),
    )
    with op.batch_alter_table("recording_segments", schema=None) as batch_op:
        batch_op.create_index("ix_recording_segments_camera_start", ["camera_id", "start"], unique=False)
        batch_op.create_index(batch_op.f("ix_recording_segments_start"), ["start"], unique=False)
        batch_op.create_index(batch_op.f("ix_recording_segments_volume"), ["volume"], unique=False)

    op.create_table(
        "recording_volumes",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("budget_bytes", sa.BigInteger(), nullable=True),
        sa.Column("reserve_bytes", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_recording_volumes")),
    )


def downgrade() -> None:
    op.drop_table("recording_volumes")
    with op.batch_alter_table("recording_segments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recording_segments_volume"))
        batch_op.drop_index(batch_op.f("ix_recording_segments_start"))
        batch_op.drop_index("ix_recording_segments_camera_start")

    op.drop_table("recording_segments")
    op.drop_table("recording_policies")
    with op.batch_alter_table("recording_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recording_holds_ref"))
        batch_op.drop_index("ix_recording_holds_camera_start")

    op.drop_table("recording_holds")
    with op.batch_alter_table("recording_clips", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recording_clips_status"))
        batch_op.drop_index(batch_op.f("ix_recording_clips_ref"))
        batch_op.drop_index(batch_op.f("ix_recording_clips_due_at"))

    op.drop_table("recording_clips")
    op.drop_table("recorder_status")
