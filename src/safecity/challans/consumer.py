"""Bus handler: an approved violation becomes one challan, its notice rendered and queued for delivery."""

from __future__ import annotations

import asyncio
import logging

from safecity.challans import delivery, notice, service
from safecity.core.context import Context
from safecity.core.db import claim_event
from safecity.core.events import Event
from safecity.enforcement.models import ViolationApproved

log = logging.getLogger(__name__)

CONSUMER = "challans-issue"


def handle_approved(ctx: Context, event: Event) -> None:
    """Issues the challan of an approved violation (a redelivery changes nothing), then sends its notice."""
    assert isinstance(event, ViolationApproved)
    with ctx.db.session() as session:
        if not claim_event(session, CONSUMER, event.key):
            return
        report = service.issue_for_violations(session, [event.violation_id])
    if report.issued:
        ctx.count("challans", report.issued)
        send_notices(ctx, report.numbers)


def send_notices(ctx: Context, numbers: list[str]) -> None:
    """Renders the notices of new challans and runs the outbox; a failure leaves them queued for later."""
    try:
        with ctx.db.session() as session:
            for number in numbers:
                notice.render_notice(session, ctx.media, number)
            ctx.count("notices", len(numbers))
        with ctx.db.session() as session:
            adapters = delivery.adapters_from_config(
                service.get_rules(session).delivery, ctx.settings.data_dir
            )
            delivery.deliver_pending(session, ctx.media, adapters, limit=50)
    except Exception:  # the challan is issued; `safecity challans notices` / `deliver` catch up
        log.exception("notices for %s were not sent now; they stay queued", numbers)


def catch_up(ctx: Context) -> int:
    """Issues challans for approved violations that no event announced (a crash, a bus outage)."""
    issued = 0
    while True:
        with ctx.db.session() as session:
            report = service.issue_pending(session, limit=1000)
        issued += report.issued
        if report.issued:
            ctx.count("challans", report.issued)
        if report.issued + report.held < 1000:
            return issued


async def register(ctx: Context) -> None:
    """Subscribes the challan issuer and issues anything left approved while the centre was down."""
    await ctx.bus.subscribe(["violation_approved"], lambda e: handle_approved(ctx, e), durable=CONSUMER)
    issued = await asyncio.to_thread(catch_up, ctx)
    if issued:
        log.info("issued %d challans for violations approved while the centre was down", issued)
