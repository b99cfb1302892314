"""The camera worker runtime: one stream per camera, its pipelines, and the events they publish.

`WorkerRuntime(ctx)` loads the enabled cameras from the registry, opens each with
`video.stream.CameraStream` (real cameras and the synthetic city alike), runs the pipelines of the
camera's type on each analysed frame, and publishes what they return on the bus. Health changes
become `CameraHealth` events with their evidence frame. Only events leave: never raw frames, except
the latest picture per camera kept in memory for the operators' video wall.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

import cv2

from safecity.cameras import service as cameras
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import Event
from safecity.core.metrics import FRAMES
from safecity.enforcement.models import SignalPhaseChanged
from safecity.recordings.recorder import RecorderPool
from safecity.video.health import HealthChange
from safecity.video.sources import Frame
from safecity.video.stream import CameraStream, StreamGroup
from safecity.vision.plates import PlateReader
from safecity.worker.anpr import AnprPipeline, CameraSetup

log = logging.getLogger(__name__)


class Pipeline(Protocol):
    """Analyses a camera's frames; returns the events to publish."""

    def process(self, frame: Frame) -> list[Event]: ...

    def tick(self, now: datetime) -> list[Event]: ...


PipelineFactory = Callable[[Context, CameraSetup], list[Pipeline]]

_snapshots: dict[str, bytes] = {}
_snapshots_lock = threading.Lock()


def latest_snapshot(camera_id: str) -> bytes | None:
    """Returns the newest JPEG picture of a camera analysed in this process, if any."""
    with _snapshots_lock:
        return _snapshots.get(camera_id)


def default_pipelines(ctx: Context, camera: CameraSetup) -> list[Pipeline]:
    """Returns the pipelines for a camera's type: ANPR for anpr cameras, faces for face cameras."""
    fps = float(camera.analysis.get("analysis_fps", 5.0))
    if camera.kind == "anpr":
        reader = PlateReader(region=camera.region)
        pipeline = AnprPipeline(camera, ctx.media, reader=reader, fps=fps)
        if camera.analysis.get("junction") and ctx.bus.loop is not None:
            # The signal controller's feed (via the centre) beside what the camera reads off the lamp.
            subscribe = ctx.bus.subscribe([SignalPhaseChanged.type], pipeline.signals.on_event)
            asyncio.run_coroutine_threadsafe(subscribe, ctx.bus.loop).result(10)
        return [pipeline]
    if camera.kind == "face":
        from safecity.worker.faces import FacePipelineRunner

        return [FacePipelineRunner(ctx, camera, fps=fps)]
    return []


