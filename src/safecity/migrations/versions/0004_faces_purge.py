"""watch-list entries record when the biometric data of a closed entry was deleted

Revision ID: 0004_faces_purge
Revises: 0003_faces_encoder

Entries closed before this revision keep their photos until the first purge after upgrade takes
those closed longer than `watchlist_closed_retention_days`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import safecity.core.db

revision = "0004_faces_purge"
down_revision = "0003_faces_encoder"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("watchlist_entries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("purged_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("watchlist_entries", schema=None) as batch_op:
        batch_op.drop_column("purged_at")
