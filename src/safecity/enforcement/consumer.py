"""Bus handlers: violation candidates and plate reads become violations (each fact acted on once)."""

from __future__ import annotations

import logging

from safecity.core.context import Context
from safecity.core.db import claim_event
from safecity.core.events import Event, PlateRead, ViolationCandidate
from safecity.enforcement import service
from safecity.enforcement.models import Violation, ViolationApproved

log = logging.getLogger(__name__)

CANDIDATES = "enforcement-violations"
PLATES = "enforcement-plates"


def handle_candidate(ctx: Context, event: Event) -> None:
    """Records a worker's violation candidate (de-duplicated); announces it when approved on arrival."""
    assert isinstance(event, ViolationCandidate)
    with ctx.db.session() as session:
        if not claim_event(session, CANDIDATES, event.key):
            return
        violation, new = service.record_candidate(session, event)
        approved = service.approved_event(violation) if new and violation.status == "approved" else None
    _after(ctx, [violation] if new else [], [approved] if approved else [])


def handle_plate_read(ctx: Context, event: Event) -> None:
    """Judges a plate read for section speeding and for a plate missing from the vehicle registry."""
    assert isinstance(event, PlateRead)
    from safecity.challans import service as challans

    created: list[Violation] = []
    approved: list[ViolationApproved] = []
    with ctx.db.session() as session:
        if not claim_event(session, PLATES, event.key):
            return
        policy = service.get_policy(session)
        candidates = service.section_read(session, event)
        trusted = not event.plate or event.confidence >= policy.min_plate_confidence
        if policy.unregistered_check and trusted:
            registered = challans.registry_status(session, event.plate) if event.plate else False
            unregistered = service.unregistered_candidate(event, registered=registered)
            if unregistered is not None:
                candidates.append(unregistered)
        for candidate in candidates:
            violation, new = service.record_candidate(session, candidate, policy=policy)
            if new:
                created.append(violation)
                if violation.status == "approved":
                    approved.append(service.approved_event(violation))
    _after(ctx, created, approved)


def _after(ctx: Context, created: list[Violation], approved: list[ViolationApproved]) -> None:
    """Counts new violations and announces approved ones once the transaction has committed."""
    if created:
        ctx.count("violations", len(created))
    for event in approved:
        publish_safely(ctx, event)


def publish_safely(ctx: Context, event: Event) -> None:
    """Publishes after a commit; if the bus is down the challans sweep still issues from the database."""
    try:
        ctx.bus.publish_threadsafe(event)
    except Exception:  # the database already holds the fact; the sweep (issue-pending) picks it up
        log.warning("could not announce %s %s; the challans sweep will pick it up", event.type, event.key)


async def register(ctx: Context) -> None:
    """Subscribes the enforcement handlers."""
    await ctx.bus.subscribe(["violation_candidate"], lambda e: handle_candidate(ctx, e), durable=CANDIDATES)
    await ctx.bus.subscribe(["plate_read"], lambda e: handle_plate_read(ctx, e), durable=PLATES)
