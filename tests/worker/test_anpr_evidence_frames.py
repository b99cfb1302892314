"""The ANPR pipeline keeps only the pictures its events name (issue 17: 68 files for 2 cars in 10 s)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from safecity.core.camera_config import AnalysisSettings, Line
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.media import MediaStore
from safecity.demo import scenes
from safecity.evidence.service import refs_in
from safecity.video.sources import Frame
from safecity.worker.anpr import AnprPipeline, CameraSetup

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def run_junction(media: MediaStore, seconds: float, passes: list[scenes.Pass]) -> list[object]:
    plan = scenes.TrafficPlan(start=0.0)
    for vehicle in passes:
        plan.add("junction", vehicle)
    renderer = scenes.SceneRenderer("junction", junction=True, seed=3)
    x0, x1 = scenes.ROAD_X
    setup = CameraSetup(
        "junction",
        "anpr",
        AnalysisSettings(
            detector="motion",  # the drawn vehicles are rectangles, which no COCO detector calls a car
            junction="J1",
            signal_head_box=tuple(scenes.SIGNAL_BOX),
            approach_point=(scenes.WIDTH / 2, 40),
        ),
        [Line(name="stop", points=[(x0, scenes.STOP_LINE_Y), (x1, scenes.STOP_LINE_Y)], purpose="stop_line")],
        [],
    )
    pipeline = AnprPipeline(setup, media, fps=5.0)
    events: list[object] = []
    for index in range(int(seconds * 5)):
        t = index / 5
        image = renderer.render(t, plan.due("junction", t))
        frame = Frame(
            image=image, pts_seconds=t, wall_time=T0 + timedelta(seconds=t), keyframe=True, index=index
        )
        events += pipeline.process(frame)
    events += pipeline.tick(T0 + timedelta(seconds=seconds + 60))
    return events


def test_two_cars_through_a_green_junction_leave_only_the_pictures_their_reads_name(tmp_path: Path) -> None:
    media = MediaStore(tmp_path / "media")
    # The first 14 s of the demo's signal cycle are green: nobody runs the light.
    passes = [
        scenes.Pass(0.5, "BKR294", 45.0, (200, 200, 200)),
        scenes.Pass(2.0, "AFR771", 40.0, (40, 40, 160), lane=1),
    ]
    events = run_junction(media, 10.0, passes)
    assert not [e for e in events if getattr(e, "offence", None) == "red_light"]
    named = {ref for e in events for ref in refs_in(e.model_dump())}  # type: ignore[attr-defined]
    stored = set(media.refs())
    assert stored and stored <= named, f"{len(stored - named)} stored pictures no event names"
    assert len(stored) <= 6


def test_a_red_light_runner_is_stored_with_the_frame_before_and_the_frame_of_the_crossing(
    tmp_path: Path,
) -> None:
    media = MediaStore(tmp_path / "media")
    # The signal is red from 17 s to 29 s; this car reaches the stop line in that stretch.
    events = run_junction(media, 24.0, [scenes.Pass(17.5, "BKR294", 45.0, (200, 200, 200))])
    (red,) = [e for e in events if getattr(e, "offence", None) == "red_light"]
    before, after = red.detail["frames_before"], red.detail["frames_after"]  # type: ignore[attr-defined]
    assert len(before) == 1 and len(after) == 1 and before != after
    assert all(media.verify(ref) for ref in [*before, *after])


async def test_a_worker_measures_with_a_calibration_recorded_after_its_camera_started(ctx: Context) -> None:
    from safecity.enforcement.calibrations import service as calibrations
    from safecity.worker.runtime import default_pipelines
    from tests.enforcement.court import calibration_in, register_camera

    register_camera(ctx, "cam-7")
    await ctx.bus.start()
    setup = CameraSetup("cam-7", "anpr", AnalysisSettings(analysis_fps=5.0), [], [])
    (pipeline,) = await asyncio.to_thread(default_pipelines, ctx, setup)
    assert isinstance(pipeline, AnprPipeline) and pipeline.calibrations is not None
    now = utcnow()
    assert pipeline.calibrations("cam-7", now) is None  # none recorded: no speed is measured
    with ctx.db.session() as session:
        row = calibrations.record(
            session,
            "cam-7",
            calibration_in(ctx, valid_from=now - timedelta(hours=1)),
            media=ctx.media,
            actor="t",
        )
    await ctx.settle()
    speed = pipeline.calibrations("cam-7", now)
    assert speed is not None and speed.calibration_id == row.id
    pipeline.close()
    await ctx.bus.close()
