"""Running the synthetic city: headless for a fixed time with a JSON report, or served to a browser."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from safecity.cameras import service as cameras
from safecity.cameras.models import Camera, CameraIn, CameraPatch
from safecity.core.cliutil import console
from safecity.core.context import Context
from safecity.demo.city import CityPlan, build_city
from safecity.demo.crew import CrewAtWork
from safecity.demo.ptz import SimulatedPtzCamera, steer
from safecity.demo.scenes import SyntheticSource
from safecity.demo.story import RIDER_FACE, STRANGER_FACE, story_report, stranger_report
from safecity.settings import Settings
from safecity.worker.runtime import WorkerRuntime

REPORT_COUNTERS = (
    "plate_reads",
    "hotlist_hits",
    "violations",
    "challans",
    "notices",
    "face_matches",
    "dispatches",
    "recorded_segments",
    "clips",
    "faults_opened",
    "faults_closed",
    "tickets_opened",
)


def prepare(
    settings: Settings, *, seconds: float, fresh: bool = True, faces_dir: Path | None = None
) -> tuple[Context, CityPlan]:
    """Creates the data folder and the synthetic city; returns the context and what was set up."""
    if fresh and settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)
    ctx = Context.create(settings)
    city, plan = build_city(ctx, seconds=seconds, faces_dir=faces_dir)
    SyntheticSource.plans["default"] = plan
    if city.rider_head is not None:
        SyntheticSource.faces[RIDER_FACE] = city.rider_head
    if city.stranger_head is not None:
        SyntheticSource.faces[STRANGER_FACE] = city.stranger_head
    add_ptz_camera(ctx)
    return ctx, dataclasses.replace(city, cameras=city.cameras + 1, streaming=city.streaming + 1)


PTZ_CAMERA = "khi-s-ptz-saddar"


def add_ptz_camera(ctx: Context) -> SimulatedPtzCamera:
    """Starts a simulated ONVIF PTZ camera steering the synthetic camera `PTZ_CAMERA`, and points it there.

    Its port is new each run, so a kept data folder has the camera's ONVIF address changed to it.
    """
    device = SimulatedPtzCamera()
    steer(PTZ_CAMERA, device)
    analysis = {"analysis_fps": 1.0, "onvif_url": device.url, "ptz": "on"}
    with ctx.db.session() as session:
        if session.get(Camera, PTZ_CAMERA) is None:
            row = {
                "id": PTZ_CAMERA,
                "name": "Saddar, Zainab Market (PTZ)",
                "kind": "fixed",
                "district": "South",
                "latitude": 24.8560,
                "longitude": 67.0285,
                "stream_url": f"synthetic://road/{PTZ_CAMERA}?fps=5&ptz=1",
                "analysis": analysis,
            }
            cameras.create(session, CameraIn.model_validate(row), actor="demo")
        else:
            patch = CameraPatch.model_validate({"analysis": analysis})
            cameras.update(session, PTZ_CAMERA, patch, actor="demo")
    return device


async def start_crew(
    ctx: Context, city: CityPlan, app: Any, *, dispatch_after_s: float
) -> asyncio.Task[None]:
    """Signs the demo's officers in to their units and sets them and the duty dispatcher to work on
    `app` (before the cameras start: see `CrewAtWork.sign_in`); returns their task."""
    crew = CrewAtWork(ctx, city.crew, app, dispatch_after_s=dispatch_after_s)
    await crew.sign_in()
    return asyncio.get_running_loop().create_task(crew.run(), name="demo-crew")


async def stop_crew(task: asyncio.Task[None]) -> None:
    """Stops the demo's crew (whatever they were doing is left as it stands)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def report(ctx: Context, *, seconds: float, frames: int, city: CityPlan) -> dict[str, Any]:
    """Returns the demo report: what the city's cameras saw and what the centre made of it."""
    events = {k.removeprefix("event:"): v for k, v in sorted(ctx.counters.items()) if k.startswith("event:")}
    with ctx.db.session() as session:
        health = cameras.count_by_health(session)
        from safecity.alerts import service as alerts

        alert_rows = alerts.list_alerts(session, limit=10_000)
        by_kind = Counter(a.kind for a in alert_rows)
        from safecity.recordings import service as recordings

        footage = recordings.footage_counts(session)
        told = story_report(session)
        # A pass counts once he has waited at the camera (he rides in for ~5 s, then waits 8 s).
        passes = sum(1 for t in city.stranger_starts if t + 13.0 <= seconds)
        stranger = stranger_report(session, ctx.counters, plan=city.stranger_plan, passes=passes)
    out: dict[str, Any] = {
        "seconds": round(seconds, 1),
        "cameras": city.cameras,
        "cameras_streaming": city.streaming,
        "frames": frames,
        "events": events,
        "alerts": len(alert_rows),
        "alerts_by_kind": dict(sorted(by_kind.items())),
        "camera_health": health,
        # What the streaming cameras recorded and what alerts keep of it (clips_not_recorded: none kept).
        "footage": footage,
        # The seed story: each face alert, the unit sent to it and how it ended.
        "face_story": {"plan": city.face_story, "entry_id": city.wanted_entry_id, "alerts": told},
        # The man on no watch list: what the face pipeline examined of him, and what it kept (nothing).
        "stranger": stranger,
    }
    for name in REPORT_COUNTERS:
        out[name] = ctx.counters.get(name, 0)
    return out


async def run_headless(ctx: Context, city: CityPlan, *, seconds: float) -> dict[str, Any]:
    """Runs the city for `seconds` through the server's consumers and the worker runtime."""
    from safecity.server import create_app

    app = create_app(ctx)
    started = time.monotonic()
    async with app.router.lifespan_context(app):
        crew = await start_crew(ctx, city, app, dispatch_after_s=2.0)
        runtime = WorkerRuntime(ctx)
        await asyncio.to_thread(runtime.start)
        with Progress(
            TextColumn("[bold]synthetic city"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("run", total=seconds, status="")
            while (elapsed := time.monotonic() - started) < seconds:
                count = ctx.counters.get
                status = (
                    f"frames {runtime.frames} · reads {count('plate_reads', 0)} · "
                    f"violations {count('violations', 0)} · alerts {count('alerts', 0)} · "
                    f"face matches {count('face_matches', 0)} · dispatches {count('dispatches', 0)}"
                )
                progress.update(task, completed=elapsed, status=status)
                await asyncio.sleep(0.5)
        await stop_crew(crew)
        await asyncio.to_thread(runtime.stop)
        await ctx.settle(timeout=60)
        return report(ctx, seconds=time.monotonic() - started, frames=runtime.frames, city=city)


def data_dir_for(path: Path | None, settings: Settings) -> Path:
    """Returns the demo's data folder: the one given, else `demo-data` beside the configured one."""
    return path or settings.data_dir.parent / "demo-data"
