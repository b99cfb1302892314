"""Bus handlers: violation candidates and plate reads become violations (each fact acted on once).

Both consumers take batches in one transaction. An approved violation is announced through the
outbox in the same transaction (`ViolationApproved`), so the challan issuer hears of every approval
that committed and of nothing that rolled back.
"""

from __future__ import annotations

import logging
from functools import partial

from sqlalchemy.orm import Session

from safecity.anpr.models import normalise_plate
from safecity.core import outbox
from safecity.core.consumers import batch_handler, consume_batch
from safecity.core.context import Context
from safecity.core.db import after_commit
from safecity.core.events import Event, PlateRead, ViolationCandidate
from safecity.enforcement import service
from safecity.enforcement.models import EnforcementPolicy
from safecity.enforcement.readiness import clock_jobs

log = logging.getLogger(__name__)

CANDIDATES = "enforcement-violations"
PLATES = "enforcement-plates"


def handle_candidate(ctx: Context, event: Event) -> None:
    """Handles one violation candidate now, exactly once (tests and tools; the bus batches them)."""
    batch_handler(ctx, CANDIDATES, partial(record_candidates, ctx))([event])


def handle_plate_read(ctx: Context, event: Event) -> None:
    """Handles one plate read now, exactly once (tests and tools; the bus batches them)."""
    batch_handler(ctx, PLATES, partial(judge_reads, ctx))([event])


def record_candidates(ctx: Context, session: Session, events: list[Event]) -> None:
    """Records workers' violation candidates (de-duplicated); announces those approved on arrival."""
    policy = service.get_policy(session)
    _record(ctx, session, [e for e in events if isinstance(e, ViolationCandidate)], policy)


def judge_reads(ctx: Context, session: Session, events: list[Event]) -> None:
    """Judges plate reads for section speeding and for plates missing from the vehicle registry."""
    from safecity.challans import service as challans

    reads = [e for e in events if isinstance(e, PlateRead)]
    policy = service.get_policy(session)
    sections = service.enabled_sections(session)
    section_cameras = {c for s in sections for c in (s.entry_camera_id, s.exit_camera_id)}
    candidates: list[ViolationCandidate] = []
    for read in reads:
        if read.camera_id in section_cameras:
            candidates.extend(service.section_read(session, read, sections=sections))
    if policy.unregistered_check:
        trusted = [r for r in reads if not r.plate or r.confidence >= policy.min_plate_confidence]
        registered = challans.registry_statuses(session, [r.plate for r in trusted if r.plate])
        for read in trusted:
            status = registered.get(normalise_plate(read.plate), False) if read.plate else False
            candidate = service.unregistered_candidate(read, registered=status)
            if candidate is not None:
                candidates.append(candidate)
    _record(ctx, session, candidates, policy)


def _record(
    ctx: Context, session: Session, candidates: list[ViolationCandidate], policy: EnforcementPolicy
) -> None:
    created = 0
    for violation, new in service.record_candidates(session, candidates, policy=policy, media=ctx.media):
        if not new:
            continue
        created += 1
        if violation.status == "approved":
            outbox.stage(session, service.approved_event(violation))
    if created:
        after_commit(session, lambda: ctx.count("violations", created))


async def register(ctx: Context) -> None:
    """Subscribes the enforcement handlers and schedules the camera clock probe."""
    clock_jobs.schedule(ctx)
    await consume_batch(ctx, CANDIDATES, [ViolationCandidate.type], partial(record_candidates, ctx))
    await consume_batch(ctx, PLATES, [PlateRead.type], partial(judge_reads, ctx), max_batch=250)
