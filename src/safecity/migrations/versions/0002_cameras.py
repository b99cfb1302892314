"""typed, versioned camera configuration: config_version, camera_config_versions, stored configs upgraded

Each camera's stored settings, zones and lines are read through the typed models: keys no model
declares (`calibration`, now recorded and audited through the enforcement API) and entries that do not
validate are dropped, and what was dropped is written into the note of the camera's version 1 (and
logged), so nothing goes without a trace.

Revision ID: 0002_cameras
Revises: 0001_cameras
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from safecity.core.camera_config import upgrade_stored
from safecity.core.db import UtcDateTime

revision = "0002_cameras"
down_revision = "0001_cameras"
branch_labels = None
depends_on = None

cameras = sa.table(
    "cameras",
    sa.column("id", sa.String),
    sa.column("analysis", sa.JSON),
    sa.column("zones", sa.JSON),
    sa.column("lines", sa.JSON),
    sa.column("config_version", sa.Integer),
)
_BATCH = 500


def upgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.add_column(sa.Column("config_version", sa.Integer(), server_default="1", nullable=False))
    versions = op.create_table(
        "camera_config_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_camera_config_versions")),
        sa.UniqueConstraint("camera_id", "version", name=op.f("uq_camera_config_versions_camera_id")),
    )
    with op.batch_alter_table("camera_config_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_camera_config_versions_camera_id"), ["camera_id"], unique=False)

    bind = op.get_bind()
    now = datetime.now(UTC)
    rows = bind.execute(sa.select(cameras.c.id, cameras.c.analysis, cameras.c.zones, cameras.c.lines)).all()
    for start in range(0, len(rows), _BATCH):
        updates, firsts = [], []
        for camera_id, analysis, zones, lines in rows[start : start + _BATCH]:
            config, notes = upgrade_stored(camera_id, {"analysis": analysis, "zones": zones, "lines": lines})
            stored = config.stored()
            updates.append({"camera_id": camera_id, **stored})
            note = "migrated to the typed configuration" + ("; " + "; ".join(notes) if notes else "")
            firsts.append(
                {
                    "camera_id": camera_id,
                    "version": 1,
                    "config": stored,
                    "changes": [],
                    "note": note[:2000],
                    "created_by": "migration",
                    "created_at": now,
                }
            )
        bind.execute(
            cameras.update()
            .where(cameras.c.id == sa.bindparam("camera_id"))
            .values(
                analysis=sa.bindparam("analysis"), zones=sa.bindparam("zones"), lines=sa.bindparam("lines")
            ),
            updates,
        )
        bind.execute(versions.insert(), firsts)


def downgrade() -> None:
    with op.batch_alter_table("camera_config_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_camera_config_versions_camera_id"))
    op.drop_table("camera_config_versions")
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_column("config_version")
