"""the portal address moves from the fine schedule to the public_base_url setting

Revision ID: 0005_challans
Revises: 0004_challans
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0005_challans"
down_revision = "0004_challans"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
OLD_DEFAULT = "http://localhost:8000/portal"
rules = sa.table("challan_rules", sa.column("id", sa.Integer), sa.column("data", sa.JSON))


def upgrade() -> None:
    bind = op.get_bind()
    for row_id, data in bind.execute(sa.select(rules.c.id, rules.c.data)).all():
        delivery = (data or {}).get("delivery")
        if not isinstance(delivery, dict) or "portal_url" not in delivery:
            continue
        old = delivery.pop("portal_url")
        if old and old != OLD_DEFAULT:
            # The schedule no longer holds it: say where it must go, since notices now print the setting.
            log.warning(
                "delivery.portal_url %r was removed from the fine schedule: set SAFECITY_PUBLIC_BASE_URL "
                "to its address (without /portal), or notices print the server's own address",
                old,
            )
        bind.execute(sa.update(rules).where(rules.c.id == row_id).values(data=data))


def downgrade() -> None:
    """Nothing to undo: a schedule without portal_url took the old default."""
