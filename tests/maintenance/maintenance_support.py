"""Helpers of the maintenance tests: cameras in the registry and health reports through the real bus."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.bus.memory import MemoryBus
from safecity.core.context import Context
from safecity.core.events import CameraHealth, Event, HealthState

# A moment safely in the past, so no test depends on the time of day it runs at.
T0 = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)


def add_camera(ctx: Context, camera_id: str, *, district: str = "South", name: str | None = None) -> None:
    """Registers a fixed camera."""
    data = CameraIn.model_validate(
        {
            "id": camera_id,
            "name": name or f"Camera {camera_id}",
            "kind": "fixed",
            "district": district,
            "latitude": 24.86,
            "longitude": 67.03,
        }
    )
    with ctx.db.session() as session:
        cameras.create(session, data, actor="test")


def health(
    camera_id: str,
    state: HealthState,
    since: datetime,
    *,
    detail: str = "",
    frame_ref: str | None = None,
) -> CameraHealth:
    """Returns a health report as the worker publishes it (same key scheme)."""
    return CameraHealth(
        key=f"camera_health:{camera_id}:{state}:{since.isoformat()}",
        camera_id=camera_id,
        at=since,
        state=state,
        detail=detail,
        since=since,
        frame_ref=frame_ref,
    )


def publish(client: TestClient, ctx: Context, *events: Event) -> None:
    """Publishes events one by one on the app's bus; after each (and with none) waits until all is handled."""
    assert client.portal is not None
    assert isinstance(ctx.bus, MemoryBus)
    for event in events:
        client.portal.call(ctx.bus.publish, event)
        settle(client, ctx)
    if not events:
        settle(client, ctx)


def settle(client: TestClient, ctx: Context) -> None:
    """Waits until every consumer is idle, including on the events their handlers announced meanwhile."""
    assert client.portal is not None
    client.portal.call(ctx.settle)
