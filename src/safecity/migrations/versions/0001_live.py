"""live: wall layouts saved per operator and shared per control room (the live branch)

Revision ID: 0001_live
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import safecity.core.db

revision = "0001_live"
down_revision = "0001_foundation"
branch_labels = ("live",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wall_layouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("grid", sa.String(length=8), nullable=False),
        sa.Column("pages", sa.JSON(), nullable=False),
        sa.Column("tour_seconds", sa.Integer(), nullable=True),
        sa.Column("room", sa.String(length=100), nullable=True),
        sa.Column("updated_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wall_layouts")),
        sa.UniqueConstraint("owner", "name", name=op.f("uq_wall_layouts_owner")),
    )
    with op.batch_alter_table("wall_layouts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wall_layouts_owner"), ["owner"], unique=False)
        batch_op.create_index(batch_op.f("ix_wall_layouts_room"), ["room"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("wall_layouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wall_layouts_room"))
        batch_op.drop_index(batch_op.f("ix_wall_layouts_owner"))
    op.drop_table("wall_layouts")
