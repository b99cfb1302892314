"""Camera sources: RTSP (TCP or UDP), HTTP(S) MJPEG, local files and registered schemes, as frames.

Every source yields `Frame`s whose times come from the stream's own timestamps, mapped onto wall
clock time, and reports failures as errors in plain words (`CameraUnreachable`,
`AuthenticationFailed`, `NotVideo`, `StreamCorrupt`). Decoding does only what is asked:
`decode="keyframes"` decodes key-frames only (health checks, slow analysis), `"nonref"` skips the
frames no other frame refers to, `"all"` decodes every frame; a frame's BGR picture is converted
only when someone reads `Frame.image`.

    source = open_source("rtsp://10.0.0.7/stream1", username="viewer", password="…", decode="keyframes")
    for frame in source.frames():
        print(frame.wall_time, frame.image.shape)

The recorder gets the same compressed packets without a second connection: pass
`on_packet=callback`; it is called with each video `av.Packet` as demuxed (before decoding, so also
for frames that are never decoded), and `packet.stream` is the input stream to use as a template
for remuxing (`output.add_stream_from_template(packet.stream)`).
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import av
import av.error
import cv2
import numpy as np
import numpy.typing as npt

from safecity.core.errors import InvalidInput, SafeCityError, Unavailable

Decode = Literal["all", "nonref", "keyframes"]
Transport = Literal["tcp", "udp"]
PacketCallback = Callable[[av.Packet], None]

# How far a live stream's timestamps may drift from the wall clock before they are re-anchored
# (a camera that restarts its clock, or a stream that stalled and resumed).
_MAX_DRIFT_S = 2.0
# Decode errors in a row after which a stream is declared corrupt rather than merely glitchy.
_MAX_BAD_PACKETS = 50


class CameraUnreachable(Unavailable):
    """The camera did not answer: host down, port closed, network cut or stream stalled."""

    code = "camera_unreachable"


class AuthenticationFailed(Unavailable):
    """The camera refused the user name or password."""

    code = "camera_authentication_failed"


class NotVideo(InvalidInput):
    """The address or file answers, but what it sends is not a video stream SafeCity can decode."""

    code = "not_video"


class StreamCorrupt(InvalidInput):
    """The stream or file started as video but is truncated or garbled."""

    code = "stream_corrupt"


class Frame:
    """One decoded picture with its stream time, wall-clock time and position in the stream.

    `image` is the BGR picture (converted from the decoder's frame on first access), `index` counts
    the stream's frames received so far, including frames that were not decoded.
    """

    __slots__ = (
        "_av_frame",
        "_gray",
        "_image",
        "height",
        "index",
        "keyframe",
        "pts_seconds",
        "wall_time",
        "width",
    )

    def __init__(
        self,
        image: npt.NDArray[np.uint8] | None = None,
        *,
        pts_seconds: float,
        wall_time: datetime,
        keyframe: bool = False,
        index: int = 0,
        av_frame: av.VideoFrame | None = None,
    ) -> None:
        if image is None and av_frame is None:
            raise ValueError("a Frame needs an image or a decoded av.VideoFrame")
        self._image = image
        self._av_frame = av_frame
        self._gray: dict[int, npt.NDArray[np.uint8]] = {}
        self.pts_seconds = pts_seconds
        self.wall_time = wall_time
        self.keyframe = keyframe
        self.index = index
        if image is not None:
            self.height, self.width = int(image.shape[0]), int(image.shape[1])
        else:
            assert av_frame is not None
            self.height, self.width = av_frame.height, av_frame.width

    @property
    def image(self) -> npt.NDArray[np.uint8]:
        """Returns the full-size BGR picture."""
        image = self._image
        if image is None:
            assert self._av_frame is not None
            image = self._image = np.asarray(self._av_frame.to_ndarray(format="bgr24"), dtype=np.uint8)
        return image

    def gray(self, width: int) -> npt.NDArray[np.uint8]:
        """Returns a grey-level copy scaled to `width` pixels wide (cached; cheap for health and motion)."""
        width = min(width, self.width)
        cached = self._gray.get(width)
        if cached is not None:
            return cached
        height = max(2, round(self.height * width / self.width)) // 2 * 2
        if self._image is None and self._av_frame is not None:
            # One swscale pass scales and converts, without building the full-size BGR array.
            plane = self._av_frame.reformat(width=width, height=height, format="gray").to_ndarray()
            small: npt.NDArray[np.uint8] = np.ascontiguousarray(plane[:, :width], dtype=np.uint8)
        else:
            resized = cv2.resize(self.image, (width, height), interpolation=cv2.INTER_AREA)
            small = np.asarray(cv2.cvtColor(resized, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        self._gray[width] = small
        return small

    def __repr__(self) -> str:
        return (
            f"Frame(index={self.index}, pts_seconds={self.pts_seconds:.3f}, "
            f"wall_time={self.wall_time.isoformat()}, keyframe={self.keyframe}, "
            f"size={self.width}x{self.height})"
        )


@dataclass(frozen=True)
class SourceInfo:
    """What a source carries: codec, picture size, nominal frame rate, and whether it is live."""

    codec: str
    width: int
    height: int
    fps: float | None
    live: bool = True


@dataclass(frozen=True)
class SourceOptions:
    """How to open a source; passed unchanged to registered scheme factories."""

    username: str | None = None
    password: str | None = None
    timeout_s: float = 5.0
    transport: Transport = "tcp"
    decode: Decode = "all"
    on_packet: PacketCallback | None = None
    realtime: bool = False


class FrameSource(Protocol):
    """A camera or file that yields frames; `open()` connects, `close()` releases it."""

    @property
    def info(self) -> SourceInfo:
        """Returns what the source carries (valid after `open()`)."""
        ...

    def open(self) -> None:
        """Connects; raises CameraUnreachable, AuthenticationFailed or NotVideo in plain words."""
        ...

    def frames(self) -> Iterator[Frame]:
        """Yields frames until the stream ends; raises the same errors, or StreamCorrupt."""
        ...

    def close(self) -> None:
        """Releases the connection; safe to call twice."""
        ...


SourceFactory = Callable[[str, SourceOptions], FrameSource]
_SCHEMES: dict[str, SourceFactory] = {}
# Schemes whose module registers them on import, loaded on first use: `safecity worker` opens
# synthetic:// cameras without the demo being imported first (and video/ never imports demo/).
_LAZY_SCHEMES: dict[str, str] = {"synthetic": "safecity.demo.scenes"}
_lazy_lock = threading.Lock()


def register_scheme(scheme: str, factory: SourceFactory) -> None:
    """Makes `open_source` hand URLs of `scheme` (e.g. "synthetic") to `factory(url, options)`."""
    _SCHEMES[scheme.lower()] = factory


def register_lazy_scheme(scheme: str, module: str) -> None:
    """Names the module that registers `scheme` when imported; it is imported on the scheme's first use."""
    _LAZY_SCHEMES[scheme.lower()] = module


def scheme_factory(scheme: str) -> SourceFactory | None:
    """Returns the factory registered for `scheme`, importing its module first if it is a lazy one."""
    scheme = scheme.lower()
    factory = _SCHEMES.get(scheme)
    if factory is None and scheme in _LAZY_SCHEMES:
        with _lazy_lock:
            importlib.import_module(_LAZY_SCHEMES[scheme])
        factory = _SCHEMES.get(scheme)
        if factory is None:
            raise InvalidInput(
                f"{_LAZY_SCHEMES[scheme]} did not register the {scheme}:// scheme",
                hint="a bug in SafeCity: report it",
            )
    return factory


def redact(url: str) -> str:
    """Returns `url` with any password replaced by ***, for logs and screens."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def open_source(
    url: str,
    *,
    username: str | None = None,
    password: str | None = None,
    timeout_s: float = 5.0,
    transport: Transport = "tcp",
    decode: Decode = "all",
    on_packet: PacketCallback | None = None,
    realtime: bool = False,
) -> FrameSource:
    """Opens a camera or file by address and returns the connected source.

    `url` is rtsp://, http(s):// (MJPEG or any stream FFmpeg reads), a file path or file://, or a
    registered scheme such as synthetic://. `realtime` paces a file at its own frame rate.
    """
    options = SourceOptions(username, password, timeout_s, transport, decode, on_packet, realtime)
    factory = scheme_factory(urlsplit(url).scheme)
    source: FrameSource = factory(url, options) if factory else PyAVSource(url, options)
    source.open()
    return source


def with_credentials(url: str, username: str | None, password: str | None) -> str:
    """Returns `url` with the camera's user name and password in it (FFmpeg reads them there)."""
    if username is None:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    userinfo = quote(username, safe="")
    if password is not None:
        userinfo += ":" + quote(password, safe="")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def classify_error(error: BaseException, url: str, *, opening: bool) -> SafeCityError:
    """Returns the plain-words error for an FFmpeg/OS failure while opening or reading `url`."""
    if isinstance(error, SafeCityError):
        return error
    where = redact(url)
    # FFmpeg's messages repeat the address, password included: keep only the reason.
    text = getattr(error, "strerror", None) or str(error)
    code = getattr(error, "errno", None)
    if (
        isinstance(error, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError)
        or "401" in text
        or (code in (errno.EACCES, errno.EPERM) and "://" in url)
    ):
        return AuthenticationFailed(
            f"{where} refused the user name or password",
            hint="check the camera's credentials in its settings",
        )
    if (
        isinstance(error, FileNotFoundError | av.error.HTTPNotFoundError)
        or code == errno.ENOENT
        or "404" in text
    ):
        return CameraUnreachable(
            f"{where}: no such file or stream path",
            hint="check the address; the path part is camera-specific",
        )
    if isinstance(error, av.error.InvalidDataError) or code == errno.EINVAL or isinstance(error, ValueError):
        if opening and "://" not in url:
            return NotVideo(
                f"{where} is not a video file SafeCity can read, or it is cut short ({text})",
                hint="check the file; copy it again if it was truncated",
            )
        if opening:
            return NotVideo(
                f"{where} does not contain video SafeCity can decode ({text})",
                hint="check that the address is the camera's video stream, not its web page",
            )
        return StreamCorrupt(
            f"{where}: the stream is garbled or truncated ({text})",
            hint="the camera or file is sending damaged data; check the file or the link",
        )
    if isinstance(error, av.error.ExitError | av.error.TimeoutError | TimeoutError) or code in (
        errno.ETIMEDOUT,
        errno.EINTR,
    ):
        return CameraUnreachable(
            f"{where} did not answer within the time-out",
            hint="check that the camera is powered and reachable from this host",
        )
    if (
        isinstance(error, av.error.ConnectionRefusedError | ConnectionRefusedError)
        or code == errno.ECONNREFUSED
    ):
        return CameraUnreachable(
            f"{where} refused the connection",
            hint="check the camera's address and port, and that its streaming is on",
        )
    if isinstance(error, OSError | av.error.FFmpegError):
        return CameraUnreachable(
            f"{where} failed: {text}", hint="check the camera and the network path to it"
        )
    return StreamCorrupt(f"{where}: unexpected error while reading ({type(error).__name__}: {text})")


class PyAVSource:
    """A source read with PyAV (FFmpeg): RTSP, HTTP(S), files."""

    def __init__(self, url: str, options: SourceOptions | None = None) -> None:
        self.url = url
        self.options = options or SourceOptions()
        self._container: Any = None
        self._stream: Any = None
        self._info: SourceInfo | None = None
        self._lock = threading.Lock()

    @property
    def info(self) -> SourceInfo:
        """Returns what the source carries (valid after `open()`)."""
        if self._info is None:
            raise RuntimeError("open() the source first")
        return self._info

    def _target(self) -> tuple[str, bool]:
        """Returns the address FFmpeg should open and whether it is a live stream."""
        parts = urlsplit(self.url)
        scheme = parts.scheme.lower()
        if scheme == "file":
            return unquote(parts.path), False
        if scheme in ("",) or len(scheme) == 1:  # a plain path (or a Windows drive letter)
            return self.url, False
        return with_credentials(self.url, self.options.username, self.options.password), True

    def open(self) -> None:
        """Connects and finds the video stream; raises plain-words errors."""
        if self._container is not None:
            return
        target, live = self._target()
        if not live and not Path(target).exists():
            raise CameraUnreachable(f"{target}: no such file", hint="check the path")
        timeout = self.options.timeout_s
        ff_options: dict[str, str] = {}
        scheme = urlsplit(target).scheme.lower()
        if scheme in ("rtsp", "rtsps"):
            ff_options.update(rtsp_transport=self.options.transport, timeout=str(int(timeout * 1e6)))
        elif scheme in ("http", "https"):
            ff_options.update(rw_timeout=str(int(timeout * 1e6)))
        try:
            container = av.open(target, options=ff_options, timeout=(timeout, timeout))
        except Exception as error:  # FFmpeg reports everything as exceptions; classify them all
            raise classify_error(error, target, opening=True) from error
        if not container.streams.video:
            container.close()
            raise NotVideo(f"{redact(target)} has no video stream", hint="check the address or the file")
        stream = container.streams.video[0]
        context = stream.codec_context
        if self.options.decode == "keyframes":
            context.skip_frame = "NONKEY"
        elif self.options.decode == "nonref":
            context.skip_frame = "NONREF"
        # One decoder thread per camera (slice threads only, when the stream has slices): frame threads
        # add a frame of latency per thread and cost about a quarter more CPU per frame, which a host
        # running many cameras cannot spare (bench/bench_video.py).
        context.thread_type = "SLICE"
        rate = stream.guessed_rate or stream.average_rate
        fps = float(rate) if rate else None
        if fps is not None and (not 0 < fps <= 240 or (live and context.name == "mjpeg")):
            fps = None
        self._container, self._stream = container, stream
        self._info = SourceInfo(
            codec=context.name, width=context.width, height=context.height, fps=fps, live=live
        )

    def frames(self) -> Iterator[Frame]:
        """Yields decoded frames until the stream ends; raises plain-words errors on failure."""
        self.open()
        container, stream, info = self._container, self._stream, self.info
        time_base = stream.time_base
        # MJPEG over HTTP has no real timestamps (FFmpeg counts frames at a guessed 25 fps): use arrival.
        arrival_times = info.live and info.codec == "mjpeg"
        received = bad_in_row = 0
        anchor: tuple[float, float] | None = None  # (stream seconds, wall seconds) matched at one instant
        started = time.time()
        try:
            for packet in container.demux(stream):
                flush = packet.size == 0 and packet.dts is None  # the demuxer's last, empty packet
                if not flush:
                    received += 1
                    if self.options.on_packet is not None:
                        self.options.on_packet(packet)
                try:
                    decoded = stream.decode(packet)
                    bad_in_row = 0
                except av.error.InvalidDataError as error:
                    bad_in_row += 1
                    if bad_in_row >= _MAX_BAD_PACKETS:
                        raise classify_error(error, self.url, opening=False) from error
                    continue
                for av_frame in decoded:
                    now = time.time()
                    if av_frame.pts is not None and time_base is not None and not arrival_times:
                        pts = float(av_frame.pts * time_base)
                    else:
                        pts = now - started
                    drift = abs(anchor[1] + pts - anchor[0] - now) if anchor else 0.0
                    if anchor is None or (info.live and drift > _MAX_DRIFT_S):
                        anchor = (pts, now)
                    wall = anchor[1] + pts - anchor[0]
                    if self.options.realtime and wall > now:
                        time.sleep(wall - now)
                    yield Frame(
                        pts_seconds=pts,
                        wall_time=datetime.fromtimestamp(wall, UTC),
                        keyframe=bool(av_frame.key_frame),
                        index=received,
                        av_frame=av_frame,
                    )
        except SafeCityError:
            raise
        except Exception as error:
            if self._container is None:  # closed from another thread: a normal stop
                return
            raise classify_error(error, self.url, opening=False) from error
        expected = stream.frames
        if not info.live and expected and received < 0.9 * expected:
            raise StreamCorrupt(
                f"{redact(self.url)} ends after {received} of {expected} frames",
                hint="the file is truncated; copy it again from its source",
            )

    def close(self) -> None:
        """Closes the connection; safe to call twice and from another thread."""
        with self._lock:
            container, self._container = self._container, None
        if container is not None:
            # Closing a broken connection can fail too; there is nothing left to recover.
            with contextlib.suppress(Exception):
                container.close()

    def __enter__(self) -> PyAVSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
