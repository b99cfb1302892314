"""dispatch: officers' shifts on units, and the keys of the updates their phones sent

Revision ID: 0002_dispatch_field
Revises: 0001_dispatch
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import safecity.core.db

revision = "0002_dispatch_field"
down_revision = "0001_dispatch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unit_shifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("started_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=100), nullable=True),
        sa.Column("open_unit", sa.String(length=64), nullable=True),
        sa.Column("open_officer", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_unit_shifts_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_shifts")),
        sa.UniqueConstraint("open_officer", name=op.f("uq_unit_shifts_open_officer")),
        sa.UniqueConstraint("open_unit", name=op.f("uq_unit_shifts_open_unit")),
    )
    with op.batch_alter_table("unit_shifts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unit_shifts_unit_id"), ["unit_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_unit_shifts_username"), ["username"], unique=False)

    op.create_table(
        "field_updates",
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("unit_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("received_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("username", "key", name=op.f("pk_field_updates")),
    )
    with op.batch_alter_table("field_updates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_field_updates_received_at"), ["received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_field_updates_unit_id"), ["unit_id"], unique=False)


def downgrade() -> None:
    op.drop_table("field_updates")
    op.drop_table("unit_shifts")
