"""The health of the pipeline itself: consumer lag, dead letters, the outbox, and the jobs that keep it tidy.

`register(ctx)` schedules the pipeline's own jobs: forgetting handled event keys past their age
(leased) and exporting lag and outbox depth to `/metrics` (every process). `status(ctx)` is what
the dashboard, `/api/system/pipeline` and `safecity bus status` show.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from safecity.core import deadletters, outbox
from safecity.core.context import Context
from safecity.core.db import purge_handled
from safecity.core.metrics import BUS_EVENT_LATENCY, BUS_LAG

log = logging.getLogger(__name__)

PURGE_EVERY_S = 3600.0
EXPORT_EVERY_S = 5.0


def purge_handled_keys(ctx: Context) -> int:
    """Forgets handled event keys older than `handled_keys_days`; returns how many."""
    with ctx.db.session() as session:
        deleted = purge_handled(session, older_than=timedelta(days=ctx.settings.handled_keys_days))
    if deleted:
        log.info("forgot %d handled event keys older than %s days", deleted, ctx.settings.handled_keys_days)
    return deleted


async def export_gauges(ctx: Context) -> dict[str, int]:
    """Sets the lag and outbox gauges of /metrics; returns the lag per consumer."""
    lag = await ctx.bus.lag()
    for consumer, waiting in lag.items():
        BUS_LAG.labels(consumer).set(waiting)
    await asyncio.to_thread(ctx.outbox.export_pending)
    return lag


def register(ctx: Context) -> None:
    """Schedules the pipeline's own jobs."""
    ctx.jobs.every("pipeline.purge_handled_keys", PURGE_EVERY_S, lambda: purge_handled_keys(ctx))

    async def export() -> None:
        await export_gauges(ctx)

    ctx.jobs.every("pipeline.export_gauges", EXPORT_EVERY_S, export, leased=False, at_start=True)


def latency_quantiles(quantiles: tuple[float, ...] = (0.5, 0.95)) -> dict[str, dict[str, float | None]]:
    """Returns, per consumer, event-to-commit latency quantiles estimated from this process's histogram."""
    out: dict[str, dict[str, float | None]] = {}
    for metric in BUS_EVENT_LATENCY.collect():
        buckets: dict[str, list[tuple[float, float]]] = {}
        for sample in metric.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                buckets.setdefault(sample.labels["consumer"], []).append((bound, sample.value))
        for consumer, counts in buckets.items():
            counts.sort()
            total = counts[-1][1] if counts else 0
            figures: dict[str, float | None] = {}
            for q in quantiles:
                # The upper bound of the bucket holding the quantile: an honest "at most".
                upper = next((b for b, c in counts if total and c >= q * total), None)
                figures[f"p{round(q * 100)}_s"] = None if upper is None or upper == float("inf") else upper
            out[consumer] = figures
    return out


async def status(ctx: Context) -> dict[str, Any]:
    """Returns the pipeline's state: consumers (handled, dead, waiting), outbox, dead letters, jobs."""
    lag = await ctx.bus.lag()

    def stored() -> tuple[int, dict[str, int]]:
        with ctx.db.session() as session:
            return outbox.pending(session), deadletters.counts(session)

    pending, dead = await asyncio.to_thread(stored)
    latency = latency_quantiles()
    consumers = {
        name: {
            "handled": c.handled,
            "dead_letters": c.dead,
            "waiting": lag.get(name),
            **latency.get(name, {"p50_s": None, "p95_s": None}),
        }
        for name, c in sorted(ctx.bus.consumers.items())
    }
    return {
        "bus": ctx.settings.bus,
        "consumers": consumers,
        "outbox_pending": pending,
        "dead_letters": dead,
        "dead_letters_total": sum(dead.values()),
        "jobs": ctx.jobs.status(),
    }
