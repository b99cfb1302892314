"""Bus handler: an approved violation becomes one challan, its deliveries queued for the notices queue."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import IntegrityError

from safecity.challans import service
from safecity.core.context import Context
from safecity.core.db import claim_event
from safecity.core.events import Event
from safecity.enforcement.models import ViolationApproved

log = logging.getLogger(__name__)

CONSUMER = "challans-issue"


def handle_approved(ctx: Context, event: Event) -> None:
    """Issues the challan of an approved violation and queues its notices (a redelivery changes nothing).

    The notice PDF and its post, SMS and e-mail go out through the work queue in
    `challans/notices_queue.py`, never on this intake path.
    """
    assert isinstance(event, ViolationApproved)
    with ctx.db.session() as session:
        if not claim_event(session, CONSUMER, event.key):
            return
        report = service.issue_for_violations(session, [event.violation_id])
    if report.issued:
        ctx.count("challans", report.issued)


def catch_up(ctx: Context, *, batch: int = 1000, attempts: int = 5) -> int:
    """Issues challans for approved violations that no event announced (a crash, a bus outage).

    Every `serve` runs it at start-up, all at once: each takes the violations no other is issuing,
    and a conflict with another process is retried, then left to the next sweep, never raised.
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


async def register(ctx: Context) -> None:
    """Subscribes the challan issuer and issues anything left approved while the centre was down."""
    await ctx.bus.subscribe(["violation_approved"], lambda e: handle_approved(ctx, e), durable=CONSUMER)
    # TODO(lead, core/jobs.py): schedule the notices work queue in every process (unleased), e.g.
    #   ctx.jobs.every("challans.render_notices", 2, lambda: notices_queue.render_due_notices(ctx, 50))
    #   ctx.jobs.every("challans.send_deliveries", 2, lambda: notices_queue.send_due_deliveries(ctx, 50))
    # and call notices_queue.close(ctx) at shutdown; until then nothing renders or sends notices.
    issued = await asyncio.to_thread(catch_up, ctx)
    if issued:
        log.info("issued %d challans for violations approved while the centre was down", issued)
