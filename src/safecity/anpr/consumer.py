"""Bus handlers of the ANPR domain: every `PlateRead` is stored and checked; reads and visits age out.

`register` subscribes the read handler (consumer group `anpr-reads`, batches of up to 250 reads in
one transaction) and schedules two jobs: the retention purge every hour and the sweep that closes
sensitive-area visits of vehicles no longer seen every minute.
"""

from __future__ import annotations

import logging
from functools import partial

from sqlalchemy.orm import Session

from safecity.alerts import service as alerts
from safecity.anpr import areas, service
from safecity.core.consumers import batch_handler, consume_batch
from safecity.core.context import Context
from safecity.core.db import after_commit
from safecity.core.events import Event, PlateRead

log = logging.getLogger(__name__)

CONSUMER = "anpr-reads"
PURGE_EVERY_S = 3600.0
SWEEP_EVERY_S = 60.0
BATCH = 250


def handle_plate_read(ctx: Context, event: Event) -> None:
    """Handles one plate read now, exactly once (tests and tools; the bus batches them)."""
    batch_handler(ctx, CONSUMER, partial(store_reads, ctx))([event])


def store_reads(ctx: Context, session: Session, events: list[Event]) -> None:
    """Stores a batch of plate reads and acts on them; announces the alerts they raise or fold into."""
    reads = [e for e in events if isinstance(e, PlateRead)]
    outcomes = service.process_reads(session, reads)
    for outcome in outcomes:
        for alert, _new in outcome.alerts:
            # An alert folded into an open one changed too (occurrences, last seen): the pages hear of it.
            alerts.announce(ctx, session, alert)
    stored = len(outcomes)
    hits = sum(1 for o in outcomes if o.hotlist_matches)

    def count() -> None:
        if stored:
            ctx.count("plate_reads", stored)
        if hits:
            ctx.count("hotlist_hits", hits)

    after_commit(session, count)


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
        for alert, _new in raised:
            alerts.announce(ctx, session, alert)
    return len(raised)


async def register(ctx: Context) -> None:
    """Subscribes the plate-read handler and schedules the retention purge and the area-exit sweep."""
    await consume_batch(ctx, CONSUMER, [PlateRead.type], partial(store_reads, ctx), max_batch=BATCH)
    ctx.jobs.every("anpr.purge_reads", PURGE_EVERY_S, partial(purge_once, ctx))
    ctx.jobs.every("anpr.close_area_visits", SWEEP_EVERY_S, partial(sweep_once, ctx))
