"""The ANPR vehicle detector: the camera's setting picks it; a broken model file degrades, never stops."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.camera_config import AnalysisSettings
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import CameraHealth, Event, PlateRead
from safecity.core.media import MediaStore
from safecity.demo.scenes import Pass, SceneRenderer
from safecity.video.sources import Frame
from safecity.vision import registry
from safecity.vision.objects import MotionGatedDetector, MotionObjectDetector
from safecity.vision.plates import PlateReader
from safecity.worker.anpr import AnprPipeline, CameraSetup, vehicle_detector
from safecity.worker.runtime import WorkerRuntime

FPS = 10


@pytest.fixture
def corrupt_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The registry reads a weights folder whose NanoDet file lost its second half."""
    folder = tmp_path / "weights"
    shutil.copytree(registry.WEIGHTS_DIR, folder)
    model = folder / "nanodet-m-416.onnx"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    monkeypatch.setattr(registry, "WEIGHTS_DIR", folder)
    registry.forget_sessions()
    yield model
    registry.forget_sessions()


def test_the_camera_setting_picks_the_detector() -> None:
    gated, problem = vehicle_detector(AnalysisSettings())
    assert isinstance(gated, MotionGatedDetector) and problem is None
    motion, problem = vehicle_detector(AnalysisSettings(detector="motion"))
    assert isinstance(motion, MotionObjectDetector) and problem is None


def test_a_corrupt_model_leaves_the_camera_on_motion_and_says_which_file_to_restore(
    corrupt_model: Path, tmp_path: Path
) -> None:
    detector, problem = vehicle_detector(AnalysisSettings())
    assert isinstance(detector, MotionObjectDetector)
    assert problem is not None and f"{corrupt_model} is corrupt" in problem and "git checkout" in problem
    setup = CameraSetup("cam-1", "anpr", AnalysisSettings(motion_gate=False))
    pipeline = AnprPipeline(setup, MediaStore(tmp_path / "media"), reader=PlateReader(region="pk"), fps=FPS)
    assert pipeline.degraded == problem
    renderer = SceneRenderer("cam-1", junction=False, seed=3)
    start, events = utcnow(), []
    for i in range(8 * FPS):
        image = renderer.render(i / FPS, [Pass(0.5, "BKR294", 80.0, (200, 200, 200))] if i == 5 else [])
        at = start + timedelta(seconds=i / FPS)
        events += pipeline.process(Frame(image, pts_seconds=i / FPS, wall_time=at, index=i))
    events += pipeline.tick(start + timedelta(seconds=60))
    assert [e.plate for e in events if isinstance(e, PlateRead)] == ["BKR294"]  # still reading, on motion


def register(ctx: Context, camera_id: str, kind: str) -> None:
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
                    "stream_url": f"synthetic://road/{camera_id}?fps=5",
                    "analysis": {"analysis_fps": 5.0, "motion_gate": False},
                }
            ),
            actor="test",
        )


async def test_the_cameras_that_need_a_broken_model_report_degraded_and_the_others_stay_online(
    ctx: Context, corrupt_model: Path
) -> None:
    register(ctx, "khi-anpr", "anpr")
    register(ctx, "khi-fixed", "fixed")
    seen: list[Event] = []
    await ctx.bus.start()
    await ctx.bus.subscribe([CameraHealth.type], seen.append)
    runtime = WorkerRuntime(ctx, record=False)
    assert await asyncio.to_thread(runtime.start) == 2
    try:
        for _ in range(200):
            states = {e.camera_id: e.state for e in seen if isinstance(e, CameraHealth)}
            if states.get("khi-fixed") == "online" and runtime.frames > 20:
                break
            await asyncio.sleep(0.1)
        anpr = [e for e in seen if isinstance(e, CameraHealth) and e.camera_id == "khi-anpr"]
        assert anpr and {e.state for e in anpr} == {"degraded"}  # its picture is fine; its analysis is not
        assert (
            f"{corrupt_model} is corrupt" in anpr[0].detail
            and "vehicles found by motion only" in anpr[0].detail
        )
        assert states["khi-fixed"] == "online"
        assert set(runtime.running) == {"khi-anpr", "khi-fixed"}  # the camera keeps running, on motion
    finally:
        await asyncio.to_thread(runtime.stop)
        await ctx.bus.close()
