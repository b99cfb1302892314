"""challans: registry, challans, payments, appeals, outbox, flags, portal

Revision ID: 0001_challans
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import safecity.core.db


revision = "0001_challans"
down_revision = "0001_foundation"
branch_labels = ("challans",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "challan_appeals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("challan_id", sa.String(length=32), nullable=False),
        sa.Column("filed_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("grounds", sa.String(length=2000), nullable=False),
        sa.Column("contact", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("committee", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challan_appeals")),
        sa.UniqueConstraint("challan_id", name=op.f("uq_challan_appeals_challan_id")),
    )
    op.create_table(
        "challan_counters",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_challan_counters")),
    )
    op.create_table(
        "challan_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("challan_id", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("receipt", sa.String(length=200), nullable=False),
        sa.Column("created_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challan_deliveries")),
        sa.UniqueConstraint("challan_id", "channel", name="uq_challan_deliveries_channel"),
    )
    with op.batch_alter_table("challan_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_challan_deliveries_status", ["status", "id"], unique=False)

    op.create_table(
        "challan_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cnic", sa.String(length=13), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("cause", sa.String(length=100), nullable=False),
        sa.Column("challan_id", sa.String(length=32), nullable=True),
        sa.Column("raised_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challan_flags")),
        sa.UniqueConstraint("cnic", "kind", "cause", name="uq_challan_flags_cause"),
    )
    with op.batch_alter_table("challan_flags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_challan_flags_challan_id"), ["challan_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_challan_flags_cnic"), ["cnic"], unique=False)

    op.create_table(
        "challan_payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("challan_id", sa.String(length=32), nullable=False),
        sa.Column("bank_ref", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("paid_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("recorded_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challan_payments")),
        sa.UniqueConstraint("bank_ref", name=op.f("uq_challan_payments_bank_ref")),
    )
    with op.batch_alter_table("challan_payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_challan_payments_challan_id"), ["challan_id"], unique=False)

    op.create_table(
        "challan_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challan_rules")),
    )
    op.create_table(
        "challans",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("violation_id", sa.String(length=32), nullable=False),
        sa.Column("plate", sa.String(length=20), nullable=False),
        sa.Column("cnic", sa.String(length=13), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("offence", sa.String(length=32), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=True),
        sa.Column("offence_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("issued_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("fine", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("paused_s", sa.Float(), nullable=False),
        sa.Column("clock_paused_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("paid_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("paid_amount", sa.Integer(), nullable=True),
        sa.Column("verification_code", sa.String(length=16), nullable=False),
        sa.Column("notice_ref", sa.String(length=120), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("licence_flagged_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("cnic_flagged_at", safecity.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challans")),
        sa.UniqueConstraint("number", name=op.f("uq_challans_number")),
        sa.UniqueConstraint("verification_code", name=op.f("uq_challans_verification_code")),
        sa.UniqueConstraint("violation_id", name=op.f("uq_challans_violation_id")),
    )
    with op.batch_alter_table("challans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_challans_cnic"), ["cnic"], unique=False)
        batch_op.create_index("ix_challans_plate_cnic", ["plate", "cnic"], unique=False)
        batch_op.create_index("ix_challans_status_issued", ["status", "issued_at"], unique=False)

    op.create_table(
        "portal_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("plate", sa.String(length=20), nullable=False),
        sa.Column("at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_attempts")),
    )
    with op.batch_alter_table("portal_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_portal_attempts_client_at", ["client", "at"], unique=False)
        batch_op.create_index("ix_portal_attempts_plate_at", ["plate", "at"], unique=False)

    op.create_table(
        "portal_grants",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("plate", sa.String(length=20), nullable=False),
        sa.Column("cnic", sa.String(length=13), nullable=False),
        sa.Column("expires_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_portal_grants")),
    )
    with op.batch_alter_table("portal_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_portal_grants_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "vehicles",
        sa.Column("plate", sa.String(length=20), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("cnic", sa.String(length=13), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("make", sa.String(length=100), nullable=False),
        sa.Column("colour", sa.String(length=50), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("updated_at", safecity.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("plate", name=op.f("pk_vehicles")),
    )
    with op.batch_alter_table("vehicles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vehicles_cnic"), ["cnic"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("vehicles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vehicles_cnic"))

    op.drop_table("vehicles")
    with op.batch_alter_table("portal_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_portal_grants_expires_at"))

    op.drop_table("portal_grants")
    with op.batch_alter_table("portal_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_portal_attempts_plate_at")
        batch_op.drop_index("ix_portal_attempts_client_at")

    op.drop_table("portal_attempts")
    with op.batch_alter_table("challans", schema=None) as batch_op:
        batch_op.drop_index("ix_challans_status_issued")
        batch_op.drop_index("ix_challans_plate_cnic")
        batch_op.drop_index(batch_op.f("ix_challans_cnic"))

    op.drop_table("challans")
    op.drop_table("challan_rules")
    with op.batch_alter_table("challan_payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_challan_payments_challan_id"))

    op.drop_table("challan_payments")
    with op.batch_alter_table("challan_flags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_challan_flags_cnic"))
        batch_op.drop_index(batch_op.f("ix_challan_flags_challan_id"))

    op.drop_table("challan_flags")
    with op.batch_alter_table("challan_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_challan_deliveries_status")

    op.drop_table("challan_deliveries")
    op.drop_table("challan_counters")
    op.drop_table("challan_appeals")
