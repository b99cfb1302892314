"""The worker's side of live video: the packets a camera already delivers, relayed to whoever watches.

The camera's thread hands every demuxed packet to the recorder and to the camera's `LiveChannel`
(`LiveRelay.tap`). A channel always keeps the packets since the last key-frame (so a new viewer sees a
picture at once), and only while someone watches does it package each frame as one fMP4 fragment
(`fmp4.py`) and send it on the bus's transient channel, `video.<camera>.<main|sub>`. Nothing waits
for a viewer: sending goes through a bounded queue drained on the bus's loop, and what does not fit
is dropped (the channel then restarts its viewers at the next key-frame).

Viewers are counted by the serve processes, not here: each one that has viewers of a camera sends a
"want" every few seconds (`protocol.WANT_SUBJECT`); a channel relays for `want_ttl_s` after the last.
A want marked `start` (a new viewer) makes the channel re-send its init segment and the frames since
the last key-frame, flagged REPLAY. A camera's sub-stream (`substream_url`, for the wall) is opened
only while wanted: a second connection to the camera, for as long as a tile shows it.

H.264 goes out as video. Any other codec (H.265, MPEG-4) cannot be played by the browsers a command
centre uses: its channel decodes a key-frame now and then off the camera's thread and sends a JPEG,
with a STATE that says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import cv2

from safecity.core.bus import Bus, Subscription
from safecity.core.bus.kv import kv_token
from safecity.live import protocol
from safecity.live.fmp4 import TIMESCALE, AvcTrack, NotAvc, Sample
from safecity.video.sources import PacketCallback
from safecity.video.stream import CameraStream

log = logging.getLogger(__name__)

_DEFAULT_TICKS = TIMESCALE // 25
# A jump in decode time this large (or any step back) starts a new run of the channel's timeline.
_MAX_JUMP_TICKS = 3 * TIMESCALE
# Codecs browsers decode from MSE; the rest get pictures.
PLAYABLE = frozenset({"h264"})
CODEC_NAMES = {"hevc": "H.265", "h264": "H.264", "mpeg4": "MPEG-4 Part 2", "mjpeg": "MJPEG"}


def codec_of(stream: Any) -> str:
    """Returns the codec a stream carries (not the library that made it: libx264's packets are h264)."""
    context = stream.codec_context
    name = context.codec.canonical_name if context.codec is not None else context.name
    return str(name or "unknown")


def _now_ms() -> int:
    return int(time.time() * 1000)


class LiveChannel:
    """One camera stream (main or sub) in the relay: its last group of pictures, sent while watched.

    `feed` runs on the camera's thread and never raises; it waits only for the channel's own lock, which
    `want` holds while it packages a joining viewer's replay (a millisecond or two for a group of
    pictures). `want` and `state` run on any thread. `emit(message)` is given every message to send and
    returns False when it was dropped.
    """

    def __init__(
        self,
        camera_id: str,
        variant: str,
        emit: Callable[[bytes], bool],
        *,
        pictures: ThreadPoolExecutor | None = None,
        picture_every_s: float = 1.0,
        want_ttl_s: float = 6.0,
        max_gop_bytes: int = 16 << 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.camera_id, self.variant = camera_id, variant
        self.emit = emit
        self.pictures = pictures
        self.picture_every_s = picture_every_s
        self.want_ttl_s = want_ttl_s
        self.max_gop_bytes = max_gop_bytes
        self.clock = clock
        self.codec = ""
        self.track: AvcTrack | None = None
        self.init: bytes | None = None  # the INIT message of the current track
        self.gop: list[tuple[int, Sample]] = []  # (seq, sample) since the last key-frame
        self.gop_bytes = 0
        # Numbered from the clock in microseconds: a channel made afresh (the camera moved to another
        # worker) continues above the old numbers, so a serve never takes its frames for duplicates.
        self.seq = int(time.time() * 1_000_000)
        # Names this channel's timeline in its init segment: a viewer that gets another channel's init
        # (the camera moved to another worker) starts afresh rather than append to a timeline it lost.
        self.timeline = self.seq
        self.fragments_sent = 0
        self.fragments_dropped = 0
        self.health: bytes | None = None  # the camera's last health change, as a STATE message
        self.notice: bytes | None = None  # why the stream is not sent as video (codec), as a STATE message
        self.last_picture: bytes | None = None
        self._wanted_until = 0.0
        self._broken = False  # a message was dropped: send nothing until the next key-frame
        self._lock = threading.Lock()
        self._stream: Any = None
        self._offset = 0  # ticks added to the stream's decode times: one timeline across reconnections
        self._last_dts: int | None = None
        self._step = _DEFAULT_TICKS
        self._picture_at = 0.0
        self._picture_busy = False
        self._decoder: Any = None

    @property
    def watched(self) -> bool:
        """Returns whether some serve asked for this channel within the last `want_ttl_s`."""
        return self.clock() < self._wanted_until

    @property
    def unwatched_s(self) -> float:
        """Returns how long nobody has wanted this channel (0 while someone does)."""
        return max(0.0, self.clock() - self._wanted_until)

    # -- the camera's thread --------------------------------------------------------------------

    def feed(self, packet: av.Packet) -> None:
        """Takes one demuxed packet (unchanged for the recorder and the decoder that share it)."""
        if packet.size == 0 or (packet.dts is None and packet.pts is None):
            return
        try:
            with self._lock:
                self._feed(packet)
        except Exception:  # the relay must never break the camera's recording or analysis
            log.exception("live relay of camera %s failed on a packet", self.camera_id)

    def _feed(self, packet: av.Packet) -> None:
        stream = packet.stream
        key = bool(packet.is_keyframe)
        if stream is not self._stream:
            self._stream = stream
            self.codec = codec_of(stream)
            self._new_run()
        if self.codec not in PLAYABLE:
            if key:
                self._picture_from(packet)
            return
        time_base: Fraction = packet.time_base or stream.time_base  # type: ignore[assignment]
        dts_raw = packet.dts if packet.dts is not None else packet.pts
        pts_raw = packet.pts if packet.pts is not None else dts_raw
        assert dts_raw is not None and pts_raw is not None
        dts = round(dts_raw * time_base * TIMESCALE) + self._offset
        cts = round((pts_raw - dts_raw) * time_base * TIMESCALE)
        if self._last_dts is None:
            # The channel's timeline starts at 1 s, whatever the camera's clock says (B-frames start
            # below zero in MP4; an RTSP camera's clock is anywhere): MP4 decode times are unsigned.
            self._offset += TIMESCALE - dts
            dts = TIMESCALE
        else:
            step = dts - self._last_dts
            if step <= 0 or step > _MAX_JUMP_TICKS:
                # A reconnection or a clock jump: carry on one frame after the last on our own timeline.
                self._offset += self._last_dts + self._step - dts
                dts = self._last_dts + self._step
            else:
                self._step = step
        self._last_dts = dts
        data = bytes(packet)
        if key:
            self._on_key(stream, data)
        if self.track is None:
            return  # no key-frame yet: nothing a viewer could decode
        self.seq += 1
        sample = Sample(data, dts, cts, key, _now_ms())
        if key:
            self.gop, self.gop_bytes = [], 0
        if self.gop_bytes + len(data) <= self.max_gop_bytes:
            self.gop.append((self.seq, sample))
            self.gop_bytes += len(data)
        if self.watched:
            if key:
                self._broken = False
            if not self._broken:
                self._send(self._fragment(self.seq, sample, self._step))

    def _on_key(self, stream: Any, data: bytes) -> None:
        context = stream.codec_context
        extradata = bytes(context.extradata) if context.extradata else None
        if self.track is not None and self.track.matches(extradata, data):
            return
        try:
            track = AvcTrack.from_stream(extradata, data, width=context.width, height=context.height)
        except NotAvc as exc:
            self._notify("unplayable", f"the H.264 stream cannot be packaged for browsers: {exc}")
            return
        self.track = track
        meta = {
            "codec": track.codec,
            "width": track.width,
            "height": track.height,
            "source_codec": self.codec,
            "camera": self.camera_id,
            "variant": self.variant,
            "timeline": self.timeline,
            "timescale": TIMESCALE,
        }
        self.init = protocol.init_message(meta, track.init_segment(), seq=self.seq + 1, wall_ms=_now_ms())
        self.gop, self.gop_bytes = [], 0
        self.notice = None
        if self.watched:
            self._send(self.init)

    def _new_run(self) -> None:
        """A new connection (or the first): its parameters are read afresh at its first key-frame."""
        self.gop, self.gop_bytes = [], 0
        if self.codec not in PLAYABLE:
            self.track, self.init = None, None
            name = CODEC_NAMES.get(self.codec, self.codec.upper())
            self._notify(
                "unplayable",
                f"{name} cannot be played by the browser: a picture every {self.picture_every_s:g} s instead",
                codec=self.codec,
            )

    def _fragment(self, seq: int, sample: Sample, duration: int) -> bytes:
        assert self.track is not None
        body = self.track.fragment(seq, [(sample, duration)])
        flags = protocol.KEY if sample.key else 0
        return protocol.pack(protocol.FRAGMENT, body, seq=seq, wall_ms=sample.wall_ms, flags=flags)

    def _send(self, message: bytes) -> None:
        if self.emit(message):
            if message[0] == protocol.FRAGMENT:
                self.fragments_sent += 1
        else:
            self.fragments_dropped += 1
            self._broken = True

    # -- pictures for codecs a browser cannot play ----------------------------------------------

    def _picture_from(self, packet: av.Packet) -> None:
        now = self.clock()
        if (
            self.pictures is None
            or self._picture_busy
            or now - self._picture_at < self.picture_every_s
            or not (self.watched or self.last_picture is None)
        ):
            return
        self._picture_at, self._picture_busy = now, True
        context = packet.stream.codec_context
        extradata = bytes(context.extradata) if context.extradata else None
        self.pictures.submit(self._decode_picture, self.codec, extradata, bytes(packet), _now_ms())

    def _decode_picture(self, codec: str, extradata: bytes | None, data: bytes, wall_ms: int) -> None:
        """Decodes one key-frame to a JPEG (off the camera's thread) and sends it if still watched."""
        try:
            if self._decoder is None or self._decoder.name != codec:
                self._decoder = av.CodecContext.create(codec, "r")
                if extradata:
                    self._decoder.extradata = extradata
            frames = self._decoder.decode(av.Packet(data))
            if not frames:
                frames = self._decoder.decode(None)  # a decoder that holds a frame back: flush it
                self._decoder = None
            if not frames:
                return
            image = frames[-1].to_ndarray(format="bgr24")
            scale = min(1.0, 960 / image.shape[1])
            if scale < 1.0:
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 75])
            if not ok:
                return
            message = protocol.pack(protocol.PICTURE, jpeg.tobytes(), wall_ms=wall_ms)
            with self._lock:
                self.last_picture = message
                if self.watched:
                    self.emit(message)
        except Exception as exc:
            self._decoder = None
            log.warning("camera %s: key-frame not decoded for a picture: %s", self.camera_id, exc)
        finally:
            self._picture_busy = False

    # -- viewers --------------------------------------------------------------------------------

    def want(self, *, start: bool) -> None:
        """Relays for `want_ttl_s` more; a new viewer (`start`) or a channel not relaying gets a replay."""
        with self._lock:
            was = self.watched
            self._wanted_until = self.clock() + self.want_ttl_s
            if start or not was:
                self._replay()

    def _replay(self) -> None:
        """Re-sends what a joining viewer needs: the state, the init segment, the frames since the key."""
        replay = protocol.REPLAY
        for state in (self.health, self.notice):
            if state is not None:
                self.emit(protocol.with_flags(state, replay))
        if self.codec and self.codec not in PLAYABLE:
            if self.last_picture is not None:
                self.emit(protocol.with_flags(self.last_picture, replay))
            return
        if self.init is None or self.track is None or not self.gop:
            return
        self.emit(protocol.with_flags(self.init, replay))
        self._broken = False
        for i, (seq, sample) in enumerate(self.gop):
            following = self.gop[i + 1][1].dts if i + 1 < len(self.gop) else None
            duration = following - sample.dts if following is not None else self._step
            message = protocol.with_flags(self._fragment(seq, sample, max(1, duration)), replay)
            if not self.emit(message):
                self._broken = True
                return

    def state(self, state: str, detail: str) -> None:
        """Passes the camera's health to viewers (`offline`, `covered`, …, `online` again)."""
        message = protocol.state_message(state, detail, wall_ms=_now_ms(), health=True)
        with self._lock:
            self.health = message
            if self.watched:
                self.emit(message)

    def _notify(self, state: str, detail: str, **extra: Any) -> None:
        message = protocol.state_message(state, detail, wall_ms=_now_ms(), **extra)
        self.notice = message
        if self.watched:
            self.emit(message)


