"""How an MP4's picture is to be shown: the display matrix in its video track's header (`tkhd`).

Phones and body cameras held sideways record the picture as the sensor sees it and say in the track
header how far to turn it; some (front cameras, mirrored body cameras) also say to flip it. PyAV reads
the matrix (`display_matrix(frame)`; `VideoFrame.rotation` is only its turn, and reads a mirror as a
half turn) but cannot write it, so a file that is re-encoded would play on its side or the wrong way
round; `set_matrix` writes it into the finished file, in place, as FFmpeg's own muxer writes a display
matrix (only the 36 bytes of the matrix change).

    set_matrix(Path("redacted.mp4"), display_matrix(first_frame))   # exactly the original's
    set_rotation(Path("upright.mp4"), 90)                             # degrees, as VideoFrame.rotation
    stored_box((250, 90, 50, 50), matrix, 320, 240)   # a box drawn on the shown picture, in stored pixels
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, cast

import av
from av.sidedata.sidedata import SideDataContainer, Type

from safecity.core.errors import InvalidInput

Matrix = tuple[int, int, int, int, int, int, int, int, int]
"""A display matrix as MP4 and FFmpeg store it: a, b, u, c, d, v, x, y, w (16.16 fixed; u, v, w 2.30)."""

IDENTITY: Matrix = (1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 30)


def rotation_matrix(degrees: float) -> Matrix:
    """Returns the matrix of a turn, in FFmpeg's layout; `degrees` as PyAV's `VideoFrame.rotation`
    reads it back (FFmpeg's `av_display_rotation_get` negated)."""
    radians = math.radians(degrees)
    c, s = math.cos(radians), math.sin(radians)
    a, b, c_, d = (round(v * 65536) for v in (c, -s, s, c))
    return (a, b, 0, c_, d, 0, 0, 0, 1 << 30)


def mirrored(matrix: Sequence[int], *, horizontal: bool = True) -> Matrix:
    """Returns `matrix` followed by a left-right flip (or an upside-down one), as FFmpeg's
    `av_display_matrix_flip` makes it."""
    m = list(matrix)
    for i in (0, 3, 6) if horizontal else (1, 4, 7):
        m[i] = -m[i]
    return _checked(m)


def display_matrix(frame: av.VideoFrame) -> Matrix:
    """Returns the display matrix FFmpeg gives a decoded frame (its container's, MP4 or Matroska), or
    the identity when there is none."""
    try:
        # PyAV's stubs type a frame's side data as motion vectors only; it is a SideDataContainer.
        raw = bytes(cast(SideDataContainer, frame.side_data)[Type.DISPLAYMATRIX])
    except KeyError:
        return IDENTITY
    if len(raw) != 36:
        return IDENTITY
    return _checked(struct.unpack("=9i", raw))  # FFmpeg keeps it in the machine's byte order


def stored_box(
    box: tuple[float, float, float, float], matrix: Sequence[int], width: int, height: int
) -> tuple[float, float, float, float]:
    """Returns a box (x, y, w, h) drawn on the picture as a player shows it — turned and flipped by
    `matrix`, as Chromium does, and moved to start at 0, 0 — in the pixels of the `width` × `height`
    picture as stored (the decoded frame), clipped to it."""
    a, b, c, d = (value / 65536 for value in (matrix[0], matrix[1], matrix[3], matrix[4]))
    det = a * d - b * c
    if abs(det) < 1e-9:
        raise InvalidInput(f"the display matrix {list(matrix)} shows no picture", hint="is the file damaged?")
    # A stored pixel (p, q) is shown at (a·p + c·q, b·p + d·q), less the turned picture's top-left corner.
    corners = [(a * p + c * q, b * p + d * q) for p in (0, width) for q in (0, height)]
    left, top = min(x for x, _ in corners), min(y for _, y in corners)
    x, y, w, h = box
    back = [
        (((sx + left) * d - c * (sy + top)) / det, (a * (sy + top) - b * (sx + left)) / det)
        for sx in (x, x + w)
        for sy in (y, y + h)
    ]
    x0 = max(0.0, min(p for p, _ in back))
    y0 = max(0.0, min(q for _, q in back))
    x1 = min(float(width), max(p for p, _ in back))
    y1 = min(float(height), max(q for _, q in back))
    return x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0)


def _checked(values: Sequence[int]) -> Matrix:
    if len(values) != 9 or not all(-(1 << 31) <= int(v) < 1 << 31 for v in values):
        raise InvalidInput(
            f"a display matrix is 9 signed 32-bit numbers, not {list(values)[:12]}",
            hint="a, b, u, c, d, v, x, y, w",
        )
    a, b, u, c, d, v, x, y, w = (int(v) for v in values)
    return (a, b, u, c, d, v, x, y, w)


def _boxes(handle: BinaryIO, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """Returns (type, payload start, box end) of each box from `start` to `end`."""
    found = []
    at = start
    while at + 8 <= end:
        handle.seek(at)
        size, kind = struct.unpack(">I4s", handle.read(8))
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", handle.read(8))
            header = 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            break
        found.append((kind, at + header, at + size))
        at += size
    return found


def _video_tkhd(handle: BinaryIO, length: int) -> int | None:
    """Returns the file offset of the video track's `tkhd` payload, or None."""
    for kind, start, end in _boxes(handle, 0, length):
        if kind != b"moov":
            continue
        for trak, t_start, t_end in _boxes(handle, start, end):
            if trak != b"trak":
                continue
            inner = _boxes(handle, t_start, t_end)
            tkhd = next((s for k, s, _ in inner if k == b"tkhd"), None)
            for mdia, m_start, m_end in inner:
                if mdia != b"mdia":
                    continue
                for hdlr, h_start, _ in _boxes(handle, m_start, m_end):
                    if hdlr == b"hdlr":
                        handle.seek(h_start + 8)
                        if handle.read(4) == b"vide" and tkhd is not None:
                            return tkhd
    return None


def _matrix_at(handle: BinaryIO, path: Path) -> int:
    """Returns the file offset of the video track header's matrix; raises for a file without one."""
    tkhd = _video_tkhd(handle, path.stat().st_size)
    if tkhd is None:
        raise InvalidInput(f"{path.name} has no MP4 video track header", hint="is it an MP4 file?")
    handle.seek(tkhd)
    version = handle.read(1)[0]
    # version, flags; times, track id, reserved, duration (32 or 64 bit); reserved, layer, group,
    # volume, reserved: then the matrix.
    return tkhd + (52 if version == 1 else 40)


def read_matrix(path: Path) -> Matrix:
    """Returns the display matrix in an MP4 video track header, as stored."""
    with path.open("rb") as handle:
        handle.seek(_matrix_at(handle, path))
        return _checked(struct.unpack(">9i", handle.read(36)))


def set_matrix(path: Path, matrix: Sequence[int]) -> None:
    """Writes a display matrix (FFmpeg's layout, as `display_matrix` reads it) into an MP4 video track
    header, in place."""
    values = _checked(matrix)
    with path.open("r+b") as handle:
        handle.seek(_matrix_at(handle, path))
        handle.write(struct.pack(">9i", *values))


def set_rotation(path: Path, degrees: float) -> None:
    """Writes a turn (degrees, as `VideoFrame.rotation` reads it) into an MP4 video track header, in place."""
    set_matrix(path, rotation_matrix(degrees))
