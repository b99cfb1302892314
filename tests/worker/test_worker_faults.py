"""A worker's cameras that cannot be analysed: reported in plain words, the other cameras carry on."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from safecity.cameras import service as cameras
from safecity.cameras.models import Camera, CameraIn
from safecity.core.context import Context
from safecity.core.events import CameraHealth, Event
from safecity.maintenance import service as maintenance
from safecity.settings import Settings
from safecity.video.sources import Frame
from safecity.worker.anpr import CameraSetup
from safecity.worker.runtime import Pipeline, WorkerRuntime, default_pipelines


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", pipeline_stall_s=1.5)


def register(ctx: Context, camera_id: str, url: str, kind: str = "fixed", **analysis: Any) -> None:
    with ctx.db.session() as session:
        cameras.create(
            session,
            CameraIn.model_validate(
                {
                    "id": camera_id,
                    "name": camera_id,
                    "kind": kind,
                    "district": "South",
                    "latitude": 24.85,
                    "longitude": 67.0,
                    "stream_url": url,
                    "analysis": {"analysis_fps": 5.0, "motion_gate": False, **analysis},
                }
            ),
            actor="test",
        )


class StuckPipeline:
    """A pipeline that hangs inside a frame until released (a deadlocked model, a lost GPU)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def process(self, frame: Frame) -> list[Event]:
        self.release.wait()
        return []

    def tick(self, now: datetime) -> list[Event]:
        return []


class BrokenPipeline:
    """A pipeline that raises on every frame."""

    def process(self, frame: Frame) -> list[Event]:
        raise ValueError("detector output has shape (0, 7), expected (n, 6)")

    def tick(self, now: datetime) -> list[Event]:
        return []


def health_of(seen: list[Event], camera_id: str) -> list[CameraHealth]:
    return [e for e in seen if isinstance(e, CameraHealth) and e.camera_id == camera_id]


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_stalled_and_failing_pipelines_are_camera_faults_in_the_centre(ctx: Context) -> None:
    from safecity.cameras import consumer as camera_health
    from safecity.maintenance import consumer as maintenance_health

    register(ctx, "khi-stuck", "synthetic://road/khi-stuck?fps=5")
    register(ctx, "khi-broken", "synthetic://road/khi-broken?fps=5")
    register(ctx, "khi-fine", "synthetic://road/khi-fine?fps=5")
    stuck = StuckPipeline()

    def pipelines(context: Context, setup: CameraSetup) -> list[Pipeline]:
        made: dict[str, list[Pipeline]] = {"khi-stuck": [stuck], "khi-broken": [BrokenPipeline()]}
        return made.get(setup.camera_id, [])

    seen: list[Event] = []
    await ctx.bus.start()
    try:
        # The centre's own consumers of health reports: the camera registry and maintenance.
        await camera_health.register(ctx)
        await maintenance_health.register(ctx)
        await ctx.bus.subscribe([CameraHealth.type], seen.append)
        runtime = WorkerRuntime(ctx, pipelines=pipelines, record=False)
        assert await asyncio.to_thread(runtime.start) == 3

        def faulted(camera_id: str) -> bool:
            return any(e.state == "offline" for e in health_of(seen, camera_id))

        await until(lambda: faulted("khi-stuck") and faulted("khi-broken"))
        stalled = next(e for e in health_of(seen, "khi-stuck") if e.state == "offline")
        assert stalled.detail.startswith("pipeline stalled: no frame analysed for ")
        failing = next(e for e in health_of(seen, "khi-broken") if e.state == "offline")
        assert "failing on every frame" in failing.detail and "expected (n, 6)" in failing.detail
        assert not faulted("khi-fine")

        stuck.release.set()  # the model answers again
        await until(lambda: health_of(seen, "khi-stuck")[-1].state == "online")
        await asyncio.to_thread(runtime.stop)
        await asyncio.sleep(0.5)
        with ctx.db.session() as session:
            broken = cameras.get(session, "khi-broken")
            assert broken.health_state == "offline" and "failing on every frame" in broken.health_detail
            assert maintenance.open_fault(session, "khi-broken") is not None
            assert cameras.get(session, "khi-fine").health_state == "online"
    finally:
        await ctx.bus.close()


async def test_a_camera_whose_analysis_cannot_start_is_reported_and_the_others_carry_on(ctx: Context) -> None:
    register(ctx, "khi-miscalibrated", "synthetic://road/khi-miscalibrated?fps=5", "anpr")
    with ctx.db.session() as session:
        # A configuration edited in the database by hand, past the registry's checks.
        session.execute(
            update(Camera).where(Camera.id == "khi-miscalibrated").values(analysis={"decode": "sometimes"})
        )
    register(ctx, "khi-unreachable", "rtsp://127.0.0.1:9/stream1")
    register(ctx, "khi-fine", "synthetic://road/khi-fine?fps=5")
    seen: list[Event] = []
    await ctx.bus.start()
    await ctx.bus.subscribe([CameraHealth.type], seen.append)
    runtime = WorkerRuntime(ctx, pipelines=default_pipelines, record=False)
    await asyncio.to_thread(runtime.start)
    try:
        await until(
            lambda: (
                bool(health_of(seen, "khi-miscalibrated"))
                and bool(health_of(seen, "khi-unreachable"))
                and any(e.state == "online" for e in health_of(seen, "khi-fine"))
            )
        )
        miscalibrated = health_of(seen, "khi-miscalibrated")[0]
        assert miscalibrated.state == "offline"
        assert miscalibrated.detail.startswith(
            "analysis cannot start: configuration invalid: analysis.decode"
        )
        unreachable = health_of(seen, "khi-unreachable")[0]
        assert unreachable.state == "offline" and "refused" in unreachable.detail
        assert set(runtime.running) == {"khi-unreachable", "khi-fine"}
    finally:
        await asyncio.to_thread(runtime.stop)
        await ctx.bus.close()


def test_worker_pinned_to_an_unknown_camera_says_so(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    from safecity.cli import app

    register(ctx, "khi-known", "synthetic://road/khi-known?fps=5")
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(ctx.settings.data_dir))
    result = CliRunner().invoke(app, ["worker", "--camera", "khi-known", "--camera", "khi-typo"])
    assert result.exit_code == 1
    assert "no camera khi-typo in the registry" in result.output
    assert "Traceback" not in result.output


def test_cluster_status_on_the_embedded_bus_says_what_to_set(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safecity.cli import app

    monkeypatch.setenv("SAFECITY_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("SAFECITY_BUS", "memory")
    result = CliRunner().invoke(app, ["cluster", "status", "--json"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "SAFECITY_BUS=nats" in result.output
