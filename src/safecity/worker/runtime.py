"""The camera worker runtime: the cameras this worker holds a lease on, their pipelines, their events.

`WorkerRuntime(ctx)` joins the cluster's camera leases (`worker/leases.py`: a fair share of the
enabled cameras, or the cameras it is pinned to), opens each camera it is given with
`video.stream.CameraStream` (real cameras and the synthetic city alike) and closes each it hands
over, runs the pipelines of the camera's type on each analysed frame, and publishes what they return
through the local spool (`worker/spool.py`), so nothing is lost while the bus is down. Embedded, the
one process holds every camera through the same code. Health changes become `CameraHealth` events
with their evidence frame, and so does a pipeline that stalls or fails on every frame, or that runs
with less than its settings ask for (`degraded`: a model file missing or corrupt, named with its fix).
Only events leave: never raw frames, except the latest picture per camera kept in memory, and the
camera's own compressed packets relayed to the video wall while someone watches (`live/relay.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import cv2
from av import Packet
from prometheus_client import start_http_server
from pydantic import ValidationError

from safecity.cameras import service as cameras
from safecity.core import keys
from safecity.core.bus.kv import open_kv
from safecity.core.camera_config import CameraConfig
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.errors import NotFound, SafeCityError, Unavailable
from safecity.core.events import CameraHealth, Event, HealthState
from safecity.core.metrics import FRAMES, PIPELINE_FAULTS, REGISTRY
from safecity.enforcement.calibrations.models import CalibrationChanged
from safecity.enforcement.calibrations.replication import WorkerCalibrations
from safecity.enforcement.models import SignalPhaseChanged
from safecity.live.relay import LiveRelay, Substream
from safecity.recordings.recorder import RecorderPool, SegmentRecorder
from safecity.video.health import HealthChange
from safecity.video.sources import Frame, PacketCallback
from safecity.video.stream import CameraStream, StreamGroup
from safecity.vision.plates import PlateReader
from safecity.worker.anpr import AnprPipeline, CameraSetup
from safecity.worker.leases import LeaseKeeper, LeaseTimings, WorkerRecord
from safecity.worker.spool import Spool, SpoolingPublisher

log = logging.getLogger(__name__)

SPOOL_FILE = "worker-spool.db"


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


def follow(ctx: Context, types: list[str], handler: Callable[[Event], None]) -> Callable[[], None]:
    """Subscribes `handler` from a worker thread; returns what unsubscribes it again (from any thread)."""
    loop = ctx.bus.loop
    assert loop is not None
    subscription = asyncio.run_coroutine_threadsafe(ctx.bus.subscribe(types, handler), loop).result(10)

    def unsubscribe() -> None:
        if not loop.is_closed():
            with contextlib.suppress(Exception):  # the bus is closing: the subscription goes with it
                asyncio.run_coroutine_threadsafe(subscription.close(), loop).result(10)

    return unsubscribe


def default_pipelines(ctx: Context, camera: CameraSetup) -> list[Pipeline]:
    """Returns the pipelines for a camera's type: ANPR for anpr cameras, faces for face cameras."""
    fps = camera.analysis.analysis_fps
    if camera.kind == "anpr":
        reader = PlateReader(region=camera.region)
        # The audited calibrations, followed before they are loaded so no change made between is missed.
        calibrations = WorkerCalibrations()
        unfollow = (
            follow(ctx, [CalibrationChanged.type], calibrations.on_event)
            if ctx.bus.loop is not None
            else None
        )
        with ctx.db.session() as session:
            calibrations.load(session)
        pipeline = AnprPipeline(
            camera, ctx.media, reader=reader, fps=fps, calibrations=calibrations.speed_for
        )
        if unfollow is not None:
            pipeline.on_close.append(unfollow)
        if camera.analysis.junction and ctx.bus.loop is not None:
            # The signal controller's feed (via the centre) beside what the camera reads off the lamp.
            pipeline.on_close.append(follow(ctx, [SignalPhaseChanged.type], pipeline.signals.on_event))
        return [pipeline]
    if camera.kind == "face":
        from safecity.worker.faces import FacePipelineRunner

        return [FacePipelineRunner(ctx, camera, fps=fps)]
    return []


