"""body-worn redactions: what to hide in which item, the job's progress, the item it made

Revision ID: 0002_bodyworn
Revises: 0001_bodyworn
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import safecity.core.db


revision = "0002_bodyworn"
down_revision = "0001_bodyworn"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bodyworn_redactions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requested_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("frames_done", sa.Integer(), nullable=False),
        sa.Column("frames_total", sa.Integer(), nullable=False),
        sa.Column("updated_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("result_item_id", sa.String(length=32), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bodyworn_redactions")),
    )
    with op.batch_alter_table("bodyworn_redactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bodyworn_redactions_item_id"), ["item_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_bodyworn_redactions_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bodyworn_redactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bodyworn_redactions_status"))
        batch_op.drop_index(batch_op.f("ix_bodyworn_redactions_item_id"))
    op.drop_table("bodyworn_redactions")