@dataclass(frozen=True)
class Substream:
    """Where a camera's second, smaller stream is, for the wall's tiles."""

    url: str
    username: str | None = None
    password: str | None = None


class _Outbound:
    """Messages from camera threads to the bus: a bounded queue drained on the bus's loop."""

    def __init__(self, bus: Bus, max_bytes: int) -> None:
        self.bus = bus
        self.max_bytes = max_bytes
        self.dropped = 0
        self.sent = 0
        self._queue: deque[tuple[str, bytes]] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self._draining = False
        self._task: asyncio.Task[None] | None = None

    def put(self, subject: str, message: bytes) -> bool:
        """Queues one message; returns False (dropped) when the queue is full or the bus not running."""
        loop = self.bus.loop
        if loop is None or loop.is_closed():
            return False
        with self._lock:
            if self._bytes + len(message) > self.max_bytes:
                self.dropped += 1
                return False
            self._queue.append((subject, message))
            self._bytes += len(message)
            if self._draining:
                return True
            self._draining = True
        try:
            loop.call_soon_threadsafe(self._start)
        except RuntimeError:  # the loop closed meanwhile: the process is stopping
            return False
        return True

    def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._drain(), name="live-relay:outbound")

    async def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._draining = False
                    return
                subject, message = self._queue.popleft()
                self._bytes -= len(message)
            try:
                await self.bus.send_transient(subject, message)
                self.sent += 1
            except Exception as exc:
                self.dropped += 1
                log.debug("live message on %s dropped: %s", subject, exc)


