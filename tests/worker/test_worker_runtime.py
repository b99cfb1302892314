"""The worker runtime on a real H.264 file: plates read, violations seen, footage recorded, health."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.bus.memory import MemoryBus
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import Event
from safecity.demo.city import ROAD_CALIBRATION
from safecity.demo.scenes import ROAD_X, Pass, SceneRenderer
from safecity.enforcement.calibrations import service as calibrations
from safecity.worker.runtime import WorkerRuntime, latest_snapshot
from tests.enforcement.court import calibration_in


def traffic_video(path: Path, *, seconds: float = 8.0, fps: int = 10) -> None:
    """Encodes a road scene with two vehicles (one at 80 km/h, one at 40 km/h) as H.264."""
    renderer = SceneRenderer("test-cam", junction=False, seed=3)
    vehicles = {
        5: Pass(0.5, "BKR294", 80.0, (200, 200, 200)),
        15: Pass(1.5, "AFR771", 40.0, (40, 40, 160), lane=1),
    }
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.options = {"g": str(fps), "preset": "ultrafast"}
        stream.time_base = Fraction(1, fps)
        for i in range(int(seconds * fps)):
            arrivals = [vehicles[i]] if i in vehicles else []
            image = renderer.render(i / fps, arrivals)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture
def road_video(tmp_path: Path) -> Path:
    path = tmp_path / "road.mp4"
    traffic_video(path)
    return path


async def test_file_camera_yields_plate_reads_speeding_and_footage(ctx: Context, road_video: Path) -> None:
    with ctx.db.session() as session:
        cameras.create(
            session,
            CameraIn.model_validate(
                {
                    "id": "khi-k-anpr-test",
                    "name": "Korangi test",
                    "kind": "anpr",
                    "district": "Korangi",
                    "latitude": 24.83,
                    "longitude": 67.12,
                    "stream_url": str(road_video),
                    "analysis": {
                        "analysis_fps": 5.0,
                        "motion_gate": False,
                        "detector": "motion",  # drawn rectangles: no COCO detector calls them cars
                        "speed_limit_kmh": 60.0,
                    },
                }
            ),
            actor="test",
        )
        # The worker measures with the audited calibration the enforcement service recorded.
        record = calibration_in(
            ctx,
            valid_from=utcnow() - timedelta(days=1),
            image_points=ROAD_CALIBRATION["image_points"],
            ground_points=ROAD_CALIBRATION["ground_points"],
            references=[{"image_from": [ROAD_X[0], 0], "image_to": [ROAD_X[1], 0], "metres": 25.0}],
        )
        calibration = calibrations.record(session, "khi-k-anpr-test", record, media=ctx.media, actor="test")
    seen: list[Event] = []
    await ctx.bus.start()
    await ctx.bus.subscribe(["*"], seen.append)
    runtime = WorkerRuntime(ctx)
    assert await asyncio.to_thread(runtime.start) == 1
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(e.type == "plate_read" for e in seen) < 2:
        await asyncio.sleep(0.2)
    await asyncio.to_thread(runtime.stop)
    assert isinstance(ctx.bus, MemoryBus)
    await ctx.bus.drain()
    await ctx.bus.close()

    reads = {e.plate: e for e in seen if e.type == "plate_read"}  # type: ignore[attr-defined]
    assert set(reads) == {"BKR294", "AFR771"}
    assert reads["BKR294"].speed_kmh == pytest.approx(80, abs=8)  # type: ignore[attr-defined]
    assert reads["AFR771"].crop_ref and ctx.media.path(reads["AFR771"].crop_ref).exists()  # type: ignore[attr-defined]
    speeding = [e for e in seen if e.type == "violation_candidate" and e.offence == "speeding"]  # type: ignore[attr-defined]
    assert [e.plate for e in speeding] == ["BKR294"]  # type: ignore[attr-defined]
    assert speeding[0].detail["calibration_id"] == calibration.id  # type: ignore[attr-defined]
    assert any(e.type == "camera_health" and e.state == "online" for e in seen)  # type: ignore[attr-defined]
    assert latest_snapshot("khi-k-anpr-test") is not None
    recorded = list((ctx.settings.data_dir / "recordings").rglob("*.ts"))
    assert recorded, "the camera's packets were not recorded"


async def test_dead_camera_reports_offline_and_others_carry_on(ctx: Context, road_video: Path) -> None:
    with ctx.db.session() as session:
        for cam_id, url in (("dead", "rtsp://127.0.0.1:9/nothing"), ("alive", str(road_video))):
            cameras.create(
                session,
                CameraIn.model_validate(
                    {
                        "id": cam_id,
                        "name": cam_id,
                        "kind": "fixed",
                        "district": "South",
                        "latitude": 24.85,
                        "longitude": 67.0,
                        "stream_url": url,
                    }
                ),
                actor="test",
            )
    seen: list[Event] = []
    await ctx.bus.start()
    await ctx.bus.subscribe(["camera_health"], seen.append)
    runtime = WorkerRuntime(ctx, record=False)
    await asyncio.to_thread(runtime.start)
    deadline = time.monotonic() + 30
    states = lambda cam: {e.state for e in seen if e.camera_id == cam}  # type: ignore[attr-defined]  # noqa: E731
    while time.monotonic() < deadline and not ({"offline"} <= states("dead") and "online" in states("alive")):
        await asyncio.sleep(0.2)
    await asyncio.to_thread(runtime.stop)
    await ctx.bus.close()
    assert "online" in states("alive")
    assert states("dead") & {"offline", "reconnecting"}
    detail = next(e.detail for e in seen if e.camera_id == "dead")  # type: ignore[attr-defined]
    assert "127.0.0.1" in detail or "refused" in detail or "reach" in detail
