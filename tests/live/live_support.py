"""Helpers of the live video tests: H.264 and H.265 as cameras send them, and decoding what a viewer got."""

from __future__ import annotations

import io
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from safecity.demo.scenes import H264Encoder
from safecity.live import protocol


def picture(i: int, width: int = 640, height: int = 360) -> np.ndarray:
    """Returns frame `i` of a moving test pattern (so every frame differs, as a camera's do)."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :, 1] = 60
    x = (i * 17) % (width - 40)
    image[100:140, x : x + 40] = 230
    return image


def feed_h264(feed: Callable[[Any], None], frames: int, *, fps: int = 10, start: int = 0) -> None:
    """Encodes `frames` pictures as a camera would (key-frame every 2 s) and hands each packet to `feed`."""
    encoder = H264Encoder(fps, feed)
    for i in range(start, start + frames):
        encoder.encode(picture(i), i / fps)
    encoder.close()


def write_hevc(path: Path, *, seconds: float = 4, fps: int = 10) -> Path:
    """Writes an H.265 file (a codec browsers cannot play) of moving pictures."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx265", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.codec_context.gop_size = fps
        stream.options = {"x265-params": "log-level=error:keyint=10", "preset": "ultrafast"}
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(picture(i), format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def decode(messages: list[bytes]) -> list[av.VideoFrame]:
    """Decodes what a viewer received (its last init segment and the fragments after it)."""
    inits = [i for i, m in enumerate(messages) if m[0] == protocol.INIT]
    assert inits, "no init segment was sent"
    start = inits[-1]
    data = protocol.init_segment(messages[start]) + b"".join(
        protocol.payload(m) for m in messages[start + 1 :] if m[0] == protocol.FRAGMENT
    )
    with av.open(io.BytesIO(data), format="mp4") as container:
        return list(container.decode(video=0))


def kinds(messages: list[bytes]) -> list[int]:
    """Returns the kind of each message."""
    return [m[0] for m in messages]


def write_heavy_h264(path: Path, *, frames: int = 20, fps: int = 10) -> Path:
    """Writes H.264 of pure noise at near-lossless quality: about 3 MB/s, to fill a stalled socket fast."""
    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.codec_context.gop_size = fps
        stream.options = {"preset": "ultrafast", "crf": "1"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(
                rng.integers(0, 255, (360, 640, 3), dtype=np.uint8), format="bgr24"
            )
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
