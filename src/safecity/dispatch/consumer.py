"""Periodic work of the dispatch domain: the officer's phone's update keys are pruned once a day."""

from __future__ import annotations

import logging
from datetime import timedelta

from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.dispatch.field import service as field

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 24 * 3600.0


def prune_field_keys(ctx: Context) -> int:
    """Deletes the keys of phone updates older than `field_update_keys_days`; returns how many."""
    older_than = utcnow() - timedelta(days=ctx.settings.field_update_keys_days)
    with ctx.db.session() as session:
        pruned = field.prune_update_keys(session, older_than=older_than)
    if pruned:
        log.info("pruned %d field update keys received before %s", pruned, older_than.isoformat())
    return pruned


async def register(ctx: Context) -> None:
    """Schedules the daily pruning of the phones' update keys."""
    ctx.jobs.every("dispatch.prune_field_keys", PRUNE_EVERY_S, lambda: prune_field_keys(ctx), at_start=True)
