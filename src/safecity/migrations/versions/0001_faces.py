"""Faces: watch-list entries and their photos, face matches, notices to case officers.

Revision ID: 0001_faces
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import safecity.core.db

revision = "0001_faces"
down_revision = "0001_foundation"
branch_labels = ("faces",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watchlist_entries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("legal_basis", sa.String(length=200), nullable=False),
        sa.Column("notes", sa.String(length=1000), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requested_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=100), nullable=True),
        sa.Column("approved_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("case_officer", sa.String(length=100), nullable=False),
        sa.Column("expires_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("event_cameras", sa.JSON(), nullable=False),
        sa.Column("event_start", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("event_end", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=100), nullable=True),
        sa.Column("closed_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("closed_reason", sa.String(length=500), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watchlist_entries")),
    )
    with op.batch_alter_table("watchlist_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_watchlist_entries_category"), ["category"], unique=False)
        batch_op.create_index(batch_op.f("ix_watchlist_entries_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_watchlist_entries_status"), ["status"], unique=False)

    op.create_table(
        "face_matches",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("entry_id", sa.String(length=32), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=True),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.Column("crop_ref", sa.String(length=100), nullable=True),
        sa.Column("frame_ref", sa.String(length=100), nullable=True),
        sa.Column("track_id", sa.Integer(), nullable=True),
        sa.Column("seen_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("alert_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.String(length=500), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("outcome_by", sa.String(length=100), nullable=True),
        sa.Column("outcome_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("outcome_note", sa.String(length=1000), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["watchlist_entries.id"], name=op.f("fk_face_matches_entry_id_watchlist_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_matches")),
        sa.UniqueConstraint("event_key", name=op.f("uq_face_matches_event_key")),
    )
    with op.batch_alter_table("face_matches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_face_matches_alert_id"), ["alert_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_face_matches_camera_id"), ["camera_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_face_matches_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_face_matches_seen_at"), ["seen_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_face_matches_status"), ["status"], unique=False)

    op.create_table(
        "watchlist_photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.String(length=32), nullable=False),
        sa.Column("media_ref", sa.String(length=100), nullable=False),
        sa.Column("embeddings", sa.JSON(), nullable=False),
        sa.Column("added_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["watchlist_entries.id"],
            name=op.f("fk_watchlist_photos_entry_id_watchlist_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watchlist_photos")),
    )
    with op.batch_alter_table("watchlist_photos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_watchlist_photos_entry_id"), ["entry_id"], unique=False)

    op.create_table(
        "face_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("match_id", sa.String(length=32), nullable=False),
        sa.Column("entry_id", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.String(length=100), nullable=False),
        sa.Column("message", sa.String(length=1000), nullable=False),
        sa.Column("created_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=100), nullable=True),
        sa.Column("acknowledged_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["match_id"],
            ["face_matches.id"],
            name=op.f("fk_face_notifications_match_id_face_matches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_notifications")),
    )
    with op.batch_alter_table("face_notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_face_notifications_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_face_notifications_match_id"), ["match_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_face_notifications_recipient"), ["recipient"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("face_notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_face_notifications_recipient"))
        batch_op.drop_index(batch_op.f("ix_face_notifications_match_id"))
        batch_op.drop_index(batch_op.f("ix_face_notifications_entry_id"))

    op.drop_table("face_notifications")
    with op.batch_alter_table("watchlist_photos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_watchlist_photos_entry_id"))

    op.drop_table("watchlist_photos")
    with op.batch_alter_table("face_matches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_face_matches_status"))
        batch_op.drop_index(batch_op.f("ix_face_matches_seen_at"))
        batch_op.drop_index(batch_op.f("ix_face_matches_entry_id"))
        batch_op.drop_index(batch_op.f("ix_face_matches_camera_id"))
        batch_op.drop_index(batch_op.f("ix_face_matches_alert_id"))

    op.drop_table("face_matches")
    with op.batch_alter_table("watchlist_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_watchlist_entries_status"))
        batch_op.drop_index(batch_op.f("ix_watchlist_entries_expires_at"))
        batch_op.drop_index(batch_op.f("ix_watchlist_entries_category"))

    op.drop_table("watchlist_entries")
