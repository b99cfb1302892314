"""The centre's watchdog: a camera no live worker analyses is reported offline once, and online on return."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.bus.kv import open_kv
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import CameraHealth, Event
from safecity.settings import Settings
from safecity.worker.leases import LeaseKeeper, LeaseTimings, WorkerRecord
from safecity.worker.watchdog import NO_WORKER, report_unheld_cameras

TIMINGS = LeaseTimings(heartbeat_s=0.2, ttl_s=0.6)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", lease_heartbeat_s=0.2, lease_ttl_s=0.6, unheld_report_s=0.5)


def register(ctx: Context, camera_id: str, *, enabled: bool = True) -> None:
    with ctx.db.session() as session:
        cameras.create(
            session,
            CameraIn.model_validate(
                {
                    "id": camera_id,
                    "name": camera_id,
                    "kind": "fixed",
                    "district": "East",
                    "latitude": 24.9,
                    "longitude": 67.1,
                    "stream_url": f"synthetic://road/{camera_id}",
                    "enabled": enabled,
                }
            ),
            actor="test",
        )


async def holding(ctx: Context, worker_id: str, camera_ids: list[str]) -> LeaseKeeper:
    """Starts a worker pinned to `camera_ids`, holding their leases (analysis itself is not needed here)."""
    now = utcnow()
    me = WorkerRecord(
        id=worker_id, host="test", pid=1, capacity=10, pinned=camera_ids, started=now, heartbeat_at=now
    )

    async def wanted() -> list[str]:
        return camera_ids

    async def opened(camera_id: str) -> bool:
        return True

    async def closed(camera_id: str) -> None:
        return None

    kv = await open_kv(ctx.bus, ctx.settings.lease_bucket)
    keeper = LeaseKeeper(kv, me, TIMINGS, cameras=wanted, open_camera=opened, close_camera=closed)
    await keeper.start()
    return keeper


async def test_unheld_cameras_are_reported_once_per_outage(ctx: Context) -> None:
    for camera_id in ("khi-held", "khi-orphan"):
        register(ctx, camera_id)
    register(ctx, "khi-switched-off", enabled=False)
    seen: list[Event] = []
    await ctx.bus.start()
    await ctx.bus.subscribe([CameraHealth.type], seen.append)
    worker = await holding(ctx, "w-held", ["khi-held"])
    try:
        assert await report_unheld_cameras(ctx) == 0  # noticed, not yet long enough
        await asyncio.sleep(0.7)
        assert await report_unheld_cameras(ctx) == 1
        assert await report_unheld_cameras(ctx) == 0  # once per outage
        await asyncio.sleep(0.2)
        [orphaned] = [e for e in seen if isinstance(e, CameraHealth)]
        assert (orphaned.camera_id, orphaned.state, orphaned.detail) == ("khi-orphan", "offline", NO_WORKER)

        rescuer = await holding(ctx, "w-rescuer", ["khi-orphan"])
        assert await report_unheld_cameras(ctx) == 1
        assert await report_unheld_cameras(ctx) == 0
        await asyncio.sleep(0.2)
        back = seen[-1]
        assert isinstance(back, CameraHealth) and (back.camera_id, back.state) == ("khi-orphan", "online")

        for task in worker._tasks:  # the worker holding khi-held dies
            task.cancel()
        await asyncio.sleep(TIMINGS.ttl_s + 0.1)
        assert await report_unheld_cameras(ctx) == 0  # its lease has lapsed: noticed
        await asyncio.sleep(TIMINGS.ttl_s + 0.1)
        assert await report_unheld_cameras(ctx) == 1
        await asyncio.sleep(0.2)
        dead = seen[-1]
        assert isinstance(dead, CameraHealth) and (dead.camera_id, dead.state) == ("khi-held", "offline")
        assert "last held by worker w-held" in dead.detail
        assert dead.since < utcnow() - timedelta(seconds=TIMINGS.ttl_s)  # when analysis stopped
        assert all(e.camera_id != "khi-switched-off" for e in seen)
        await rescuer.leave()
    finally:
        await ctx.bus.close()
