"""GPS from GoPro's GPMF metadata: the `gpmd` data track of a GoPro MP4, one payload a second or so.

GPMF is KLV: a 4-character key, a 1-byte type (0 for a nested list), a 1-byte size of one sample, a
2-byte repeat count, then size × repeat bytes padded to a multiple of 4 (big-endian throughout). Each
payload is `DEVC` (a device) holding `STRM`s (streams); the GPS stream has `GPS5` samples (latitude,
longitude, altitude, 2D and 3D speed as integers divided by `SCAL`), `GPSU` (the UTC time of its first
sample, `yymmddhhmmss.sss`), `GPSF` (the fix: 0 none, 2 2D, 3 3D) and `GPSP` (dilution of precision
× 100). The samples of one payload are spread evenly over its duration. Samples without a fix are left
out; a poor precision is not a reason to (the officer was there, within its error).

Newer cameras (HERO11 on) write `GPS9` beside or instead of `GPS5`: a structure (type `?`) laid out by
the stream's `TYPE`, `lllllllSS`, with one `SCAL` divisor per value — latitude, longitude, altitude, 2D
and 3D speed, days since 2000-01-01, seconds since midnight UTC, DOP and fix. Each sample carries its
own time and fix, so where a payload has `GPS9` its `GPS5` is not read: its times would only be spread.
Either way a fix is a time and a place: altitude, speed and DOP are not kept.

    track = GpmfTrack("stream #2 of GOPR0001.MP4")
    track.add(bytes(packet), duration_s=1.001)     # raises TrackError naming the sample and the byte
    track.fixes()                                   # [(datetime, lat, lon), ...]
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
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
# The values of a GPS9 sample in order: its days count from GPS9_EPOCH, its seconds from midnight UTC.
GPS9_VALUES = ("latitude", "longitude", "altitude", "2D speed", "3D speed", "days", "seconds", "DOP", "fix")
GPS9_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
DAY_SECONDS = 86_400


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

    def numbers(self, where: str, layout: str = "") -> list[tuple[float, ...]]:
        """Returns the samples of a numeric entry, each a tuple of its values; a structure (type '?')
        is read by `layout`, its stream's `TYPE` (e.g. 'lllllllSS')."""
        here = f"{where} byte {self.at}"
        kind = chr(self.type) if self.type else "nested"
        if kind == "?":
            fmt = _structure(layout, self.key, here)
            what = f"TYPE {layout!r} structures ({struct.calcsize('>' + fmt)} bytes)"
        else:
            value = _FORMATS.get(kind)
            if value is None:
                raise TrackError(f"{here}: {self.key} has type {kind!r}, not a number", hint="damaged?")
            fmt, what = value * (self.size // struct.calcsize(">" + value)), f"{kind!r} values"
        width = struct.calcsize(">" + fmt)
        if not 0 < width <= self.size or self.size % width:
            raise TrackError(
                f"{here}: {self.key} samples of {self.size} bytes are not whole {what}",
                hint="the GPS metadata is damaged",
            )
        return list(struct.iter_unpack(">" + fmt, self.payload[: self.size * self.repeat]))

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


def _structure(layout: str, key: str, where: str) -> str:
    """Returns the `struct` format of a GPMF `TYPE`, one character a value."""
    if not layout:
        raise TrackError(
            f"{where}: {key} has type '?', not a number: a structure, and its stream has no TYPE "
            "to read it by",
            hint="the GPS metadata is damaged",
        )
    for char in layout:
        if char not in _FORMATS:
            raise TrackError(
                f"{where}: TYPE {layout!r} has {char!r}, not a number type",
                hint="the GPS metadata is damaged",
            )
    return "".join(_FORMATS[char] for char in layout)


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
    """What one STRM says about GPS, read only when the payload's fixes come from it: its `GPS5` or
    `GPS9` samples, their scale, and for `GPS5` the time and fix of the whole payload."""

    samples: Klv
    layout: str = ""
    scale: Klv | None = None
    time: Klv | None = None
    fix: Klv | None = None

    def shape(self) -> str:
        """Says how the samples are laid out: their TYPE, or their one type."""
        kind = chr(self.samples.type)
        return f"TYPE {self.layout!r}" if kind == "?" else f"type {kind!r}"

    def divisors(self, where: str) -> tuple[float, ...]:
        """Returns the SCAL divisors, (1,) when the stream has none."""
        if self.scale is None:
            return (1.0,)
        return tuple(value for sample in self.scale.numbers(where) for value in sample)


def _gps_streams(payload: bytes, where: str) -> Iterator[_GpsStream]:
    for device in entries(payload, where):
        if device.key != "DEVC" or device.type != NESTED:
            continue  # only devices hold streams; anything else at the top is not ours to read
        for stream in device.entries(where):
            if stream.key != "STRM" or stream.type != NESTED:
                continue
            found: dict[str, Klv] = {}
            for entry in stream.entries(where):
                if entry.key in ("SCAL", "TYPE", "GPSU", "GPSF", "GPS5", "GPS9"):
                    found[entry.key] = entry
            samples = found.get("GPS9") or found.get("GPS5")
            if samples is not None and samples.repeat:
                layout = found["TYPE"].text() if "TYPE" in found else ""
                yield _GpsStream(samples, layout, found.get("SCAL"), found.get("GPSU"), found.get("GPSF"))


def payload_fixes(payload: bytes, where: str, *, duration_s: float = 1.0) -> tuple[list[Fix], int]:
    """Returns the fixes of one GPMF payload and how many GPS samples it held (with a fix or not),
    from its `GPS9` streams where it has any, else from its `GPS5`; raises TrackError naming the byte
    of what is damaged."""
    streams = list(_gps_streams(payload, where))
    gps9 = [gps for gps in streams if gps.samples.key == "GPS9"]
    fixes: list[Fix] = []
    seen = 0
    for gps in gps9 or streams:
        found, count = _gps9_fixes(gps, where) if gps9 else _gps5_fixes(gps, where, duration_s)
        fixes.extend(found)
        seen += count
    return fixes, seen


def _on_earth(lat: float, lon: float, what: str) -> None:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise TrackError(
            f"{what} is at {lat:.5f}, {lon:.5f}, not a place on Earth", hint="the GPS metadata is damaged"
        )


def _gps5_fixes(gps: _GpsStream, where: str, duration_s: float) -> tuple[list[Fix], int]:
    """The samples of a GPS5 stream, timed from GPSU and spread over the payload's duration."""
    here = f"{where} byte {gps.samples.at}"
    samples = gps.samples.numbers(where, gps.layout)
    fix = gps.fix.numbers(where) if gps.fix is not None else []
    if fix and fix[0][0] == NO_FIX:
        return [], len(samples)
    if len(samples[0]) < 2:
        raise TrackError(f"{here}: GPS5 samples have {len(samples[0])} values", hint="damaged?")
    scale = gps.divisors(where)
    if len(scale) not in (1, len(samples[0])) or not all(scale[:2]):
        raise TrackError(
            f"{here}: SCAL {list(scale)} does not scale {len(samples[0])} GPS5 values",
            hint="the GPS metadata is damaged",
        )
    if gps.time is None:
        raise TrackError(f"{here}: GPS5 samples without a GPSU time", hint="the GPS metadata is damaged")
    first = _utc(gps.time.text(), f"{where} byte {gps.time.at}")
    lat_scale, lon_scale = (scale[0], scale[0]) if len(scale) == 1 else scale[:2]
    step = duration_s / len(samples)
    fixes: list[Fix] = []
    for i, sample in enumerate(samples):
        lat, lon = sample[0] / lat_scale, sample[1] / lon_scale
        _on_earth(lat, lon, f"{here}: GPS5 sample {i}")
        fixes.append((first + timedelta(seconds=i * step), lat, lon))
    return fixes, len(samples)


def _gps9_fixes(gps: _GpsStream, where: str) -> tuple[list[Fix], int]:
    """The samples of a GPS9 stream, each at its own time (days since 2000 and seconds since midnight)."""
    here = f"{where} byte {gps.samples.at}"
    samples = gps.samples.numbers(where, gps.layout)
    if len(samples[0]) != len(GPS9_VALUES):
        raise TrackError(
            f"{here}: GPS9 samples have {len(samples[0])} values ({gps.shape()}), not the "
            f"{len(GPS9_VALUES)} of {', '.join(GPS9_VALUES)}",
            hint="the GPS metadata is damaged",
        )
    scale = gps.divisors(where)
    if len(scale) != len(GPS9_VALUES):
        raise TrackError(
            f"{here}: SCAL {list(scale)} has {len(scale)} divisors, GPS9 needs one for each of its "
            f"{len(GPS9_VALUES)} values",
            hint="the GPS metadata is damaged",
        )
    # A zero anywhere in SCAL is damage, and the rest of that SCAL cannot be trusted either.
    zero = next((name for name, divisor in zip(GPS9_VALUES, scale, strict=True) if not divisor), None)
    if zero is not None:
        raise TrackError(
            f"{here}: SCAL {list(scale)} divides the GPS9 {zero} by 0", hint="the GPS metadata is damaged"
        )
    fixes: list[Fix] = []
    for i, sample in enumerate(samples):
        if sample[8] == NO_FIX:
            continue
        lat, lon, days, seconds = (sample[k] / scale[k] for k in (0, 1, 5, 6))
        _on_earth(lat, lon, f"{here}: GPS9 sample {i}")
        try:
            if not (days >= 0 and 0 <= seconds < DAY_SECONDS):
                raise OverflowError
            at = GPS9_EPOCH + timedelta(days=days, seconds=seconds)
        except (OverflowError, ValueError):
            raise TrackError(
                f"{here}: GPS9 sample {i} says day {days:g} since 2000-01-01, second {seconds:g} of the "
                "day, not a time",
                hint="the GPS metadata is damaged",
            ) from None
        fixes.append((at, lat, lon))
    return fixes, len(samples)


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
                f"{self.where}: {self.samples} GPS samples, none with a fix (GPSF 0, or GPS9 fix 0)",
                hint="the camera had no satellite lock while it recorded",
            )
        return sorted(self._fixes, key=lambda fix: fix[0])
