"""Continuous recording: the packets a camera stream already delivers, remuxed (never re-encoded) into
short MPEG-TS segment files cut at key-frames and indexed by wall-clock time.

MPEG-TS is written packet by packet, so a crash or a pulled disk leaves a file that plays up to its
last byte; a segment is written as `<start ms>.ts.part` and renamed when closed, and `recover()` indexes
the parts a crash left behind. A camera that drops, changes resolution or codec, or jumps in time
starts a new segment, so the gap shows in the index and no file mixes two streams.

    pool = RecorderPool(ctx)
    recorder = pool.for_camera("cam-17")               # None when the camera's recording is off
    source = open_source(url, on_packet=recorder.feed)  # the very packets analysis decodes
    ...
    pool.tick()                                         # every few seconds: quiet cameras close their segment
    pool.close()
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from safecity.core.context import Context

log = logging.getLogger(__name__)

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_VOLUME_GONE = {errno.ENOENT, errno.ENODEV, errno.EIO, errno.ESTALE, errno.EROFS, errno.ENXIO, errno.ENOTCONN}
# A live stream whose timestamps drift this far from the clock is re-anchored (camera clock reset, stall).
_MAX_DRIFT_S = 2.0
_DEFAULT_FRAME_S = 0.04
# Timestamps may step back this much (reordering) before it counts as a restarted stream.
_MAX_BACKSTEP_S = 0.5


@dataclass(frozen=True)
class SegmentInfo:
    """A closed segment file: which camera, where, which wall-clock span, what it carries."""

    camera_id: str
    path: Path
    start: datetime
    end: datetime
    bytes: int
    codec: str
    width: int
    height: int
    packets: int


StateCallback = Callable[[str, str, str], None]
SegmentCallback = Callable[[SegmentInfo], None]


class SegmentRecorder:
    """Remuxes one camera's packets into segment files under `root/<camera_id>/<day>/<hour>/`.

    `feed(packet)` never raises: a full disk, a vanished volume or a broken file sets `state`
    ("disk_full", "volume_missing", "error") with a plain-words `detail`, keeps what was written, and
    retries at a key-frame after `retry_seconds`. Other cameras' recorders are not affected.

        recorder = SegmentRecorder("cam-1", Path("/srv/rec"), segment_seconds=60, on_segment=index)
        for packet in container.demux(video_stream):
            recorder.feed(packet)
        recorder.close()
    """

    def __init__(
        self,
        camera_id: str,
        root: Path,
        *,
        segment_seconds: float = 60.0,
        max_gap_seconds: float = 3.0,
        reserve_bytes: int = 0,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
        on_segment: SegmentCallback | None = None,
        on_state: StateCallback | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.root = Path(root)
        self.segment_seconds = segment_seconds
        self.max_gap_seconds = max_gap_seconds
        self.reserve_bytes = reserve_bytes
        self.retry_seconds = retry_seconds
        self.clock = clock
        self.on_segment = on_segment
        self.on_state = on_state
        self.state = "stopped"
        self.detail = "no packets yet"
        self.segments_written = 0
        self.packets_dropped = 0
        self._lock = threading.RLock()
        self._in_stream: Any = None
        self._signature: tuple[str, int, int] | None = None
        self._anchor: tuple[float, float] | None = None  # (stream seconds, wall seconds) at one instant
        self._last_t: float | None = None
        self._last_wall: float | None = None
        self._last_duration = _DEFAULT_FRAME_S
        self._last_arrival = 0.0
        self._retry_at = 0.0
        self._out: Any = None
        self._out_stream: Any = None
        self._path: Path | None = None
        self._seg_start = 0.0
        self._seg_packets = 0

    # --- feeding -------------------------------------------------------------------------------------

    def feed(self, packet: av.Packet) -> None:
        """Writes one demuxed video packet (unchanged for the caller, who may decode it next)."""
        if packet.dts is None and packet.pts is None:
            return  # the demuxer's empty flush packet
        with self._lock:
            try:
                self._feed(packet)
            except Exception as exc:  # a recorder must never break the analysis that feeds it
                self._fail(exc)

    def _feed(self, packet: av.Packet) -> None:
        stream = packet.stream
        time_base: Fraction = packet.time_base or stream.time_base  # type: ignore[assignment]
        if packet.dts is not None:
            t = float(packet.dts * time_base)
        elif self._last_t is not None and stream is self._in_stream:
            t = self._last_t  # no decode time (e.g. Matroska's first packets): keep the run's clock
        else:
            t = float((packet.pts or 0) * time_base)
        now = self.clock()
        self._last_arrival = now
        keyframe = bool(packet.is_keyframe)
        new_run = (
            stream is not self._in_stream
            or self._last_t is None
            or t < self._last_t - _MAX_BACKSTEP_S
            or t - self._last_t > self.max_gap_seconds
        )
        if keyframe and not new_run:
            signature = _signature(stream)
            if signature != self._signature:
                new_run = True
        if new_run:
            self._close_segment()
            self._in_stream, self._signature = stream, _signature(stream)
            self._anchor = (t, now)
        assert self._anchor is not None
        wall = self._anchor[1] + t - self._anchor[0]
        if abs(wall - now) > _MAX_DRIFT_S:
            self._anchor, wall = (t, now), now
        if self._last_wall is not None and wall - self._last_wall > self.max_gap_seconds:
            self._close_segment()  # the stream stalled and resumed: the pause is a gap, not footage
        if packet.duration:
            self._last_duration = float(packet.duration * time_base)
        if self._out is not None and keyframe and wall - self._seg_start >= self.segment_seconds:
            self._close_segment()
        if self._out is None:
            if not keyframe or now < self._retry_at:
                self.packets_dropped += 1
                self._last_t, self._last_wall = t, wall
                return
            if not self._open_segment(wall):
                self._last_t, self._last_wall = t, wall
                return
        self._mux(packet)
        self._last_t, self._last_wall = t, wall
        self._seg_packets += 1

    def _mux(self, packet: av.Packet) -> None:
        # Muxing rebases the packet's timestamps in place; put them back for the decoder that follows.
        pts, dts, time_base, stream = packet.pts, packet.dts, packet.time_base, packet.stream
        try:
            packet.stream = self._out_stream
            self._out.mux(packet)
        finally:
            packet.stream = stream
            packet.pts, packet.dts, packet.time_base = pts, dts, time_base

    # --- segments ------------------------------------------------------------------------------------

    def _open_segment(self, wall: float) -> bool:
        if not self.root.is_dir():
            self._set_state("volume_missing", f"recording folder {self.root} is not there (disk unmounted?)")
            self._retry_at = self.clock() + self.retry_seconds
            return False
        if self.reserve_bytes and shutil.disk_usage(self.root).free < self.reserve_bytes:
            self._set_state("disk_full", f"less than {self.reserve_bytes >> 20} MiB free on {self.root}")
            self._retry_at = self.clock() + self.retry_seconds
            return False
        moment = datetime.fromtimestamp(wall, UTC)
        folder = self.root / self.camera_id / moment.strftime("%Y%m%d") / moment.strftime("%H")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{round(wall * 1000)}.ts.part"
        # Each packet reaches the file as it is muxed (FFmpeg would otherwise hold 32 KiB, seconds of a
        # small stream): a crash keeps all but the last packet, and instant replay reads up to a moment ago.
        self._out = av.open(str(path), "w", format="mpegts", options={"flush_packets": "1"})
        self._path, self._seg_start, self._seg_packets = path, wall, 0
        self._out_stream = self._out.add_stream_from_template(self._in_stream)
        self._set_state("recording", "")
        return True

    def _close_segment(self) -> SegmentInfo | None:
        out, path = self._out, self._path
        if out is None or path is None:
            return None
        self._out = self._out_stream = self._path = None
        try:
            out.close()
        except Exception as exc:
            self._fail(exc, path=path)
            return None
        return self._finish(path, self._seg_start, (self._last_wall or self._seg_start) + self._last_duration)

    def _finish(self, part: Path, start: float, end: float) -> SegmentInfo | None:
        """Renames a written `.part` file to its final name and reports it for indexing."""
        if self._seg_packets == 0:
            part.unlink(missing_ok=True)
            return None
        final = part.with_name(part.name.removesuffix(".part"))
        part.rename(final)
        signature = self._signature or ("unknown", 0, 0)
        info = SegmentInfo(
            camera_id=self.camera_id,
            path=final,
            start=datetime.fromtimestamp(start, UTC),
            end=datetime.fromtimestamp(max(end, start), UTC),
            bytes=final.stat().st_size,
            codec=signature[0],
            width=signature[1],
            height=signature[2],
            packets=self._seg_packets,
        )
        self.segments_written += 1
        if self.on_segment is not None:
            self.on_segment(info)
        return info

    def _fail(self, exc: BaseException, *, path: Path | None = None) -> None:
        code = getattr(exc, "errno", None)
        if code in _DISK_FULL:
            state, detail = "disk_full", f"the disk under {self.root} is full"
        elif code in _VOLUME_GONE or not self.root.is_dir():
            state, detail = "volume_missing", f"recording folder {self.root} failed or vanished ({exc})"
        else:
            state, detail = "error", f"recording failed: {type(exc).__name__}: {exc}"
        log.warning("recorder %s: %s", self.camera_id, detail)
        out, part = self._out, path or self._path
        self._out = self._out_stream = self._path = None
        if out is not None:
            # The disk already failed; what reached it is salvaged below.
            with contextlib.suppress(Exception):
                out.close()
        if part is not None and part.exists():
            try:
                salvaged = probe_part(part, self.camera_id)
                if salvaged is not None:
                    self.segments_written += 1
                    if self.on_segment is not None:
                        self.on_segment(salvaged)
            except Exception as salvage_error:  # left as .part for recover() once the disk is back
                log.warning(
                    "recorder %s: kept %s for later recovery (%s)", self.camera_id, part, salvage_error
                )
        self._retry_at = self.clock() + self.retry_seconds
        self._set_state(state, detail)

    def _set_state(self, state: str, detail: str) -> None:
        if (state, detail) == (self.state, self.detail):
            return
        self.state, self.detail = state, detail
        if self.on_state is not None:
            try:
                self.on_state(self.camera_id, state, detail)
            except Exception as exc:  # reporting must not stop recording
                log.warning("recorder %s: state not reported: %s", self.camera_id, exc)

    # --- control -------------------------------------------------------------------------------------

    def idle_seconds(self) -> float:
        """Returns the seconds since the last packet arrived."""
        return self.clock() - self._last_arrival

    def close_if_idle(self) -> SegmentInfo | None:
        """Closes the open segment when no packet came for `max_gap_seconds`, so the gap shows now."""
        with self._lock:
            if self._out is None or self.idle_seconds() <= self.max_gap_seconds:
                return None
            info = self._close_segment()
            self._last_t = None
            self._set_state("stopped", f"no packets for {self.idle_seconds():.0f} s")
            return info

    def close(self) -> SegmentInfo | None:
        """Closes the open segment (if any) and stops; the next packet starts a new segment."""
        with self._lock:
            try:
                info = self._close_segment()
            except Exception as exc:
                self._fail(exc)
                info = None
            self._last_t = None
            if self.state == "recording":
                self._set_state("stopped", "recorder closed")
            return info

    def recover(self) -> list[SegmentInfo]:
        """Indexes the `.part` files a crash left in this camera's folder (each plays to its last byte)."""
        found: list[SegmentInfo] = []
        folder = self.root / self.camera_id
        if not folder.is_dir():
            return found
        with self._lock:
            for part in sorted(folder.rglob("*.ts.part")):
                if part == self._path:
                    continue
                try:
                    info = probe_part(part, self.camera_id)
                except Exception as exc:  # garbage from a crash mid-header: nothing to play in it
                    log.warning("recorder %s: %s cannot be recovered (%s)", self.camera_id, part, exc)
                    continue
                if info is not None:
                    found.append(info)
                    if self.on_segment is not None:
                        self.on_segment(info)
        return found


