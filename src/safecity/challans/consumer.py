"""Bus handler: an approved violation becomes one challan, its deliveries queued for the notices queue."""

from __future__ import annotations

import logging
from functools import partial

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from safecity.challans import notices_queue, service
from safecity.core.consumers import batch_handler, consume_batch
from safecity.core.context import Context
from safecity.core.db import after_commit
from safecity.core.events import Event
from safecity.enforcement.models import ViolationApproved

log = logging.getLogger(__name__)

CONSUMER = "challans-issue"


def handle_approved(ctx: Context, event: Event) -> None:
    """Handles one approval now, exactly once (tests and tools; the bus batches them)."""
    batch_handler(ctx, CONSUMER, partial(issue_batch, ctx))([event])


def catch_up(ctx: Context, *, batch: int = 1000, attempts: int = 5) -> int:
    """Issues challans for approved violations that no event announced (a crash, a bus outage).

    The process running the periodic jobs runs it at start-up and every few minutes; any process may
    run it at once: each takes the violations no other is issuing, and a conflict with another
    process is retried, then left to the next sweep, never raised.
    """
    issued = conflicts = 0
    while True:
        try:
            with ctx.db.session() as session:
                report = service.issue_pending(session, limit=batch)
        except IntegrityError as exc:
            conflicts += 1
            if conflicts >= attempts:
                log.warning(
                    "challan catch-up stopped after %d conflicts; the next sweep goes on: %s", conflicts, exc
                )
                return issued
            log.info("challan catch-up met another issuer; trying again: %s", exc)
            continue
        issued += report.issued
        if report.issued:
            ctx.count("challans", report.issued)
        if report.issued + report.held < batch:
            return issued


def issue_batch(ctx: Context, session: Session, events: list[Event]) -> None:
    """Issues the challans of a batch of approved violations and queues their notices.

    One number range and one insert for the batch. The notice PDF and its post, SMS and e-mail go
    out through the work queue in `challans/notices_queue.py`, never on this intake path.
    """
    ids = [e.violation_id for e in events if isinstance(e, ViolationApproved)]
    report = service.issue_for_violations(session, ids)
    if report.issued:
        issued = report.issued
        after_commit(session, lambda: ctx.count("challans", issued))


NOTICES_EVERY_S = 2.0
CATCH_UP_EVERY_S = 300.0


async def register(ctx: Context) -> None:
    """Subscribes the challan issuer; schedules the notices work queue and the catch-up sweep."""
    await consume_batch(ctx, CONSUMER, [ViolationApproved.type], partial(issue_batch, ctx))
    if ctx.settings.notices_in_serve:
        # The work queue runs in every process: rows are claimed with SKIP LOCKED, so no leader is needed.
        # At city scale it runs in `safecity challans notice-worker` processes instead, away from intake.
        _schedule_notices(ctx)
    # Approved violations no event announced (a crash before the outbox existed, a manual approval in SQL).
    ctx.jobs.every("challans.catch_up", CATCH_UP_EVERY_S, partial(catch_up, ctx), at_start=True)


def _schedule_notices(ctx: Context) -> None:
    ctx.jobs.every(
        "challans.render_notices",
        NOTICES_EVERY_S,
        partial(notices_queue.render_due_notices, ctx, 50),
        leased=False,
    )
    ctx.jobs.every(
        "challans.send_deliveries",
        NOTICES_EVERY_S,
        partial(notices_queue.send_due_deliveries, ctx, 50),
        leased=False,
    )
    ctx.on_close.append(partial(notices_queue.close, ctx))
