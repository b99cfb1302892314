"""Bus handlers of recordings: every alert and violation gets its clip and kept footage; faults are marked.

A new alert asks for a clip, marks the footage around it as event footage and protects it until the
alert is dismissed or closed; at a camera that does not record, the clip says so and nothing is
protected. A violation candidate asks for a clip and marks its footage. A camera fault marks the
footage around it. Periodic jobs cut the clips that are due and apply retention.
"""

from __future__ import annotations

import logging
from functools import partial

from sqlalchemy.orm import Session

from safecity.core.consumers import batch_handler, consume_batch, consume_each, handle_now
from safecity.core.context import Context
from safecity.core.events import AlertChanged, CameraHealth, Event, ViolationCandidate
from safecity.recordings import retention, service
from safecity.recordings.export import process_due_clips

log = logging.getLogger(__name__)

CLIP_EVERY_S = 10.0
RETENTION_EVERY_S = 3600.0
CLOSED = {"dismissed", "closed"}


ALERTS = "recordings-alerts"
VIOLATIONS = "recordings-violations"
FAULTS = "recordings-faults"


def on_alert(ctx: Context, event: Event) -> None:
    """Handles one alert announcement now, exactly once (tests and tools; the bus batches them)."""
    handle_now(ctx, ALERTS, alert_footage, [event])


def alert_footage(session: Session, event: Event) -> None:
    """A new alert gets a clip and protected footage; a dismissed or closed one releases its footage."""
    if not isinstance(event, AlertChanged):
        return
    ref = f"alert:{event.alert_id}"
    if event.status in CLOSED:
        service.release(session, ref=ref)
        return
    if event.status != "new" or not event.camera_id:
        return
    clip = service.request_clip(
        session, ref=event.alert_id, kind="alert", camera_id=event.camera_id, at=event.at
    )
    # Only footage that exists (or is being written) is protected; otherwise the clip says why there is none.
    missing = service.why_unrecorded(session, event.camera_id, since=clip.start)
    if missing is not None:
        service.set_clip_unrecorded(session, clip, why=missing)
        log.info("alert %s: no footage to protect: %s", event.alert_id, missing)
        return
    before = (clip.at - clip.start).total_seconds()
    after = (clip.end - clip.at).total_seconds()
    service.mark_event(
        session,
        camera_id=event.camera_id,
        at=event.at,
        ref=ref,
        reason=event.title,
        before_s=before,
        after_s=after,
    )
    service.protect(
        session,
        camera_id=event.camera_id,
        start=clip.start,
        end=clip.end,
        reason=f"open alert: {event.title}"[:300],
        ref=ref,
    )


def on_violation(ctx: Context, event: Event) -> None:
    """Handles one violation candidate now, exactly once (tests and tools)."""
    batch_handler(ctx, VIOLATIONS, violations_footage)([event])


def violations_footage(session: Session, events: list[Event]) -> None:
    """Violation candidates get their clips, and their footage is kept for the event retention."""
    service.keep_event_footage(
        session,
        [
            service.EventFootage(
                ref=f"violation:{e.key}",
                kind="violation",
                camera_id=e.camera_id,
                at=e.at,
                reason=f"{e.offence} {e.plate or ''}".strip(),
            )
            for e in events
            if isinstance(e, ViolationCandidate) and e.camera_id
        ],
    )


def on_health(ctx: Context, event: Event) -> None:
    """Handles one health report now, exactly once (tests and tools)."""
    handle_now(ctx, FAULTS, fault_footage, [event])


def fault_footage(session: Session, event: Event) -> None:
    """A camera fault marks the footage around it as event footage (kept for the event retention)."""
    if not isinstance(event, CameraHealth) or not event.camera_id or event.state == "online":
        return
    service.mark_event(
        session,
        camera_id=event.camera_id,
        at=event.at,
        ref=f"fault:{event.key}",
        reason=f"camera {event.state}: {event.detail}",
        before_s=30,
        after_s=30,
    )


def apply_retention(ctx: Context) -> None:
    """Deletes recorded segments past their retention (footage under protection stays)."""
    with ctx.db.session() as session:
        report = retention.apply_retention(session, settings=ctx.settings)
    if report.deleted_segments:
        log.info("retention deleted %d segments (%d bytes)", report.deleted_segments, report.deleted_bytes)


async def register(ctx: Context) -> None:
    """Subscribes the handlers and schedules clip cutting and retention."""
    await consume_each(ctx, ALERTS, ["alert"], alert_footage)
    await consume_batch(ctx, VIOLATIONS, [ViolationCandidate.type], violations_footage)
    await consume_each(ctx, FAULTS, [CameraHealth.type], fault_footage)
    ctx.jobs.every("recordings.cut_clips", CLIP_EVERY_S, partial(process_due_clips, ctx))
    ctx.jobs.every("recordings.retention", RETENTION_EVERY_S, partial(apply_retention, ctx))
