"""GPS tracks of body-worn recordings: from the sidecar a camera writes next to its video (GPX or NMEA
0183), or from the video file itself (NMEA sentences in a subtitle or data stream; an ISO 6709 location).

A sidecar is found by the video's name (`clip.mp4` → `clip.gpx`, `clip.nmea`, `clip.nmea.txt`). One
that does not parse raises `TrackError` naming the file and line, so an import can say exactly what
to fix; the video itself is still evidence and is ingested without a track (see `ingest`).

    track = parse_track(Path("FILE0001.gpx"))   # [(datetime, lat, lon), ...]
    lat, lon = parse_iso6709("+24.8607+067.0011/")
"""

from __future__ import annotations

import re
import xml.parsers.expat
from datetime import UTC, date, datetime, time
from pathlib import Path

from safecity.core.errors import InvalidInput

SIDECAR_SUFFIXES = (".gpx", ".nmea", ".nmea.txt")
MAX_SIDECAR_BYTES = 32 * 1024**2
# A track drawn on a page and kept in a row: a ten-hour shift at one fix a second is thinned to this.
MAX_POINTS = 10_000

Fix = tuple[datetime, float, float]


class TrackError(InvalidInput):
    """A GPS sidecar that does not parse: the message names the file and the line."""


def sidecar_for(video: Path) -> Path | None:
    """Returns the GPS sidecar next to `video`, if there is one."""
    for suffix in SIDECAR_SUFFIXES:
        for name in (video.stem + suffix, video.stem + suffix.upper()):
            candidate = video.with_name(name)
            if candidate.is_file():
                return candidate
    return None


def parse_track(path: Path) -> list[Fix]:
    """Returns the fixes of a GPX or NMEA file in time order, thinned to `MAX_POINTS`."""
    data = path.read_bytes()
    if len(data) > MAX_SIDECAR_BYTES:
        raise TrackError(
            f"{path.name}: {len(data)} bytes is too large for a GPS sidecar",
            hint=f"at most {MAX_SIDECAR_BYTES // 1024**2} MiB",
        )
    fixes = parse_gpx(data, path.name) if path.name.lower().endswith(".gpx") else parse_nmea(data, path.name)
    fixes.sort(key=lambda f: f[0])
    return thin(fixes)


def thin(fixes: list[Fix], limit: int = MAX_POINTS) -> list[Fix]:
    """Keeps at most `limit` fixes, evenly spaced, the first and the last always."""
    if len(fixes) <= limit:
        return fixes
    step = (len(fixes) - 1) / (limit - 1)
    return [fixes[round(i * step)] for i in range(limit)]


