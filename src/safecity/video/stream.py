"""One thread per camera: connect, read, sample, gate on motion, watch health, reconnect.

    def analyse(frame: Frame) -> None: ...
    def publish(change: HealthChange) -> None: ...

    group = StreamGroup()
    group.add(CameraStream("cam-17", "rtsp://10.0.0.7/stream1", analysis_fps=5, on_frame=analyse,
                           on_health=publish))
    group.start()
    ...
    group.stop()

A camera that fails is retried with exponential back-off and jitter (so a thousand cameras behind
one failed switch do not reconnect in lock-step) and never blocks or kills the others; errors from
the callbacks are logged and the camera carries on.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy.typing as npt

from safecity.core.clock import utcnow
from safecity.core.errors import SafeCityError
from safecity.core.events import HealthState
from safecity.video.health import HealthChange, HealthMonitor, HealthThresholds
from safecity.video.motion import MotionGate
from safecity.video.sampling import Sampler
from safecity.video.sources import (
    CameraUnreachable,
    Decode,
    Frame,
    FrameSource,
    NotVideo,
    PacketCallback,
    SourceInfo,
    StreamCorrupt,
    Transport,
    open_source,
    redact,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Waits between reconnection attempts: `initial_s`, doubling up to `max_s`, ± `jitter` share."""

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.25

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Returns the seconds to wait before reconnection attempt number `attempt` (0 first)."""
        base = min(self.max_s, self.initial_s * self.factor ** min(attempt, 32))
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base * (1 + spread))


class CameraStream:
    """Runs one camera in its own thread and reports frames to analyse and health changes."""

    def __init__(
        self,
        camera_id: str,
        url: str,
        *,
        analysis_fps: float | None = 5.0,
        decode: Decode | None = None,
        roi: npt.ArrayLike | None = None,
        motion_gate: bool = True,
        on_frame: Callable[[Frame], None] | None = None,
        on_health: Callable[[HealthChange], None] | None = None,
        on_packet: PacketCallback | None = None,
        backoff: Backoff | None = None,
        username: str | None = None,
        password: str | None = None,
        transport: Transport = "tcp",
        timeout_s: float = 5.0,
        thresholds: HealthThresholds | None = None,
        expected_fps: float | None = None,
        realtime_files: bool = True,
    ) -> None:
        """`analysis_fps=None` watches health only; `decode` defaults to key-frames for that, else all."""
        self.camera_id = camera_id
        self.url = url
        self.analysis_fps = analysis_fps
        self.decode: Decode = decode or ("keyframes" if analysis_fps is None else "all")
        self.on_frame = on_frame
        self.on_health = on_health
        self.on_packet = on_packet
        self.backoff = backoff or Backoff()
        self.username, self.password = username, password
        self.transport: Transport = transport
        self.timeout_s = timeout_s
        self.realtime_files = realtime_files
        self.health = HealthMonitor(camera_id, thresholds, expected_fps=expected_fps)
        self.sampler = Sampler(analysis_fps) if analysis_fps else None
        self.gate = MotionGate(roi) if motion_gate and analysis_fps else None
        self.info: SourceInfo | None = None
        self.frames_read = 0
        self.frames_analysed = 0
        self.attempts = 0
        self.lag_s = 0.0  # how far behind its own timestamp the latest frame was handled
        self.max_lag_s = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rng = random.Random()

    @property
    def state(self) -> HealthState:
        """Returns the camera's current health state."""
        return self.health.state

    def start(self) -> None:
        """Starts the camera's thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"camera-{self.camera_id}", daemon=True)
            self._thread.start()

    def stop(self, wait_s: float | None = None) -> None:
        """Asks the thread to stop and waits for it (at most the read time-out plus a second)."""
        self._stop.set()
        self.join(self.timeout_s + 1.0 if wait_s is None else wait_s)

    def join(self, wait_s: float) -> None:
        """Waits up to `wait_s` for the thread to end."""
        if self._thread is not None:
            self._thread.join(wait_s)

    def signal_stop(self) -> None:
        """Asks the thread to stop without waiting (to stop many cameras at once)."""
        self._stop.set()

    # -- the camera's thread --------------------------------------------------------------------

    def _run(self) -> None:
        """Connects and reads until stopped, reconnecting with back-off after each failure."""
        failures = 0
        while not self._stop.is_set():
            try:
                if self._read_once():
                    failures = 0
                    continue  # a file that ended: play it again at once
            except SafeCityError as error:
                self._report(self.health.observe_failure(error))
            except Exception as error:  # a bug or an FFmpeg surprise must not end the camera's thread
                log.exception("camera %s: unexpected error", self.camera_id)
                self._report(self.health.observe_failure(StreamCorrupt(f"{redact(self.url)}: {error}")))
            if self._stop.is_set():
                break
            self._wait(self.backoff.delay(failures, self._rng))
            failures += 1

    def _read_once(self) -> bool:
        """Reads one connection to its end; returns True if it was a file that simply ended."""
        self.attempts += 1
        source = open_source(
            self.url,
            username=self.username,
            password=self.password,
            timeout_s=self.timeout_s,
            transport=self.transport,
            decode=self.decode,
            on_packet=self.on_packet,
            realtime=self.realtime_files,
        )
        try:
            self.info = source.info
            if self.health.expected_fps is None and source.info.fps and source.info.live:
                self.health.expected_fps = source.info.fps
            if self.sampler:
                self.sampler.reset()
            read = 0
            for frame in self._frames(source):
                read += 1
                self._handle(frame)
            if self._stop.is_set():
                return False
            if not source.info.live:
                if read == 0:
                    raise NotVideo(f"{redact(self.url)} holds no picture SafeCity can decode")
                return True
            raise CameraUnreachable(
                f"{redact(self.url)} ended the stream",
                hint="the camera closed the connection; it will be retried",
            )
        finally:
            source.close()

    def _frames(self, source: FrameSource) -> Iterator[Frame]:
        """Yields the source's frames until the stream ends or the camera is stopped."""
        for frame in source.frames():
            if self._stop.is_set():
                return
            yield frame

    def _handle(self, frame: Frame) -> None:
        """Feeds one frame to health, and to analysis if sampled and moving."""
        self.frames_read += 1
        self.lag_s = (utcnow() - frame.wall_time).total_seconds()
        self.max_lag_s = max(self.max_lag_s, self.lag_s)
        self._report(self.health.observe(frame))
        if self.on_frame is None or self.sampler is None or not self.sampler.take(frame.pts_seconds):
            return
        if self.gate is not None and not self.gate.check(frame):
            return
        self.frames_analysed += 1
        try:
            self.on_frame(frame)
        except Exception:
            log.exception("camera %s: frame handler failed", self.camera_id)

    def _wait(self, seconds: float) -> None:
        """Waits before reconnecting, still noticing a stop and marking the camera offline in time."""
        remaining = seconds
        while remaining > 0 and not self._stop.is_set():
            step = min(0.5, remaining)
            self._stop.wait(step)
            remaining -= step
            self._report(self.health.tick())

    def _report(self, change: HealthChange | None) -> None:
        """Passes a health change to the handler; a failing handler is logged, not raised."""
        if change is None or self.on_health is None:
            return
        try:
            self.on_health(change)
        except Exception:
            log.exception("camera %s: health handler failed", self.camera_id)


