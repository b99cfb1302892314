"""GPS from GoPro's GPMF metadata: the `gpmd` data track of a GoPro MP4, one payload a second or so.

GPMF is KLV: a 4-character key, a 1-byte type (0 for a nested list), a 1-byte size of one sample, a
2-byte repeat count, then size × repeat bytes padded to a multiple of 4 (big-endian throughout). Each
payload is `DEVC` (a device) holding `STRM`s (streams); the GPS stream has `GPS5` samples (latitude,
longitude, altitude, 2D and 3D speed as integers divided by `SCAL`), `GPSU` (the UTC time of its first
sample, `yymmddhhmmss.sss`), `GPSF` (the fix: 0 none, 2 2D, 3 3D) and `GPSP` (dilution of precision
× 100). The samples of one payload are spread evenly over its duration. Samples without a fix are left
out; a poor precision is not a reason to (the officer was there, within its error). `GPS9`, which the
newest cameras write beside or instead of `GPS5`, is not read.

    track = GpmfTrack("stream #2 of GOPR0001.MP4")
    track.add(bytes(packet), duration_s=1.001)     # raises TrackError naming the sample and the byte
    track.fixes()                                   # [(datetime, lat, lon), ...]
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from safecity.bodyworn.gps import Fix, TrackError

NESTED = 0
# One value of each GPMF type, as `struct` reads it (big-endian); 'c' and 'U' are text.
_FORMATS = {
    "b": "b",
    "B": "B",
    "s": "h",
    "S": "H",
    "l": "i",
    "L": "I",
    "j": "q",
    "J": "Q",
    "f": "f",
    "d": "d",
}
NO_FIX = 0


def starts_gpmf(data: bytes) -> bool:
    """True when a data packet looks like a GPMF payload (a nested `DEVC` first)."""
    return len(data) >= 8 and data[:4] == b"DEVC" and data[4] == NESTED


@dataclass(frozen=True)
class Klv:
    """One GPMF entry: its key, type (a character, or 0 for nested), sample size, repeat and payload."""

    key: str
    type: int
    size: int
    repeat: int
    payload: bytes
    at: int  # the byte where the entry starts in its payload, for error messages

    def entries(self, where: str) -> Iterator[Klv]:
        """Yields the entries nested in this one."""
        return entries(self.payload, where, base=self.at + 8)

    def numbers(self, where: str) -> list[tuple[float, ...]]:
        """Returns the samples of a numeric entry, each a tuple of its values."""
        kind = chr(self.type) if self.type else "nested"
        fmt = _FORMATS.get(kind)
        if fmt is None:
            raise TrackError(
                f"{where} byte {self.at}: {self.key} has type {kind!r}, not a number", hint="damaged?"
            )
        width = struct.calcsize(fmt)
        if self.size % width:
            raise TrackError(
                f"{where} byte {self.at}: {self.key} samples of {self.size} bytes are not whole "
                f"{kind!r} values",
                hint="the GPS metadata is damaged",
            )
        per = self.size // width
        values = struct.unpack(f">{per * self.repeat}{fmt}", self.payload[: self.size * self.repeat])
        return [tuple(values[i : i + per]) for i in range(0, len(values), per)]

    def text(self) -> str:
        """Returns a text entry (type 'c' or 'U') without its padding."""
        return self.payload[: self.size * self.repeat].rstrip(b"\x00").decode("ascii", "replace")


def entries(data: bytes, where: str, *, base: int = 0) -> Iterator[Klv]:
    """Yields the KLV entries of `data` in order; raises TrackError for one that runs past the end."""
    at = 0
    while at < len(data):
        if len(data) - at < 8:
            raise TrackError(
                f"{where} byte {base + at}: {len(data) - at} bytes left, too few for a GPMF entry",
                hint="the GPS metadata is damaged",
            )
        key_bytes, kind, size, repeat = struct.unpack_from(">4sBBH", data, at)
        key = key_bytes.decode("ascii", "replace")
        if not key_bytes.isascii() or not key_bytes.strip(b"\x00"):
            raise TrackError(
                f"{where} byte {base + at}: {key_bytes!r} is not a GPMF key",
                hint="the GPS metadata is damaged",
            )
        length = size * repeat
        padded = (length + 3) // 4 * 4
        if at + 8 + length > len(data):
            raise TrackError(
                f"{where} byte {base + at}: {key} says {length} bytes, only {len(data) - at - 8} follow",
                hint="the GPS metadata is damaged or cut short",
            )
        if key_bytes != b"\x00\x00\x00\x00":  # GoPro pads some payloads with empty entries
            yield Klv(key, kind, size, repeat, data[at + 8 : at + 8 + length], base + at)
        at += 8 + padded


def _utc(text: str, where: str) -> datetime:
    try:
        moment = datetime.strptime(text[:16], "%y%m%d%H%M%S.%f")
    except ValueError:
        raise TrackError(
            f"{where}: GPSU {text!r} is not a GPS time (yymmddhhmmss.sss)", hint="the GPS metadata is damaged"
        ) from None
    return moment.replace(tzinfo=UTC)


@dataclass
class _GpsStream:
    """What one STRM says about GPS: its scale, time, fix, precision and samples."""

    scale: tuple[float, ...] = (1.0,)
    time: datetime | None = None
    fix: int | None = None
    samples: list[tuple[float, ...]] = field(default_factory=list)
    at: int = 0


def _gps_streams(payload: bytes, where: str) -> Iterator[_GpsStream]:
    for device in entries(payload, where):
        if device.key != "DEVC" or device.type != NESTED:
            continue  # only devices hold streams; anything else at the top is not ours to read
        for stream in device.entries(where):
            if stream.key != "STRM" or stream.type != NESTED:
                continue
            gps = _GpsStream(at=stream.at)
            for entry in stream.entries(where):
                if entry.key == "SCAL":
                    gps.scale = tuple(value for sample in entry.numbers(where) for value in sample)
                elif entry.key == "GPSU":
                    gps.time = _utc(entry.text(), f"{where} byte {entry.at}")
                elif entry.key == "GPSF":
                    gps.fix = int(entry.numbers(where)[0][0])
                elif entry.key == "GPS5":
                    gps.samples = entry.numbers(where)
                    gps.at = entry.at
            if gps.samples:
                yield gps


def payload_fixes(payload: bytes, where: str, *, duration_s: float = 1.0) -> tuple[list[Fix], int]:
    """Returns the fixes of one GPMF payload and how many GPS samples it held (with a fix or not);
    raises TrackError naming the byte of what is damaged."""
    fixes: list[Fix] = []
    seen = 0
    for gps in _gps_streams(payload, where):
        here = f"{where} byte {gps.at}"
        seen += len(gps.samples)
        if gps.fix == NO_FIX:
            continue
        if len(gps.samples[0]) < 2:
            raise TrackError(f"{here}: GPS5 samples have {len(gps.samples[0])} values", hint="damaged?")
        if len(gps.scale) not in (1, len(gps.samples[0])) or not all(gps.scale[:2]):
            raise TrackError(
                f"{here}: SCAL {list(gps.scale)} does not scale {len(gps.samples[0])} GPS5 values",
                hint="the GPS metadata is damaged",
            )
        first = gps.time
        if first is None:
            raise TrackError(f"{here}: GPS5 samples without a GPSU time", hint="the GPS metadata is damaged")
        lat_scale, lon_scale = (gps.scale[0], gps.scale[0]) if len(gps.scale) == 1 else gps.scale[:2]
        step = duration_s / len(gps.samples)
        for i, sample in enumerate(gps.samples):
            lat, lon = sample[0] / lat_scale, sample[1] / lon_scale
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise TrackError(
                    f"{here}: GPS5 sample {i} is at {lat:.5f}, {lon:.5f}, not a place on Earth",
                    hint="the GPS metadata is damaged",
                )
            fixes.append((first + timedelta(seconds=i * step), lat, lon))
    return fixes, seen


class GpmfTrack:
    """The GPS fixes of a GPMF stream, payload by payload, in time order once `fixes` is read."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.payloads = 0
        self.samples = 0
        self._fixes: list[Fix] = []

    def add(self, payload: bytes, duration_s: float | None = None) -> None:
        """Reads one payload (an MP4 sample of the `gpmd` track) of `duration_s` seconds (1 if unknown)."""
        self.payloads += 1
        found, seen = payload_fixes(
            payload, f"{self.where} sample {self.payloads}", duration_s=duration_s or 1.0
        )
        self._fixes.extend(found)
        self.samples += seen

    def fixes(self) -> list[Fix]:
        """Returns the fixes in time order; raises TrackError when the camera wrote GPS samples but
        never had a fix (a camera with its GPS off writes none, and has no track, not an error)."""
        if self.samples and not self._fixes:
            raise TrackError(
                f"{self.where}: {self.samples} GPS samples, none with a fix (GPSF 0)",
                hint="the camera had no satellite lock while it recorded",
            )
        return sorted(self._fixes, key=lambda fix: fix[0])
