"""Helpers of the recording tests: real H.264 files made with PyAV, a hand-moved clock, registered cameras."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np

from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.context import Context
from safecity.recordings.recorder import RecorderPool, SegmentRecorder

# Recent, so the server's retention pass at start-up keeps it; whole seconds, so names and times agree.
T0 = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)


class FakeClock:
    """A wall clock the test moves by hand (the recorder reads it as time.time)."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now


def encode(
    path: Path,
    *,
    seconds: float = 4.0,
    fps: int = 25,
    size: tuple[int, int] = (320, 240),
    codec: str = "libx264",
    gop: int = 25,
    fmt: str | None = None,
) -> Path:
    """Encodes a moving test pattern to `path` (H.264 by default, a key-frame every `gop` frames)."""
    width, height = size
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        base = np.indices((height, width)).sum(axis=0).astype(np.uint8)
        for i in range(round(seconds * fps)):
            image = np.dstack([base + np.uint8(i * 3 % 256), base // 2, np.full_like(base, i % 255)])
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def feed_file(recorder: SegmentRecorder, path: Path, clock: FakeClock, *, start: float | None = None) -> int:
    """Feeds a file's packets to a recorder as a live camera would deliver them; returns the packet count."""
    base = clock.now if start is None else start
    fed = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        first: float | None = None
        for packet in container.demux(stream):
            stamp = packet.dts if packet.dts is not None else packet.pts
            if stamp is None:
                continue
            t = float(stamp * packet.time_base)
            first = t if first is None else first
            clock.now = base + (t - first)
            recorder.feed(packet)
            fed += 1
    clock.now += 0.04
    return fed


@dataclass
class Recorded:
    """A registered camera with footage: where it starts, ends, and the pool that wrote it."""

    camera_id: str
    start: datetime
    end: datetime
    pool: RecorderPool


def add_camera(
    ctx: Context,
    camera_id: str,
    *,
    district: str = "South",
    lat: float = 24.86,
    lon: float = 67.01,
    **analysis: object,
) -> None:
    """Registers a fixed camera."""
    with ctx.db.session() as session:
        cameras.create(
            session,
            CameraIn.model_validate(
                {
                    "id": camera_id,
                    "name": f"Junction {camera_id}",
                    "kind": "fixed",
                    "district": district,
                    "latitude": lat,
                    "longitude": lon,
                    "analysis": analysis,
                }
            ),
            actor="test",
        )
