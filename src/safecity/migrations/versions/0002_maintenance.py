"""one open ticket per fault, held by a partial unique index (duplicates already open are closed)

Revision ID: 0002_maintenance
Revises: 0001_maintenance
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import safecity.core.db

revision = "0002_maintenance"
down_revision = "0001_maintenance"
branch_labels = None
depends_on = None

OPEN = "status IN ('open', 'assigned')"
tickets = sa.table(
    "maintenance_tickets",
    sa.column("id", sa.String),
    sa.column("fault_id", sa.String),
    sa.column("status", sa.String),
    sa.column("opened_at", safecity.core.db.UtcDateTime(timezone=True)),
    sa.column("closed_by", sa.String),
    sa.column("closed_at", safecity.core.db.UtcDateTime(timezone=True)),
    sa.column("close_note", sa.String),
    sa.column("version", sa.Integer),
)
actions = sa.table(
    "maintenance_ticket_actions",
    sa.column("ticket_id", sa.String),
    sa.column("at", safecity.core.db.UtcDateTime(timezone=True)),
    sa.column("actor", sa.String),
    sa.column("action", sa.String),
    sa.column("note", sa.String),
    sa.column("detail", sa.JSON),
)


def upgrade() -> None:
    bind = op.get_bind()
    now = datetime.now(UTC)
    rows = bind.execute(
        sa.select(tickets.c.id, tickets.c.fault_id)
        .where(tickets.c.fault_id.is_not(None), tickets.c.status.in_(("open", "assigned")))
        .order_by(tickets.c.fault_id, tickets.c.opened_at, tickets.c.id)
    ).all()
    kept: dict[str, str] = {}
    for ticket_id, fault_id in rows:
        if fault_id not in kept:
            kept[fault_id] = ticket_id  # the oldest open ticket of the fault stays open
            continue
        note = f"closed as a duplicate of ticket {kept[fault_id]}: one open ticket per fault"
        bind.execute(
            sa.update(tickets)
            .where(tickets.c.id == ticket_id)
            .values(
                status="closed",
                closed_by="system",
                closed_at=now,
                close_note=note,
                version=tickets.c.version + 1,
            )
        )
        bind.execute(
            sa.insert(actions).values(
                ticket_id=ticket_id,
                at=now,
                actor="system",
                action="close",
                note=note,
                detail={"duplicate_of": kept[fault_id]},
            )
        )
    with op.batch_alter_table("maintenance_tickets", schema=None) as batch_op:
        batch_op.create_index(
            "uq_maintenance_tickets_open_fault",
            ["fault_id"],
            unique=True,
            sqlite_where=sa.text(OPEN),
            postgresql_where=sa.text(OPEN),
        )


def downgrade() -> None:
    with op.batch_alter_table("maintenance_tickets", schema=None) as batch_op:
        batch_op.drop_index("uq_maintenance_tickets_open_fault")