@dataclass(frozen=True)
class CameraEntry:
    """A camera as the registry describes it: what its pipelines need and how to reach it."""

    setup: CameraSetup
    url: str
    username: str | None
    password: str | None
    # Why the stored configuration cannot be used (edited outside SafeCity): the camera is reported, not run.
    problem: str | None = None
    substream_url: str = ""

    @property
    def fingerprint(self) -> str:
        """Returns everything that, changed in the registry, needs the camera restarted."""
        s = self.setup
        config = CameraConfig(analysis=s.analysis, zones=s.zones, lines=s.lines).stored()
        return json.dumps(
            [
                self.url,
                self.username,
                self.password,
                s.kind,
                config,
                s.region,
                self.problem,
                self.substream_url,
            ],
            sort_keys=True,
            default=str,
        )


@dataclass
class _Running:
    """One open camera: its stream, pipelines and what the stall watch knows of it."""

    entry: CameraEntry
    stream: CameraStream
    pipelines: list[Pipeline]
    lock: threading.Lock = field(default_factory=threading.Lock)
    opened: float = field(default_factory=time.monotonic)
    frames_seen: int = 0
    progress: float = field(default_factory=time.monotonic)
    stream_state: HealthState | None = None
    failing_since: float | None = None
    failures: int = 0
    last_error: str = ""
    fault: tuple[HealthState, datetime] | None = None
    # Why the pipelines run with less than the camera's settings ask for: the camera's health says so
    # whenever its picture is fine.
    degraded: str | None = None


def worker_identity(ctx: Context) -> tuple[str, str, int]:
    """Returns this worker's id (the setting, else <host>-<pid>), host name and process id."""
    host, pid = socket.gethostname(), os.getpid()
    return ctx.settings.worker_id or f"{host}-{pid}", host, pid