class StreamGroup:
    """Runs many cameras, each in its own thread; one failing camera never stops another."""

    def __init__(self, streams: list[CameraStream] | None = None) -> None:
        self.streams: dict[str, CameraStream] = {}
        for stream in streams or []:
            self.add(stream)

    def add(self, stream: CameraStream, *, start: bool = False) -> CameraStream:
        """Adds a camera (replacing none: camera ids are unique); starts it if asked."""
        if stream.camera_id in self.streams:
            raise ValueError(f"camera {stream.camera_id} is already running")
        self.streams[stream.camera_id] = stream
        if start:
            stream.start()
        return stream

    def remove(self, camera_id: str) -> None:
        """Stops and forgets one camera."""
        stream = self.streams.pop(camera_id, None)
        if stream is not None:
            stream.stop()

    def start(self) -> None:
        """Starts every camera."""
        for stream in self.streams.values():
            stream.start()

    def stop(self) -> None:
        """Stops every camera, signalling all first so they wind down together."""
        for stream in self.streams.values():
            stream.signal_stop()
        for stream in self.streams.values():
            stream.join(stream.timeout_s + 1.0)

    def states(self) -> dict[str, HealthState]:
        """Returns each camera's current health state."""
        return {camera_id: stream.state for camera_id, stream in self.streams.items()}