class LiveRelay:
    """The live channels of the cameras this process holds, relayed while some serve asks for them.

    relay = LiveRelay(ctx.bus)
    await relay.start()                       # on the bus's loop: follows the wants
    stream = CameraStream(..., on_packet=relay.tap("cam-17"))
    relay.hold("cam-17", substream=Substream("rtsp://…/sub"))
    """

    def __init__(
        self,
        bus: Bus,
        *,
        want_ttl_s: float = 6.0,
        substream_linger_s: float = 30.0,
        max_queued_bytes: int = 64 << 20,
        picture_every_s: float = 1.0,
    ) -> None:
        self.bus = bus
        self.want_ttl_s = want_ttl_s
        self.substream_linger_s = substream_linger_s
        self.picture_every_s = picture_every_s
        self.channels: dict[tuple[str, str], LiveChannel] = {}
        self.substreams: dict[str, Substream] = {}
        self._readers: dict[str, CameraStream] = {}
        self._outbound = _Outbound(bus, max_queued_bytes)
        self._pictures = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-pictures")
        self._lock = threading.Lock()
        self._listening: Subscription | None = None
        self._ticker: asyncio.Task[None] | None = None

    @property
    def dropped(self) -> int:
        """Returns how many messages were dropped because the bus could not take them in time."""
        return self._outbound.dropped

    async def start(self) -> None:
        """Follows the serves' wants (call on the bus's loop, after the bus started)."""
        if self._listening is None:
            self._listening = await self.bus.listen_transient(protocol.WANT_SUBJECT, self._on_want)
            self._ticker = asyncio.get_running_loop().create_task(self._tick_loop(), name="live-relay:tick")

    async def stop(self) -> None:
        """Stops following wants and closes the sub-streams."""
        if self._listening is not None:
            with contextlib.suppress(Exception):
                await self._listening.close()
            self._listening = None
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(BaseException):
                await self._ticker
        for camera_id in list(self._readers):
            self._close_substream(camera_id)
        self._pictures.shutdown(wait=False, cancel_futures=True)

    def channel(self, camera_id: str, variant: str = "main") -> LiveChannel:
        """Returns the camera's channel (made on first use)."""
        with self._lock:
            found = self.channels.get((camera_id, variant))
            if found is None:
                subject = protocol.video_subject(kv_token(camera_id), variant)
                found = LiveChannel(
                    camera_id,
                    variant,
                    lambda message: self._outbound.put(subject, message),
                    pictures=self._pictures,
                    picture_every_s=self.picture_every_s,
                    want_ttl_s=self.want_ttl_s,
                )
                self.channels[(camera_id, variant)] = found
            return found

    def tap(self, camera_id: str) -> PacketCallback:
        """Returns the packet callback that feeds the camera's main channel."""
        return self.channel(camera_id, "main").feed

    def hold(self, camera_id: str, *, substream: Substream | None = None) -> None:
        """Says this process holds the camera (and where its sub-stream is, if it has one)."""
        self.channel(camera_id, "main")
        with self._lock:
            if substream is not None:
                self.substreams[camera_id] = substream
            else:
                self.substreams.pop(camera_id, None)

    def release(self, camera_id: str) -> None:
        """Forgets a camera this process no longer holds (handed to another worker, or removed)."""
        self._close_substream(camera_id)
        with self._lock:
            self.substreams.pop(camera_id, None)
            for variant in ("main", "sub"):
                self.channels.pop((camera_id, variant), None)

    def on_health(self, camera_id: str, state: str, detail: str) -> None:
        """Passes a camera's health change to its main channel's viewers."""
        channel = self.channels.get((camera_id, "main"))
        if channel is not None:
            channel.state(state, detail)

    # -- wants ----------------------------------------------------------------------------------

    def _on_want(self, _subject: str, data: bytes) -> None:
        try:
            want = json.loads(data)
            camera_id, variant, start = (
                str(want["camera"]),
                str(want.get("variant", "main")),
                bool(want.get("start")),
            )
        except (ValueError, KeyError, TypeError):
            log.debug("malformed live want ignored")
            return
        if (camera_id, "main") not in self.channels:
            return  # another worker holds it
        if variant == "sub":
            if camera_id not in self.substreams:
                return
            self._open_substream(camera_id)
        self.channel(camera_id, variant).want(start=start)

    def _open_substream(self, camera_id: str) -> None:
        with self._lock:
            if camera_id in self._readers:
                return
            spec = self.substreams[camera_id]
            channel = self.channels.get((camera_id, "sub"))
        channel = channel or self.channel(camera_id, "sub")

        def health(change: Any) -> None:
            if change.state != "online":
                channel.state(change.state, f"sub-stream: {change.detail}")
            else:
                channel.state("online", "")

        reader = CameraStream(
            f"{camera_id}:sub",
            spec.url,
            analysis_fps=None,
            on_packet=channel.feed,
            on_health=health,
            username=spec.username,
            password=spec.password,
        )
        with self._lock:
            self._readers[camera_id] = reader
        reader.start()

    def _close_substream(self, camera_id: str) -> None:
        with self._lock:
            reader = self._readers.pop(camera_id, None)
        if reader is not None:
            reader.signal_stop()

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for camera_id in list(self._readers):
                channel = self.channels.get((camera_id, "sub"))
                if channel is None or channel.unwatched_s > self.substream_linger_s:
                    self._close_substream(camera_id)
