"""The evidence domain's periodic work: the media sweep (expired claims, unclaimed objects), hourly."""

from __future__ import annotations

import logging
from functools import partial

from safecity.core.context import Context
from safecity.core.errors import Conflict
from safecity.evidence import retention

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 3600.0


def sweep_media(ctx: Context) -> None:
    """Runs the media sweep, unless one started by hand is running (the next turn sweeps)."""
    try:
        report = retention.sweep(ctx.db, ctx.media, ctx.settings)
    except Conflict as exc:
        log.info("media sweep skipped: %s", exc.message)
        return
    if report.removed or report.claims_expired:
        log.info(
            "media sweep removed %d objects (%d bytes); expired claims %s",
            report.removed,
            report.removed_bytes,
            report.claims_expired,
        )


async def register(ctx: Context) -> None:
    """Schedules the media sweep (leased: one process of the city runs it)."""
    ctx.jobs.every("evidence.media_sweep", SWEEP_EVERY_S, partial(sweep_media, ctx))
