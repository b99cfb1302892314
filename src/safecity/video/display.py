"""How an MP4's picture is to be shown: the rotation in its video track's header (`tkhd` matrix).

Phones and body cameras held sideways record the picture as the sensor sees it and say in the track
header how far to turn it. PyAV can read that turn (`VideoFrame.rotation`) but cannot write it, so a
file that is re-encoded would play on its side; `set_rotation` writes it into the finished file, in
place, as FFmpeg's own muxer writes a display matrix (only the 36 bytes of the matrix change).

    set_rotation(Path("redacted.mp4"), frame.rotation)     # degrees, as PyAV's VideoFrame.rotation
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import BinaryIO

from safecity.core.errors import InvalidInput


def rotation_matrix(degrees: float) -> bytes:
    """Returns the 3×3 matrix of a turn as MP4 stores it, in FFmpeg's layout; `degrees` as PyAV's
    `VideoFrame.rotation` reads it back (FFmpeg's `av_display_rotation_get` negated)."""
    radians = math.radians(degrees)
    c, s = math.cos(radians), math.sin(radians)
    fixed = [round(v * 65536) for v in (c, -s, 0.0, s, c, 0.0, 0.0, 0.0)]
    fixed[2] = fixed[5] = 0  # u, v and w are 2.30 fixed point
    return struct.pack(">9i", *fixed, 1 << 30)


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


def set_rotation(path: Path, degrees: float) -> None:
    """Writes a turn (degrees, as `VideoFrame.rotation` reads it) into an MP4 video track header, in place."""
    with path.open("r+b") as handle:
        tkhd = _video_tkhd(handle, path.stat().st_size)
        if tkhd is None:
            raise InvalidInput(f"{path.name} has no MP4 video track header", hint="is it an MP4 file?")
        handle.seek(tkhd)
        version = handle.read(1)[0]
        # version, flags; times, track id, reserved, duration (32 or 64 bit); reserved, layer, group,
        # volume, reserved: then the matrix.
        handle.seek(tkhd + (52 if version == 1 else 40))
        handle.write(rotation_matrix(degrees))