def probe_part(part: Path, camera_id: str) -> SegmentInfo | None:
    """Reads a `.part` file's packets to find its span, renames it final and returns its info.

    The start comes from the file name (wall-clock milliseconds); the end from the packets it holds.
    A file with no whole packet is removed and None returned.
    """
    start = int(part.name.split(".", 1)[0]) / 1000
    first = last = None
    packets, duration = 0, _DEFAULT_FRAME_S
    with av.open(str(part), format="mpegts") as container:
        stream = container.streams.video[0]
        codec, width, height = _signature(stream)
        for packet in container.demux(stream):
            stamp = packet.dts if packet.dts is not None else packet.pts
            if stamp is None:
                continue
            t = float(stamp * packet.time_base)
            first = t if first is None else first
            last = t
            packets += 1
            if packet.duration:
                duration = float(packet.duration * packet.time_base)
    if first is None or last is None:
        part.unlink(missing_ok=True)
        return None
    final = part.with_name(part.name.removesuffix(".part"))
    part.rename(final)
    return SegmentInfo(
        camera_id=camera_id,
        path=final,
        start=datetime.fromtimestamp(start, UTC),
        end=datetime.fromtimestamp(start, UTC) + timedelta(seconds=last - first + duration),
        bytes=final.stat().st_size,
        codec=codec,
        width=width,
        height=height,
        packets=packets,
    )


