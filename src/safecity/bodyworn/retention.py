"""Body-worn retention: each item is kept for its categories' longest period, then deleted into a recovery
window, then its file is released to the media sweep; an open case or a hold stops both steps.

    report = apply(ctx)            # what the daily pass did: deleted, purged, kept
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from safecity.bodyworn import service as items
from safecity.bodyworn.models import BodyWornItem, RetentionOut
from safecity.core.clock import utcnow
from safecity.core.context import Context

ACTOR = "retention"
BATCH = 200


def apply(ctx: Context, *, now: datetime | None = None, actor: str = ACTOR) -> RetentionOut:
    """Deletes items past their retention (into the recovery window) and purges those past the window."""
    now = now or utcnow()
    report = RetentionOut()
    shortest = min([*ctx.settings.bodyworn_retention_days.values(), 365])
    with ctx.db.session() as session:
        started = func.coalesce(BodyWornItem.recorded_at, BodyWornItem.ingested_at)
        candidates = session.scalars(
            select(BodyWornItem.id).where(
                BodyWornItem.status == "active", started < now - timedelta(days=shortest)
            )
        ).all()
        due_purge = session.scalars(
            select(BodyWornItem.id).where(BodyWornItem.status == "deleted", BodyWornItem.purge_after <= now)
        ).all()
    for start in range(0, len(candidates), BATCH):
        with ctx.db.session() as session:
            for item_id in candidates[start : start + BATCH]:
                item = items.get(session, item_id)
                due = items.delete_due(ctx.settings, item)
                if due > now:
                    continue
                why = items.protected(session, item)
                if why is not None:
                    if "case" in why:
                        report.kept_in_case += 1
                    else:
                        report.kept_on_hold += 1
                    continue
                days = items.retention_days(ctx.settings, item.categories)
                categories = ", ".join(item.categories) or items.UNCATEGORISED
                items.delete(
                    session,
                    ctx.settings,
                    item.id,
                    reason=f"retention: {categories} is kept {days} days (due {due:%Y-%m-%d})",
                    actor=actor,
                )
                report.deleted.append(item.id)
    for start in range(0, len(due_purge), BATCH):
        with ctx.db.session() as session:
            for item_id in due_purge[start : start + BATCH]:
                item = items.get(session, item_id)
                if items.protected(session, item) is not None:
                    report.kept_on_hold += 1  # held while in its window: kept, still deleted
                    continue
                items.purge(session, item, actor=actor)
                report.purged.append(item.id)
    return report
