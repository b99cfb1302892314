"""Camera health from the workers: the registry's state, and an alert when a camera fails."""

from __future__ import annotations

from datetime import timedelta

from safecity.alerts import service as alerts
from safecity.alerts.models import Alert
from safecity.cameras import service
from safecity.core.context import Context
from safecity.core.db import claim_event
from safecity.core.events import CameraHealth, Event

FAULT_PRIORITY = {
    "offline": 3,
    "covered": 3,
    "moved": 3,
    "frozen": 3,
    "out_of_focus": 4,
    "too_dark": 4,
    "low_fps": 5,
}


def handle_health(ctx: Context, event: Event) -> None:
    """Records a camera's health change; a fault raises (or folds into) a camera-fault alert."""
    assert isinstance(event, CameraHealth)
    raised: Alert | None = None
    with ctx.db.session() as session:
        if not claim_event(session, "cameras-health", event.key):
            return
        if event.camera_id is None:
            return
        changed = service.set_health(
            session, event.camera_id, state=event.state, detail=event.detail, since=event.since
        )
        if changed and event.state in FAULT_PRIORITY:
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
            raised = alert if new else None
    if raised is not None:
        alerts.announce(ctx, raised)


async def register(ctx: Context) -> None:
    """Subscribes the health handler."""
    await ctx.bus.subscribe([CameraHealth.type], lambda e: handle_health(ctx, e), durable="cameras-health")