def _signature(stream: Any) -> tuple[str, int, int]:
    context = stream.codec_context
    # The codec, not the library that made it: an encoder's packets (libx264) are h264 like a camera's.
    name = context.codec.canonical_name if context.codec is not None else context.name
    return (name or "unknown", int(context.width or 0), int(context.height or 0))


class RecorderPool:
    """The recorders of one worker process: one per camera, writing to the camera's volume.

    Segments are indexed in the database as they close; recorder states are stored for the pages;
    a recorder that finds its disk full asks retention to make room on that volume.

        pool = RecorderPool(ctx)
        recorder = pool.for_camera(camera_id)   # None: recording is off for this camera
    """

    def __init__(
        self,
        ctx: Context,
        *,
        segment_seconds: float = 60.0,
        max_gap_seconds: float = 3.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ctx = ctx
        self.segment_seconds = segment_seconds
        self.max_gap_seconds = max_gap_seconds
        self.clock = clock
        self._recorders: dict[str, SegmentRecorder] = {}
        self._volumes: dict[str, str] = {}
        self._unindexed: list[tuple[str, SegmentInfo]] = []
        self._room_asked: dict[str, float] = {}
        self._lock = threading.Lock()

    def for_camera(self, camera_id: str) -> SegmentRecorder | None:
        """Returns the camera's recorder (made once), or None when the camera is disabled or not recorded."""
        from safecity.cameras import service as cameras
        from safecity.recordings import service

        with self._lock:
            if camera_id in self._recorders:
                return self._recorders[camera_id]
            with self.ctx.db.session() as session:
                camera = cameras.get(session, camera_id)
                if not camera.enabled or not service.records(camera):
                    return None
                volume = service.camera_volume(camera)
                root, reserve = service.volume_root(session, volume, self.ctx.settings)
            recorder = SegmentRecorder(
                camera_id,
                root,
                segment_seconds=self.segment_seconds,
                max_gap_seconds=self.max_gap_seconds,
                reserve_bytes=reserve,
                clock=self.clock,
                on_segment=functools.partial(self._index, volume),
                on_state=functools.partial(self._state, volume),
            )
            self._recorders[camera_id] = recorder
            self._volumes[camera_id] = volume
        recorder.recover()
        return recorder

    def recorders(self) -> dict[str, SegmentRecorder]:
        """Returns the recorders made so far, by camera id."""
        return dict(self._recorders)

    def tick(self) -> None:
        """Closes quiet cameras' segments and retries indexing that failed (call every few seconds)."""
        for recorder in list(self._recorders.values()):
            recorder.close_if_idle()
        with self._lock:
            pending, self._unindexed = self._unindexed, []
        for volume, info in pending:
            self._index(volume, info)

    def close(self) -> None:
        """Closes every recorder's open segment."""
        for recorder in list(self._recorders.values()):
            recorder.close()
        self.tick()

    def _index(self, volume: str, info: SegmentInfo) -> None:
        from safecity.recordings import service

        try:
            with self.ctx.db.session() as session:
                root, _ = service.volume_root(session, volume, self.ctx.settings)
                service.index_segment(session, info=info, volume=volume, root=root)
            self.ctx.count("recorded_segments")
        except Exception as exc:  # the file is safe on disk; index it on the next tick
            log.warning("segment %s not indexed yet: %s", info.path, exc)
            with self._lock:
                self._unindexed.append((volume, info))

    def _state(self, volume: str, camera_id: str, state: str, detail: str) -> None:
        from safecity.recordings import retention, service

        with self.ctx.db.session() as session:
            service.set_recorder_state(session, camera_id=camera_id, state=state, detail=detail)
        if state == "disk_full" and self.clock() - self._room_asked.get(volume, 0.0) > 30:
            self._room_asked[volume] = self.clock()
            retention.make_room(self.ctx, volume=volume)