class WorkerRuntime:
    """Runs the pipelines of the cameras this worker holds, and publishes their events."""

    def __init__(
        self,
        ctx: Context,
        *,
        camera_ids: list[str] | None = None,
        pipelines: PipelineFactory = default_pipelines,
        snapshot_every_s: float = 1.0,
        record: bool = True,
        registry_refresh_s: float = 5.0,
        live: bool = True,
    ) -> None:
        """`camera_ids` pins this worker to those cameras (still leased); None takes a fair share."""
        self.ctx = ctx
        self.camera_ids = camera_ids
        self.pipelines_for = pipelines
        self.snapshot_every_s = snapshot_every_s
        self.registry_refresh_s = registry_refresh_s
        self.group = StreamGroup()
        # Recording remuxes the packets analysis already receives: no second connection to a camera.
        self.recorders = RecorderPool(ctx) if record else None
        # Live video from the same packets again, sent only while some serve has a viewer.
        self.relay = LiveRelay(ctx.bus) if live else None
        self.registry: dict[str, CameraEntry] = {}
        self._known: set[str] = set()
        self.running: dict[str, _Running] = {}
        self.keeper: LeaseKeeper | None = None
        self.publisher = SpoolingPublisher(
            ctx.bus,
            Spool(
                (ctx.settings.worker_spool_dir or ctx.settings.data_dir) / SPOOL_FILE,
                max_events=ctx.settings.worker_spool_max_events,
            ),
        )
        self._registry_read = 0.0
        self._running_lock = threading.Lock()
        self._last_snapshot: dict[str, float] = {}
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.frames = 0

    @property
    def published(self) -> int:
        """Returns how many events went to the bus, directly or re-sent from the spool."""
        return self.publisher.published + self.publisher.resent

    @property
    def pipelines(self) -> dict[str, list[Pipeline]]:
        """Returns the pipelines of each open camera."""
        with self._running_lock:
            return {camera_id: r.pipelines for camera_id, r in self.running.items()}

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> int:
        """Joins the camera leases and opens the cameras this worker is given; returns how many.

        Call from a thread other than the bus's loop, after the bus has started.
        """
        loop = self.ctx.bus.loop
        if loop is None:
            raise RuntimeError("start the bus before the worker runtime")
        self.publisher.start()
        if self.relay is not None:
            asyncio.run_coroutine_threadsafe(self.relay.start(), loop).result(10)
        self._load_registry()
        if self.camera_ids is not None:
            self._check_pinned(self.camera_ids)
        worker_id, host, pid = worker_identity(self.ctx)
        now = utcnow()
        me = WorkerRecord(
            id=worker_id,
            host=host,
            pid=pid,
            capacity=self.ctx.settings.worker_capacity,
            pinned=list(self.camera_ids or []),
            started=now,
            heartbeat_at=now,
        )
        settings = self.ctx.settings
        timings = LeaseTimings(
            settings.lease_heartbeat_s, settings.lease_ttl_s, settings.lease_handover_per_round
        )

        async def join() -> LeaseKeeper:
            kv = await open_kv(self.ctx.bus, settings.lease_bucket)
            keeper = LeaseKeeper(
                kv,
                me,
                timings,
                cameras=self._wanted,
                open_camera=self._open_async,
                close_camera=self._close_async,
            )
            await keeper.start()
            return keeper

        self.keeper = asyncio.run_coroutine_threadsafe(join(), loop).result()
        self._ticker = threading.Thread(target=self._tick_loop, name="pipeline-ticker", daemon=True)
        self._ticker.start()
        log.info("worker %s started with %d cameras", worker_id, len(self.running))
        return len(self.running)

    def stop(self) -> None:
        """Hands every camera back (ending open tracks, publishing what they saw) and stops."""
        self._stop.set()
        loop = self.ctx.bus.loop
        if self.keeper is not None and loop is not None and loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self.keeper.leave(), loop).result(60)
            except Exception as exc:
                log.warning("worker could not hand its cameras back cleanly: %s", exc)
        for camera_id in list(self.running):
            self.close_camera(camera_id)
        if self.relay is not None and loop is not None and loop.is_running():
            with contextlib.suppress(Exception):  # stopping: the subscriptions go with the bus anyway
                asyncio.run_coroutine_threadsafe(self.relay.stop(), loop).result(10)
        if self._ticker is not None:
            self._ticker.join(5)
        if self.recorders is not None:
            self.recorders.close()
        self.publisher.stop()
        self.publisher.spool.close()

    # -- the registry ---------------------------------------------------------------------------

    def _load_registry(self) -> None:
        """Reads the enabled cameras with a stream from the registry."""
        with self.ctx.db.session() as session:
            rows = cameras.list_cameras(session, limit=1_000_000, with_credentials=True)
            entries = {}
            for c in rows:
                if not (c.enabled and c.stream_url):
                    continue
                problem = None
                try:
                    config = c.config
                except ValidationError as exc:
                    config, problem = (
                        CameraConfig(),
                        "configuration invalid: "
                        + "; ".join(
                            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                        ),
                    )
                setup = CameraSetup(
                    c.id,
                    c.kind,
                    config.analysis,
                    config.lines,
                    config.zones,
                    self.ctx.settings.plate_region,
                    config_version=c.config_version,
                )
                entries[c.id] = CameraEntry(
                    setup, c.stream_url, c.username, c.password, problem, c.substream_url or ""
                )
            self._known = {c.id for c in rows}
        self.registry = entries
        self._registry_read = time.monotonic()

    def _check_pinned(self, camera_ids: list[str]) -> None:
        unknown = sorted(set(camera_ids) - self._known)
        if unknown:
            raise NotFound(
                f"no camera {', '.join(unknown)} in the registry",
                hint="`safecity cameras list` shows the registered cameras",
            )
        for camera_id in camera_ids:
            if camera_id not in self.registry:
                log.warning("camera %s is disabled or has no stream: nothing to analyse yet", camera_id)

    async def _wanted(self) -> Collection[str]:
        """Returns the cameras to analyse (re-reading the registry every few seconds)."""
        if time.monotonic() - self._registry_read >= self.registry_refresh_s:
            before = self.registry
            try:
                await asyncio.to_thread(self._load_registry)
            except Exception as exc:
                log.warning("camera registry unreadable, keeping the last list: %s", exc)
            else:
                await self._restart_changed(before)
        wanted = set(self.registry)
        return wanted & set(self.camera_ids) if self.camera_ids is not None else wanted

    async def _restart_changed(self, before: dict[str, CameraEntry]) -> None:
        for camera_id in list(self.running):
            old, new = before.get(camera_id), self.registry.get(camera_id)
            if old is not None and new is not None and old.fingerprint != new.fingerprint:
                log.info("camera %s changed in the registry; restarting it", camera_id)
                await asyncio.to_thread(self.close_camera, camera_id)
                if not await asyncio.to_thread(self.open_camera, camera_id) and self.keeper is not None:
                    self.keeper.opened.discard(camera_id)  # the next round tries again

    # -- one camera -----------------------------------------------------------------------------

    async def _open_async(self, camera_id: str) -> bool:
        return await asyncio.to_thread(self.open_camera, camera_id)

    async def _close_async(self, camera_id: str) -> None:
        await asyncio.to_thread(self.close_camera, camera_id)

    def open_camera(self, camera_id: str) -> bool:
        """Starts analysing one camera; a camera whose analysis cannot start is reported offline."""
        entry = self.registry.get(camera_id)
        if entry is None or self._stop.is_set():
            return False
        with self._running_lock:
            if camera_id in self.running:
                return True
        setup = entry.setup
        if entry.problem is not None:
            log.error("camera %s: analysis cannot start: %s", camera_id, entry.problem)
            self._report(camera_id, "offline", f"analysis cannot start: {entry.problem}"[:480], utcnow())
            return False
        try:
            pipes = self.pipelines_for(self.ctx, setup)
        except Exception as exc:
            log.error("camera %s: analysis cannot start on this worker: %s", camera_id, exc)
            # An error meant for a person (a plug-in not installed) says what to do; others name their type.
            said = str(exc) if isinstance(exc, SafeCityError) else f"{type(exc).__name__}: {exc}"
            detail = f"analysis cannot start: {said}"
            self._report(camera_id, "offline", detail[:480], utcnow())
            return False
        degraded = "; ".join(d for p in pipes if (d := getattr(p, "degraded", None))) or None
        if degraded is not None:
            log.error("camera %s: analysing with less than its settings ask for: %s", camera_id, degraded)
            self._report(camera_id, "degraded", degraded[:480], utcnow())
        analysis_fps = setup.analysis.analysis_fps if pipes else None
        # Synthetic cameras too: their source encodes what it renders when a recorder asks for packets.
        recorder = self.recorders.for_camera(camera_id) if self.recorders is not None else None
        stream = CameraStream(
            camera_id,
            entry.url,
            analysis_fps=analysis_fps,
            decode=setup.analysis.decode.value,
            motion_gate=setup.analysis.motion_gate,
            on_frame=self._on_frame(camera_id),
            on_health=self._on_health,
            on_packet=self._packets(camera_id, recorder),
            username=entry.username,
            password=entry.password,
        )
        if self.relay is not None:
            substream = (
                Substream(entry.substream_url, entry.username, entry.password)
                if entry.substream_url
                else None
            )
            self.relay.hold(camera_id, substream=substream)
        with self._running_lock:
            self.running[camera_id] = _Running(entry, stream, pipes, degraded=degraded)
        self.group.add(stream, start=True)
        return True

    def close_camera(self, camera_id: str) -> None:
        """Stops analysing one camera and ends its open tracks (publishing what they saw)."""
        with self._running_lock:
            running = self.running.pop(camera_id, None)
        if running is None:
            return
        self.group.remove(camera_id)
        if self.relay is not None:
            self.relay.release(camera_id)
        far_future = utcnow() + timedelta(days=366)
        # A pipeline stuck in a frame keeps its lock: do not wait for it for ever.
        if running.lock.acquire(timeout=5):
            try:
                for pipe in running.pipelines:
                    try:
                        self._publish(pipe.tick(far_future))
                    except Exception as exc:
                        log.warning("camera %s: closing its pipeline failed: %s", camera_id, exc)
            finally:
                running.lock.release()
        for pipe in running.pipelines:
            close = getattr(pipe, "close", None)
            if close is not None:
                close()  # its subscriptions end with it: a camera that moves away leaves nothing behind

    # -- frames, health, events -----------------------------------------------------------------

    def _packets(self, camera_id: str, recorder: SegmentRecorder | None) -> PacketCallback | None:
        """Returns what each demuxed packet goes to: the recorder first, then the live relay."""
        live = self.relay.tap(camera_id) if self.relay is not None else None
        if recorder is None or live is None:
            return recorder.feed if recorder is not None else live
        record = recorder.feed

        def both(packet: Packet) -> None:
            record(packet)
            live(packet)

        return both

    def _on_frame(self, camera_id: str) -> Callable[[Frame], None]:
        def handle(frame: Frame) -> None:
            running = self.running.get(camera_id)
            if running is None:
                return
            self.frames += 1
            FRAMES.inc()
            self.ctx.count("frames")
            self._snapshot(camera_id, frame)
            with running.lock:
                for pipe in running.pipelines:
                    try:
                        events = pipe.process(frame)
                    except Exception as exc:
                        self._pipeline_failed(camera_id, running, exc)
                        continue
                    running.failing_since = None
                    running.failures = 0
                    self._publish(events)

        return handle

    def _pipeline_failed(self, camera_id: str, running: _Running, exc: Exception) -> None:
        running.failures += 1
        running.failing_since = running.failing_since or time.monotonic()
        running.last_error = f"{type(exc).__name__}: {exc}"
        if running.failures == 1:
            log.exception("camera %s: pipeline failed on a frame", camera_id)
        elif running.failures % 100 == 0:
            log.error("camera %s: pipeline failed on %d frames in a row", camera_id, running.failures)

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
        if self.relay is not None:
            self.relay.on_health(change.camera_id, change.state, change.detail)
        running = self.running.get(change.camera_id)
        if running is not None:
            running.stream_state = change.state
            running.progress = max(running.progress, time.monotonic())
        ref = None
        if change.evidence is not None and change.state != "online":
            ref = self.ctx.media.put_image(change.evidence)
        event = change.to_event(ref)
        if change.state == "online" and running is not None and running.degraded is not None:
            # The picture is fine, the analysis is not: "online" would hide what the operator must fix.
            event = CameraHealth(
                key=keys.camera_health(change.camera_id, "degraded", change.since),
                camera_id=change.camera_id,
                at=change.since,
                state="degraded",
                detail=running.degraded[:480],
                since=change.since,
                fps=change.fps,
            )
        self._publish([event])

    def _report(self, camera_id: str, state: HealthState, detail: str, since: datetime) -> None:
        event = CameraHealth(
            key=keys.camera_health(camera_id, state, since),
            camera_id=camera_id,
            at=since,
            state=state,
            detail=detail,
            since=since,
        )
        self._publish([event])

    def _publish(self, events: list[Event]) -> None:
        for event in events:
            self.publisher.publish(event)

    # -- upkeep: tracks that end, recordings, pipelines that stall ------------------------------

    def _tick_loop(self) -> None:
        while not self._stop.wait(1.0):
            now = utcnow()
            if self.recorders is not None:
                try:
                    self.recorders.tick()
                except Exception as exc:
                    log.warning("recorder upkeep failed: %s", exc)
            with self._running_lock:
                running = list(self.running.items())
            for camera_id, camera in running:
                self._watch(camera_id, camera)
                if not camera.lock.acquire(blocking=False):
                    continue  # busy with a frame (or stuck in one: the watch reports that)
                try:
                    for pipe in camera.pipelines:
                        try:
                            self._publish(pipe.tick(now))
                        except Exception as exc:
                            log.warning("pipeline tick failed on %s: %s", camera_id, exc)
                finally:
                    camera.lock.release()

    def _watch(self, camera_id: str, camera: _Running) -> None:
        """Reports a camera whose pipeline stopped producing, and its recovery."""
        mono = time.monotonic()
        stall_s = self.ctx.settings.pipeline_stall_s
        if camera.stream.frames_read != camera.frames_seen:
            camera.frames_seen = camera.stream.frames_read
            camera.progress = mono
        silent = mono - max(camera.progress, camera.opened)
        fault: tuple[HealthState, str, float] | None = None
        # A camera that is offline or reconnecting says so itself; silence otherwise is a stall.
        if camera.stream_state not in ("offline", "reconnecting") and silent >= stall_s:
            fault = ("offline", f"pipeline stalled: no frame analysed for {silent:.0f} s", silent)
        elif camera.failing_since is not None and mono - camera.failing_since >= stall_s:
            failing = mono - camera.failing_since
            detail = f"pipeline failing on every frame for {failing:.0f} s: {camera.last_error}"
            fault = ("offline", detail[:480], failing)
        if fault is not None and camera.fault is None:
            state, detail, for_s = fault
            since = utcnow() - timedelta(seconds=for_s)
            camera.fault = (state, since)
            PIPELINE_FAULTS.inc()
            log.error("camera %s: %s", camera_id, detail)
            self._report(camera_id, state, detail, since)
        elif fault is None and camera.fault is not None:
            camera.fault = None
            log.warning("camera %s: pipeline analysing again", camera_id)
            # Back to what the camera's own picture says (online, or a fault such as covered).
            health = camera.stream.health
            state, detail = health.state, health.detail
            if state == "online" and camera.degraded is not None:
                state, detail = "degraded", camera.degraded[:480]
            elif state == "online":
                detail = "pipeline analysing again"
            self._report(camera_id, state, detail, utcnow())