def _coordinate(value: str, *, low: float, high: float, what: str, where: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise TrackError(
            f"{where}: {what} {value!r} is not a number", hint="fix or remove that line"
        ) from None
    if not low <= number <= high:
        raise TrackError(f"{where}: {what} {number} is outside {low}..{high}", hint="fix or remove that line")
    return number


def _iso_time(text: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TrackError(
            f"{where}: time {text.strip()!r} is not an ISO 8601 time", hint="fix that line"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_gpx(data: bytes, name: str = "track.gpx") -> list[Fix]:
    """Returns the timed track points (`trkpt`, `rtept`, `wpt`) of a GPX document."""
    parser = xml.parsers.expat.ParserCreate()
    # No entity of any kind: a GPX file has none, and an expanding one is an attack on the parser.
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    fixes: list[Fix] = []
    point: dict[str, object] | None = None
    in_time = False
    text: list[str] = []

    def refuse_entities(*_args: object) -> None:
        raise TrackError(
            f"{name} line {parser.CurrentLineNumber}: declares an XML entity", hint="GPX has none"
        )

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal point, in_time
        local = tag.rpartition(":")[2]
        where = f"{name} line {parser.CurrentLineNumber}"
        if local in ("trkpt", "rtept", "wpt"):
            if "lat" not in attrs or "lon" not in attrs:
                raise TrackError(f"{where}: <{local}> has no lat or lon", hint="fix or remove that point")
            point = {
                "lat": _coordinate(attrs["lat"], low=-90, high=90, what="latitude", where=where),
                "lon": _coordinate(attrs["lon"], low=-180, high=180, what="longitude", where=where),
                "line": parser.CurrentLineNumber,
            }
        elif local == "time" and point is not None:
            in_time, text[:] = True, []

    def end(tag: str) -> None:
        nonlocal point, in_time
        local = tag.rpartition(":")[2]
        if local == "time" and in_time and point is not None:
            point["time"] = _iso_time("".join(text), f"{name} line {parser.CurrentLineNumber}")
            in_time = False
        elif local in ("trkpt", "rtept", "wpt") and point is not None:
            if "time" in point:  # an untimed point cannot be put on the video's timeline
                fixes.append((point["time"], point["lat"], point["lon"]))  # type: ignore[arg-type]
            point = None

    def chars(data: str) -> None:
        if in_time:
            text.append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.EntityDeclHandler = refuse_entities
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise TrackError(
            f"{name} line {exc.lineno}: not well-formed XML ({xml.parsers.expat.ErrorString(exc.code)})",
            hint="the file is damaged or is not GPX",
        ) from None
    if not fixes:
        raise TrackError(f"{name}: no timed track points", hint="a GPX track needs <trkpt> with <time>")
    return fixes


def _nmea_checksum_ok(line: str) -> bool:
    body, star, given = line[1:].partition("*")
    if not star:
        return True  # the checksum is optional in NMEA 0183
    value = 0
    for char in body:
        value ^= ord(char)
    return given[:2].upper() == f"{value:02X}"


def _nmea_angle(value: str, hemisphere: str, *, degrees: int, where: str) -> float:
    try:
        whole = float(value)
    except ValueError:
        raise TrackError(
            f"{where}: {value!r} is not an NMEA coordinate", hint="fix or remove that line"
        ) from None
    angle = int(whole // 100) + (whole % 100) / 60
    if hemisphere in ("S", "W"):
        angle = -angle
    elif hemisphere not in ("N", "E"):
        raise TrackError(f"{where}: hemisphere {hemisphere!r} is not N, S, E or W", hint="fix that line")
    limit = 90 if degrees == 2 else 180
    if abs(angle) > limit:
        raise TrackError(f"{where}: coordinate {angle:.5f} is out of range", hint="fix that line")
    return angle


def _nmea_time(value: str, where: str) -> time:
    try:
        seconds = float(value[4:]) if len(value) > 4 else 0.0
        return time(int(value[0:2]), int(value[2:4]), int(seconds), round(seconds % 1 * 1e6) % 1_000_000)
    except ValueError:
        raise TrackError(f"{where}: {value!r} is not an NMEA time (hhmmss)", hint="fix that line") from None


def parse_nmea(data: bytes, name: str = "track.nmea") -> list[Fix]:
    """Returns the fixes of an NMEA 0183 log: RMC sentences (time, date, place); GGA after a dated RMC."""
    try:
        lines = data.decode("ascii").splitlines()
    except UnicodeDecodeError as exc:
        bad = data[: exc.start].count(b"\n") + 1
        raise TrackError(
            f"{name} line {bad}: not ASCII text", hint="NMEA logs are ASCII; is this the right file?"
        ) from None
    fixes: list[Fix] = []
    day: date | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        where = f"{name} line {number}"
        if not line.startswith("$"):
            raise TrackError(
                f"{where}: {line[:40]!r} is not an NMEA sentence", hint="each line starts with '$'"
            )
        if not _nmea_checksum_ok(line):
            raise TrackError(f"{where}: checksum does not match", hint="the line was damaged; remove it")
        fields = line[1:].split("*")[0].split(",")
        kind = fields[0][2:] if len(fields[0]) == 5 else fields[0]
        if kind == "RMC":
            if len(fields) < 10:
                raise TrackError(
                    f"{where}: RMC sentence has {len(fields)} fields, needs 10", hint="fix that line"
                )
            if fields[2] != "A" or not fields[3]:
                continue  # "V": the receiver had no fix
            try:
                day = datetime.strptime(fields[9], "%d%m%y").date()
            except ValueError:
                raise TrackError(f"{where}: date {fields[9]!r} is not ddmmyy", hint="fix that line") from None
            at = datetime.combine(day, _nmea_time(fields[1], where), tzinfo=UTC)
            lat = _nmea_angle(fields[3], fields[4], degrees=2, where=where)
            lon = _nmea_angle(fields[5], fields[6], degrees=3, where=where)
            fixes.append((at, lat, lon))
        elif kind == "GGA" and day is not None:
            if len(fields) < 7:
                raise TrackError(
                    f"{where}: GGA sentence has {len(fields)} fields, needs 7", hint="fix that line"
                )
            if fields[6] in ("", "0") or not fields[2]:
                continue
            at = datetime.combine(day, _nmea_time(fields[1], where), tzinfo=UTC)
            lat = _nmea_angle(fields[2], fields[3], degrees=2, where=where)
            lon = _nmea_angle(fields[4], fields[5], degrees=3, where=where)
            if not fixes or fixes[-1][0] != at:
                fixes.append((at, lat, lon))
    if not fixes:
        raise TrackError(
            f"{name}: no position fixes (no valid RMC sentence)", hint="is the receiver's log empty?"
        )
    return fixes


# Where containers keep a recording's place: QuickTime's ISO 6709 key, and MP4's ©xyz (ffmpeg: `location`).
LOCATION_KEYS = ("com.apple.quicktime.location.ISO6709", "location", "location-eng")
_ISO6709 = re.compile(
    r"^([+-][0-9]+(?:\.[0-9]*)?)([+-][0-9]+(?:\.[0-9]*)?)([+-][0-9]+(?:\.[0-9]*)?)?(?:CRS[^/]*)?/?$"
)
# An NMEA position sentence from any satellite system (GP, GN, GL, GA, BD…), as a camera embeds them.
_SENTENCE = re.compile(rb"\$[A-Z]{2}(?:RMC|GGA),[\x20-\x7e]*?(?=[\r\n\x00$]|$)")


def _iso6709_angle(part: str, degree_digits: int, limit: float, what: str, where: str) -> float:
    """Returns one ISO 6709 coordinate: ±DD(D).D, ±DD(D)MM.M or ±DD(D)MMSS.S."""
    whole, _, fraction = part[1:].partition(".")
    tail = f".{fraction}" if fraction else ""
    if len(whole) <= degree_digits:
        value = float(part[1:])
    elif len(whole) in (degree_digits + 2, degree_digits + 4):
        minutes = (
            float(whole[degree_digits:] + tail) if len(whole) == degree_digits + 2 else int(whole[-4:-2])
        )
        seconds = float(whole[-2:] + tail) if len(whole) == degree_digits + 4 else 0.0
        if minutes >= 60 or seconds >= 60:
            raise TrackError(
                f"{where}: {what} {part!r} has minutes or seconds past 59", hint="is it a location?"
            )
        value = int(whole[:degree_digits]) + minutes / 60 + seconds / 3600
    else:
        raise TrackError(
            f"{where}: {what} {part!r} has too many digits for ISO 6709", hint="is it a location?"
        )
    if value > limit:
        raise TrackError(f"{where}: {what} {part} is outside -{limit:g}..{limit:g}", hint="is it a location?")
    return -value if part[0] == "-" else value


def parse_iso6709(text: str, where: str = "location") -> tuple[float, float]:
    """Returns (latitude, longitude) of an ISO 6709 point such as `+24.8607+067.0011+012.5/`."""
    found = _ISO6709.match(text.strip())
    if found is None:
        raise TrackError(
            f"{where}: {text.strip()[:60]!r} is not an ISO 6709 location",
            hint="expected e.g. +24.8607+067.0011/",
        )
    return (
        _iso6709_angle(found[1], 2, 90, "latitude", where),
        _iso6709_angle(found[2], 3, 180, "longitude", where),
    )


def nmea_sentences(data: bytes) -> bytes:
    """Returns the NMEA position sentences (RMC, GGA) found in a stream's bytes, one a line."""
    return b"\n".join(_SENTENCE.findall(data))


def as_rows(fixes: list[Fix]) -> list[list[object]]:
    """Returns fixes as JSON rows [iso time, lat, lon]."""
    return [[at.isoformat(), round(lat, 7), round(lon, 7)] for at, lat, lon in fixes]
