"""Helpers of the body-worn tests: small real recordings made with PyAV, GPS sidecars, ingested items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np

from safecity.bodyworn import ingest
from safecity.bodyworn.models import ImportResult, ItemMeta
from safecity.core.context import Context

RECORDED = datetime(2026, 3, 14, 9, 30, 0, tzinfo=UTC)
KARACHI = (24.8607, 67.0011)


def make_video(
    path: Path,
    *,
    seconds: float = 1.0,
    fps: int = 15,
    size: tuple[int, int] = (160, 120),
    recorded_at: datetime | None = RECORDED,
    seed: int = 0,
) -> Path:
    """Encodes a small H.264 recording (a moving pattern) with the camera's creation time in its metadata."""
    width, height = size
    with av.open(str(path), "w", format="mp4") as out:
        if recorded_at is not None:
            out.metadata["creation_time"] = recorded_at.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        base = np.indices((height, width)).sum(axis=0).astype(np.uint8)
        for i in range(round(seconds * fps)):
            image = np.dstack(
                [base + np.uint8((i * 5 + seed) % 256), base // 2, np.full_like(base, (seed * 31) % 255)]
            )
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def gpx(points: int = 5, *, start: datetime = RECORDED) -> str:
    """Returns a GPX track walking north-east from central Karachi, one fix a second."""
    rows = "\n".join(
        f'      <trkpt lat="{KARACHI[0] + i * 1e-4:.6f}" lon="{KARACHI[1] + i * 1e-4:.6f}">'
        f"<time>{(start + timedelta(seconds=i)).strftime('%Y-%m-%dT%H:%M:%SZ')}</time></trkpt>"
        for i in range(points)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">\n'
        f"  <trk><trkseg>\n{rows}\n  </trkseg></trk>\n</gpx>\n"
    )


def nmea_line(body: str) -> str:
    """Returns an NMEA sentence with its checksum."""
    value = 0
    for char in body:
        value ^= ord(char)
    return f"${body}*{value:02X}"


META = ItemMeta(officer="pc.rana", device="BC-17")


def ingest_one(
    ctx: Context, folder: Path, name: str = "FILE0001.MP4", *, seed: int = 0, **meta: object
) -> ImportResult:
    """Makes a recording in `folder` and ingests it; returns the result."""
    folder.mkdir(parents=True, exist_ok=True)
    path = make_video(folder / name, seed=seed)
    return ingest.ingest_file(ctx, path, META.model_copy(update=meta), actor="dock-7")