def start_pipelines_hook(camera_ids: list[str] | None = None) -> Callable[[Context], Awaitable[None]]:
    """Returns a server start-up hook that runs the camera pipelines in this process (embedded)."""

    async def hook(ctx: Context) -> None:
        runtime = WorkerRuntime(ctx, camera_ids=camera_ids)
        await asyncio.to_thread(runtime.start)
        ctx.runtime = runtime

    return hook


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Serves this process's Prometheus metrics on `host:port` (a worker has no web server of its own)."""
    try:
        start_http_server(port, addr=host, registry=REGISTRY)
    except OSError as exc:
        raise Unavailable(
            f"cannot serve worker metrics on port {port}: {exc}",
            hint="give each worker on a host its own SAFECITY_WORKER_METRICS_PORT, or 0 for none",
        ) from exc
    log.info("worker metrics on http://0.0.0.0:%d/metrics", port)


async def run_worker(ctx: Context, *, camera_ids: list[str] | None = None) -> None:
    """Runs camera pipelines until interrupted or terminated, publishing to the configured bus."""
    await ctx.bus.start()
    if ctx.settings.worker_metrics_port:
        serve_metrics(ctx.settings.worker_metrics_port, ctx.settings.worker_metrics_host)
    runtime = WorkerRuntime(ctx, camera_ids=camera_ids)
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if main is not None:
        # A service manager stops with SIGTERM: hand the cameras back rather than leave them dark.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, main.cancel)
    try:
        await asyncio.to_thread(runtime.start)
        while True:
            await asyncio.sleep(3600)
    except (asyncio.CancelledError, KeyboardInterrupt):
        pass
    finally:
        await asyncio.to_thread(runtime.stop)
        with contextlib.suppress(Exception):
            await ctx.bus.close()
