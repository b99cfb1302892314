"""Bus handlers of recordings: every alert and violation gets its clip and kept footage; faults are marked.

A new alert asks for a clip, marks the footage around it as event footage and protects it until the
alert is dismissed or closed. A violation candidate asks for a clip and marks its footage. A camera
fault marks the footage around it. A periodic task cuts the clips that are due and applies retention.
"""

from __future__ import annotations

import asyncio
import logging
import time

from safecity.core.context import Context
from safecity.core.db import claim_event
from safecity.core.events import AlertChanged, CameraHealth, Event, ViolationCandidate
from safecity.recordings import retention, service
from safecity.recordings.export import process_due_clips

log = logging.getLogger(__name__)

CLIP_EVERY_S = 10.0
RETENTION_EVERY_S = 3600.0
CLOSED = {"dismissed", "closed"}


def on_alert(ctx: Context, event: Event) -> None:
    """A new alert gets a clip and protected footage; a dismissed or closed one releases its footage."""
    assert isinstance(event, AlertChanged)
    with ctx.db.session() as session:
        if not claim_event(session, "recordings-alerts", event.key):
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
    """A violation candidate gets a clip, and its footage is kept for the event retention."""
    assert isinstance(event, ViolationCandidate)
    if not event.camera_id:
        return
    with ctx.db.session() as session:
        if not claim_event(session, "recordings-violations", event.key):
            return
        ref = f"violation:{event.key}"
        clip = service.request_clip(
            session, ref=ref, kind="violation", camera_id=event.camera_id, at=event.at
        )
        service.mark_event(
            session,
            camera_id=event.camera_id,
            at=event.at,
            ref=ref,
            reason=f"{event.offence} {event.plate or ''}".strip(),
            before_s=(clip.at - clip.start).total_seconds(),
            after_s=(clip.end - clip.at).total_seconds(),
        )


def on_health(ctx: Context, event: Event) -> None:
    """A camera fault marks the footage around it as event footage (kept for the event retention)."""
    assert isinstance(event, CameraHealth)
    if not event.camera_id or event.state == "online":
        return
    with ctx.db.session() as session:
        if not claim_event(session, "recordings-faults", event.key):
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


async def periodic(
    ctx: Context, *, clip_every_s: float = CLIP_EVERY_S, retention_every_s: float = RETENTION_EVERY_S
) -> None:
    """Cuts due clips every few seconds and applies retention every hour, until cancelled."""
    last_retention = 0.0
    while True:
        try:
            await asyncio.to_thread(process_due_clips, ctx)
            if time.monotonic() - last_retention >= retention_every_s:
                last_retention = time.monotonic()
                await asyncio.to_thread(_retention, ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bad clip or a busy database must not stop the next round
            log.warning("recordings periodic task failed: %s", exc)
        await asyncio.sleep(clip_every_s)


def _retention(ctx: Context) -> None:
    with ctx.db.session() as session:
        report = retention.apply_retention(session, settings=ctx.settings)
    if report.deleted_segments:
        log.info("retention deleted %d segments (%d bytes)", report.deleted_segments, report.deleted_bytes)


_tasks: set[asyncio.Task[None]] = set()


async def register(ctx: Context) -> None:
    """Subscribes the handlers and starts the periodic clip and retention task."""
    await ctx.bus.subscribe(["alert"], lambda e: on_alert(ctx, e), durable="recordings-alerts")
    await ctx.bus.subscribe(
        ["violation_candidate"], lambda e: on_violation(ctx, e), durable="recordings-violations"
    )
    await ctx.bus.subscribe(["camera_health"], lambda e: on_health(ctx, e), durable="recordings-faults")
    task = asyncio.create_task(periodic(ctx), name="recordings:periodic")
    _tasks.add(task)  # keep a reference: the loop holds tasks only weakly
    task.add_done_callback(_tasks.discard)
