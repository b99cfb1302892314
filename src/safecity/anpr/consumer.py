"""Bus handlers of the ANPR domain: every `PlateRead` is stored and checked; reads and visits age out.

`register` subscribes the read handler (consumer group `anpr-reads`) and starts two periodic tasks:
the retention purge every hour and the sweep that closes sensitive-area visits of vehicles no longer
seen every minute.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from safecity.alerts import service as alerts
from safecity.alerts.models import Alert
from safecity.anpr import areas, service
from safecity.core.context import Context
from safecity.core.db import claim_event
from safecity.core.events import Event, PlateRead

log = logging.getLogger(__name__)

CONSUMER = "anpr-reads"
PURGE_EVERY_S = 3600.0
SWEEP_EVERY_S = 60.0

# Keeps the periodic tasks referenced so they are not garbage-collected while they sleep.
_tasks: set[asyncio.Task[None]] = set()


def handle_plate_read(ctx: Context, event: Event) -> None:
    """Stores one plate read and acts on it, exactly once per event key; announces alerts after commit."""
    if not isinstance(event, PlateRead):
        return
    with ctx.db.session() as session:
        if not claim_event(session, CONSUMER, event.key):
            return
        outcome = service.process_read(session, event)
        raised = list(outcome.alerts)
    if outcome.read is None:
        return
    ctx.count("plate_reads")
    if outcome.hotlist_matches:
        ctx.count("hotlist_hits")
    _announce(ctx, [alert for alert, _new in raised])


def _announce(ctx: Context, raised: list[Alert]) -> None:
    # An alert folded into an open one changed too (occurrences, last seen), so the live pages hear of it.
    for alert in raised:
        alerts.announce(ctx, alert)


def purge_once(ctx: Context) -> int:
    """Deletes reads past the retention period; returns how many."""
    with ctx.db.session() as session:
        deleted = service.purge_reads(session, older_than_days=ctx.settings.plate_read_retention_days)
    if deleted:
        ctx.count("plate_reads_purged", deleted)
        log.info("purged %d plate reads older than %d days", deleted, ctx.settings.plate_read_retention_days)
    return deleted


def sweep_once(ctx: Context) -> int:
    """Closes area visits of vehicles gone quiet; returns how many alerts that raised."""
    with ctx.db.session() as session:
        raised = areas.close_stale_visits(session)
    _announce(ctx, [alert for alert, _new in raised])
    return len(raised)


async def _every(seconds: float, job: Callable[[Context], int], ctx: Context) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await asyncio.to_thread(job, ctx)
        except Exception:  # a failed run must not stop the schedule; the next one retries
            log.exception("ANPR periodic task %s failed", job.__name__)


async def register(ctx: Context) -> None:
    """Subscribes the plate-read handler and starts the retention and area-exit schedules."""

    def handler(event: Event) -> None:
        handle_plate_read(ctx, event)

    await ctx.bus.subscribe([PlateRead.type], handler, durable=CONSUMER)
    for seconds, job in ((PURGE_EVERY_S, purge_once), (SWEEP_EVERY_S, sweep_once)):
        task = asyncio.create_task(_every(seconds, job, ctx), name=f"anpr:{job.__name__}")
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
