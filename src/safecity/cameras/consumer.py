"""Camera health from the workers: the registry's state, and an alert when a camera fails."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from sqlalchemy.orm import Session

from safecity.alerts import service as alerts
from safecity.cameras import service
from safecity.core.consumers import consume_each, handle_now
from safecity.core.context import Context
from safecity.core.events import CameraHealth, Event

FAULT_PRIORITY = {
    "offline": 3,
    "covered": 3,
    "moved": 3,
    "frozen": 3,
    "out_of_focus": 4,
    "too_dark": 4,
    "low_fps": 5,
    "degraded": 4,
}


CONSUMER = "cameras-health"


def handle_health(ctx: Context, event: Event) -> None:
    """Handles one health report now, exactly once (tests and tools; the bus batches them)."""
    handle_now(ctx, CONSUMER, partial(record_health, ctx), [event])


def record_health(ctx: Context, session: Session, event: Event) -> None:
    """Records a camera's health change; a fault raises (or folds into) a camera-fault alert."""
    if not isinstance(event, CameraHealth) or event.camera_id is None:
        return
    changed = service.set_health(
        session, event.camera_id, state=event.state, detail=event.detail, since=event.since
    )
    if not (changed and event.state in FAULT_PRIORITY):
        return
    camera = service.get(session, event.camera_id)
    alert, new = alerts.raise_alert(
        session,
        kind="camera_fault",
        priority=FAULT_PRIORITY[event.state],
        title=f"{camera.name}: {event.state.replace('_', ' ')}",
        source_key=f"health:{event.key}",
        dedup_key=f"camera_fault:{event.camera_id}:{event.state}",
        camera_id=event.camera_id,
        evidence={"frame_ref": event.frame_ref, "lat": camera.latitude, "lon": camera.longitude},
        detail={"state": event.state, "detail": event.detail, "since": event.since.isoformat()},
        dedup_window=timedelta(hours=12),
    )
    if new:
        alerts.announce(ctx, session, alert)


async def register(ctx: Context) -> None:
    """Subscribes the health handler."""
    await consume_each(ctx, CONSUMER, [CameraHealth.type], partial(record_health, ctx))