class WorkerRuntime:
    """Runs the pipelines of many cameras and publishes their events."""

    def __init__(
        self,
        ctx: Context,
        *,
        camera_ids: list[str] | None = None,
        pipelines: PipelineFactory = default_pipelines,
        snapshot_every_s: float = 1.0,
        record: bool = True,
    ) -> None:
        self.ctx = ctx
        self.camera_ids = camera_ids
        self.pipelines_for = pipelines
        self.snapshot_every_s = snapshot_every_s
        self.group = StreamGroup()
        # Recording remuxes the packets analysis already receives: no second connection to a camera.
        self.recorders = RecorderPool(ctx) if record else None
        self.pipelines: dict[str, list[Pipeline]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._last_snapshot: dict[str, float] = {}
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.frames = 0
        self.published = 0

    def start(self) -> int:
        """Opens every enabled camera with a stream; returns how many were started."""
        with self.ctx.db.session() as session:
            rows = cameras.list_cameras(session)
            setups = [
                (
                    CameraSetup(
                        c.id,
                        c.kind,
                        dict(c.analysis),
                        list(c.lines),
                        list(c.zones),
                        self.ctx.settings.plate_region,
                    ),
                    c.stream_url,
                    c.username,
                    c.password,
                )
                for c in rows
                if c.enabled and c.stream_url and (self.camera_ids is None or c.id in self.camera_ids)
            ]
        for setup, url, username, password in setups:
            self.pipelines[setup.camera_id] = self.pipelines_for(self.ctx, setup)
            self._locks[setup.camera_id] = threading.Lock()
            analysis_fps = (
                float(setup.analysis.get("analysis_fps", 5.0)) if self.pipelines[setup.camera_id] else None
            )
            recorded = self.recorders is not None and not url.startswith("synthetic://")
            recorder = self.recorders.for_camera(setup.camera_id) if recorded and self.recorders else None
            stream = CameraStream(
                setup.camera_id,
                url,
                analysis_fps=analysis_fps,
                decode=setup.analysis.get("decode"),
                motion_gate=bool(setup.analysis.get("motion_gate", True)),
                on_frame=self._on_frame(setup.camera_id),
                on_health=self._on_health,
                on_packet=recorder.feed if recorder is not None else None,
                username=username,
                password=password,
            )
            self.group.add(stream)
        self.group.start()
        self._ticker = threading.Thread(target=self._tick_loop, name="pipeline-ticker", daemon=True)
        self._ticker.start()
        log.info("worker started %d cameras", len(setups))
        return len(setups)

    def stop(self) -> None:
        """Stops every stream and ends open tracks (publishing what they saw)."""
        self._stop.set()
        self.group.stop()
        if self._ticker is not None:
            self._ticker.join(5)
        if self.recorders is not None:
            self.recorders.close()
        far_future = utcnow().replace(year=utcnow().year + 1)
        for camera_id, pipes in self.pipelines.items():
            with self._locks[camera_id]:
                for pipe in pipes:
                    self._publish(pipe.tick(far_future))

    def _on_frame(self, camera_id: str) -> Callable[[Frame], None]:
        def handle(frame: Frame) -> None:
            self.frames += 1
            FRAMES.inc()
            self.ctx.count("frames")
            self._snapshot(camera_id, frame)
            with self._locks[camera_id]:
                for pipe in self.pipelines[camera_id]:
                    self._publish(pipe.process(frame))

        return handle

    def _snapshot(self, camera_id: str, frame: Frame) -> None:
        last = self._last_snapshot.get(camera_id, 0.0)
        if frame.pts_seconds - last < self.snapshot_every_s and last <= frame.pts_seconds:
            return
        self._last_snapshot[camera_id] = frame.pts_seconds
        image = frame.image
        scale = min(1.0, 640 / image.shape[1])
        small = cv2.resize(image, None, fx=scale, fy=scale) if scale < 1 else image
        ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 75])
        if ok:
            with _snapshots_lock:
                _snapshots[camera_id] = buf.tobytes()

    def _on_health(self, change: HealthChange) -> None:
        ref = None
        if change.evidence is not None and change.state != "online":
            ref = self.ctx.media.put_image(change.evidence)
        self._publish([change.to_event(ref)])

    def _publish(self, events: list[Event]) -> None:
        for event in events:
            try:
                self.ctx.bus.publish_threadsafe(event)
                self.published += 1
            except Exception as exc:  # the bus is down: keep analysing, say so
                log.error("could not publish %s from %s: %s", event.type, event.camera_id, exc)

    def _tick_loop(self) -> None:
        while not self._stop.wait(1.0):
            now = utcnow()
            if self.recorders is not None:
                try:
                    self.recorders.tick()
                except Exception as exc:
                    log.warning("recorder upkeep failed: %s", exc)
            for camera_id, pipes in self.pipelines.items():
                with self._locks[camera_id]:
                    for pipe in pipes:
                        try:
                            self._publish(pipe.tick(now))
                        except Exception as exc:
                            log.warning("pipeline tick failed on %s: %s", camera_id, exc)


def start_pipelines_hook(camera_ids: list[str] | None = None) -> Callable[[Context], Awaitable[None]]:
    """Returns a server start-up hook that runs the camera pipelines in this process (embedded)."""

    async def hook(ctx: Context) -> None:
        runtime = WorkerRuntime(ctx, camera_ids=camera_ids)
        await asyncio.to_thread(runtime.start)
        ctx.runtime = runtime

    return hook


async def run_worker(ctx: Context, *, camera_ids: list[str] | None = None) -> None:
    """Runs camera pipelines until interrupted, publishing to the configured bus (city scale)."""
    await ctx.bus.start()
    runtime = WorkerRuntime(ctx, camera_ids=camera_ids)
    await asyncio.to_thread(runtime.start)
    try:
        while True:
            await asyncio.sleep(3600)
    except (asyncio.CancelledError, KeyboardInterrupt):
        pass
    finally:
        await asyncio.to_thread(runtime.stop)
        with contextlib.suppress(Exception):
            await ctx.bus.close()
