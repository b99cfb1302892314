"""Per-camera configuration: the typed settings, zones and lines that the cameras domain stores and versions,
the worker's pipelines and the recorder read, the import checks and the camera page's form is built from.

Like Frigate's configuration, every field has a title and a description, purposes are enums and no
model takes a key it does not declare, so a typo (`analysis_fsp`) is an error naming the field, never
a setting silently kept and silently ignored:

    >>> CameraConfig.model_validate({"analysis": {"decode": "keyframes"}, "zones": [
    ...     {"name": "road", "polygon": [[0, 300], [640, 300], [640, 360], [0, 360]], "purpose": "roi"}]})
"""

from __future__ import annotations

import logging
import math
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)

log = logging.getLogger(__name__)

# Image coordinates in pixels: finite, not negative, within the largest frame a camera sends (16K).
Coordinate = Annotated[float, Field(ge=0, le=16384, allow_inf_nan=False)]
Point = tuple[Coordinate, Coordinate]


class Decode(StrEnum):
    """Which frames a stream decodes."""

    all = "all"
    nonref = "nonref"
    keyframes = "keyframes"


class VehicleDetector(StrEnum):
    """How an ANPR camera finds vehicles."""

    motion = "motion"
    nanodet = "nanodet"
    yolo11n = "yolo11n"


class PtzControl(StrEnum):
    """Whether the single camera view offers pan, tilt and zoom for a camera."""

    auto = "auto"
    on = "on"
    off = "off"


class ZonePurpose(StrEnum):
    """What a zone is for; `docs/architecture.md` says which pipeline uses which."""

    roi = "roi"
    no_parking = "no_parking"
    restricted = "restricted"
    crowd = "crowd"
    loitering = "loitering"


class LinePurpose(StrEnum):
    """What a line is for; `docs/architecture.md` says which pipeline uses which."""

    stop_line = "stop_line"
    counting = "count"  # named so it does not hide str.count
    speed_trap = "speed_trap"


# Purposes a pipeline acts on today; the others are stored and shown for the analytics still to come.
USED_BY: dict[str, str] = {
    "zone roi": "ANPR and face pipelines: a vehicle or face outside every roi zone is ignored",
    "line stop_line": "ANPR pipeline: the red-light rule's stop line (one per camera)",
    "helmet and seat-belt checks": "ANPR pipeline, when a helmet or seat-belt model is installed",
    "other purposes": "stored and shown; no pipeline acts on them yet",
}


class AnalysisSettings(BaseModel):
    """How a camera is analysed, recorded and enforced."""

    model_config = ConfigDict(extra="forbid", title="Analysis settings")

    analysis_fps: float = Field(
        default=5.0,
        gt=0,
        le=60,
        allow_inf_nan=False,
        title="Analysis rate",
        description="Frames per second analysed (0 < fps ≤ 60).",
    )
    decode: Decode = Field(
        default=Decode.all,
        title="Decoding",
        description="all frames, nonref (skips non-reference frames) or keyframes: less CPU, fewer frames.",
    )
    detector: VehicleDetector = Field(
        default=VehicleDetector.nanodet,
        title="Vehicle detector",
        description="nanodet: the NanoDet-m COCO model (shipped) finds cars, motorcycles, buses, trucks and "
        "bicycles on frames where something moved, and keeps those that moved; motion: moving blobs only "
        "(no model; anything that moves is a vehicle); yolo11n: the optional YOLO11n plug-in (AGPL-3.0 "
        "weights, stronger on people), used like nanodet once installed with `safecity models install "
        "yolo11n --accept-licence`; until then the camera runs nanodet and its health says why.",
    )
    helmet_enforcement: bool = Field(
        default=False,
        title="Helmet check",
        description="Raise no_helmet for motorcycle riders seen without a helmet (needs the nanodet or "
        "yolo11n detector). No helmet model ships with SafeCity: until one is installed (safecity "
        "models install …) helmet offences are not detected, and the camera's health says so. An "
        "officer reviews every one.",
    )
    seat_belt_enforcement: bool = Field(
        default=False,
        title="Seat-belt check",
        description="Raise no_seat_belt for cars whose windscreen shows a driver without a seat belt. No "
        "seat-belt model ships with SafeCity: until one is installed (safecity models install "
        "seat-belt-classifier --onnx FILE …) seat-belt offences are not detected, and the camera's "
        "health says so. An officer reviews every one.",
    )
    seat_belt_buses_trucks: bool = Field(
        default=False,
        title="Seat belts in buses and trucks",
        description="Also judge the windscreens of buses and trucks (their cab sits higher in the box).",
    )
    motion_gate: bool = Field(
        default=True,
        title="Motion gate",
        description="Analyse only frames with motion (saves CPU on quiet scenes).",
    )
    face_threshold: float | None = Field(
        default=None,
        gt=0,
        le=1,
        allow_inf_nan=False,
        title="Face threshold",
        description="Similarity a face must reach to match a watch-list entry here; empty: the city default.",
    )
    speed_limit_kmh: float | None = Field(
        default=None,
        gt=0,
        le=300,
        allow_inf_nan=False,
        title="Speed limit (km/h)",
        description="Limit on the road this camera watches.",
    )
    junction: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        title="Junction",
        description="Signalised junction whose controller feed the red-light rule follows; empty: camera id.",
    )
    signal_head_box: tuple[Coordinate, Coordinate, Coordinate, Coordinate] | None = Field(
        default=None,
        title="Signal head box",
        description="[x, y, width, height] in pixels of the signal lamp the camera reads; empty: none.",
    )
    approach_point: Point | None = Field(
        default=None,
        title="Approach point",
        description="[x, y] of a point on the approach side of the stop line; empty: 50 px above its middle.",
    )
    record: bool = Field(default=True, title="Record", description="Record the stream continuously.")
    record_volume: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        title="Recording volume",
        description="Name of the storage volume the recordings go to; empty: the default volume.",
    )
    onvif_url: str | None = Field(
        default=None,
        max_length=500,
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        title="ONVIF address",
        description="The camera's ONVIF device service, for measuring its clock and PTZ; empty: "
        "http://<stream host>/onvif/device_service.",
    )
    ptz: PtzControl = Field(
        default=PtzControl.auto,
        title="PTZ",
        description="auto: ask the camera's ONVIF service whether it can pan, tilt and zoom (asked once, "
        "again when its address changes); on: it can (the controls show before it is asked); off: never "
        "move it from SafeCity (an enforcement view whose zones and stop line must stay put).",
    )
    ptz_fov_wide_deg: float = Field(
        default=60.0,
        gt=0,
        lt=180,
        allow_inf_nan=False,
        title="PTZ field of view, widest (°)",
        description="Horizontal field of view in degrees at the widest zoom, for click-to-centre. ONVIF does "
        'not report it: set it from the camera\'s datasheet ("horizontal field of view: 59.8° – 2.3°" gives '
        "59.8 here). The default, 60°, is a typical 1/2.8-inch PTZ.",
    )
    ptz_fov_tele_deg: float = Field(
        default=2.5,
        gt=0,
        lt=180,
        allow_inf_nan=False,
        title="PTZ field of view, longest zoom (°)",
        description="Horizontal field of view in degrees at the longest optical zoom (the datasheet's second "
        "figure, 2.3 above). The default, 2.5°, is a typical 25–30× PTZ; no more than the widest.",
    )
    ptz_pan_span_deg: float | None = Field(
        default=None,
        gt=0,
        le=720,
        allow_inf_nan=False,
        title="PTZ pan span (°)",
        description="Degrees the camera's whole pan range turns through, for click-to-centre. Empty: read "
        "from the camera's degrees space where its PTZ node lists one, else 360 (a dome that turns all the "
        "way round).",
    )
    ptz_tilt_span_deg: float | None = Field(
        default=None,
        gt=0,
        le=360,
        allow_inf_nan=False,
        title="PTZ tilt span (°)",
        description="Degrees the camera's whole tilt range turns through. Empty: read from the camera's "
        "degrees space where its PTZ node lists one, else 180 (straight down to straight up).",
    )
    clip_before_s: float = Field(
        default=10.0,
        ge=0,
        le=300,
        allow_inf_nan=False,
        title="Clip before (s)",
        description="Seconds of footage kept before an event.",
    )
    clip_after_s: float = Field(
        default=20.0,
        ge=0,
        le=600,
        allow_inf_nan=False,
        title="Clip after (s)",
        description="Seconds of footage kept after an event.",
    )

    @model_validator(mode="after")
    def _tele_narrower_than_wide(self) -> AnalysisSettings:
        if self.ptz_fov_tele_deg > self.ptz_fov_wide_deg:
            raise ValueError(
                f"ptz_fov_tele_deg ({self.ptz_fov_tele_deg:g}°) is wider than ptz_fov_wide_deg "
                f"({self.ptz_fov_wide_deg:g}°): the longest zoom sees less than the widest"
            )
        return self

    @field_validator("signal_head_box")
    @classmethod
    def _box_has_area(
        cls, value: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if value is not None and (value[2] < 1 or value[3] < 1):
            raise ValueError("width and height must be at least 1 pixel")
        return value


def _segments_cross(p: Point, q: Point, r: Point, s: Point) -> bool:
    """Returns whether the segments pq and rs share a point (touching and overlapping included)."""

    def orient(a: Point, b: Point, c: Point) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    def within(a: Point, b: Point, c: Point) -> bool:
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])

    d1, d2, d3, d4 = orient(r, s, p), orient(r, s, q), orient(p, q, r), orient(p, q, s)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return (
        (d1 == 0 and within(r, s, p))
        or (d2 == 0 and within(r, s, q))
        or (d3 == 0 and within(p, q, r))
        or (d4 == 0 and within(p, q, s))
    )


def check_polygon(points: list[Point]) -> list[Point]:
    """Returns the points of a simple polygon (no repeated corner, no crossing edges, an area), or raises."""
    for i, point in enumerate(points):
        if point == points[i - 1]:
            raise ValueError(f"point {i} repeats the point before it")
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbouring edges share a corner by design
            if _segments_cross(*edges[i], *edges[j]):
                raise ValueError(
                    f"the polygon crosses itself: edge {i} ({_pt(edges[i][0])}→{_pt(edges[i][1])}) "
                    f"meets edge {j} ({_pt(edges[j][0])}→{_pt(edges[j][1])}); list the corners in order"
                )
    twice_area = sum(a[0] * b[1] - b[0] * a[1] for a, b in edges)
    if abs(twice_area) < 1.0:
        raise ValueError("the polygon has no area (its points lie on one line)")
    return points


def _pt(p: Point) -> str:
    return f"[{p[0]:g}, {p[1]:g}]"


class Zone(BaseModel):
    """A named polygon in image coordinates (region of interest, no-parking zone, restricted area…)."""

    model_config = ConfigDict(extra="forbid", title="Zone")

    name: str = Field(min_length=1, max_length=100, title="Name", description="Zone name, unique per camera.")
    polygon: Annotated[list[Point], AfterValidator(check_polygon)] = Field(
        min_length=3,
        max_length=100,
        title="Polygon",
        description="Corners [x, y] in pixels, in order around the zone (3 to 100, edges not crossing).",
    )
    purpose: ZonePurpose = Field(
        default=ZonePurpose.roi,
        title="Purpose",
        description="roi (analyse only inside), no_parking, restricted, crowd or loitering.",
    )


class Line(BaseModel):
    """A named line in image coordinates (stop line, counting line, speed-trap line)."""

    model_config = ConfigDict(extra="forbid", title="Line")

    name: str = Field(min_length=1, max_length=100, title="Name", description="Line name, unique per camera.")
    points: list[Point] = Field(
        min_length=2, max_length=2, title="Points", description="Its two ends [x, y] in pixels, apart."
    )
    purpose: LinePurpose = Field(
        default=LinePurpose.counting, title="Purpose", description="stop_line, count or speed_trap."
    )

    @field_validator("points")
    @classmethod
    def _apart(cls, value: list[Point]) -> list[Point]:
        (ax, ay), (bx, by) = value
        if math.hypot(bx - ax, by - ay) < 2:
            raise ValueError("the two ends must be at least 2 pixels apart")
        return value


def _unique_zone_names(zones: list[Zone]) -> list[Zone]:
    _unique([z.name for z in zones], "zone")
    return zones


def _checked_lines(lines: list[Line]) -> list[Line]:
    _unique([ln.name for ln in lines], "line")
    stop_lines = [ln.name for ln in lines if ln.purpose == LinePurpose.stop_line]
    if len(stop_lines) > 1:
        raise ValueError(
            f"one stop line per camera (the red-light rule watches one); found {', '.join(stop_lines)}"
        )
    return lines


def _unique(names: list[str], what: str) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise ValueError(f"{what} name {name!r} repeats ({what}s {seen[name]} and {i})")
        seen[name] = i


Zones = Annotated[list[Zone], AfterValidator(_unique_zone_names)]
Lines = Annotated[list[Line], AfterValidator(_checked_lines)]


class CameraConfig(BaseModel):
    """A camera's whole configuration: what is versioned, and what its pipelines receive."""

    model_config = ConfigDict(
        extra="forbid",
        title="Camera configuration",
        json_schema_extra={"used_by": dict[str, JsonValue](USED_BY)},
    )

    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings, title="Analysis")
    zones: Zones = Field(
        default_factory=list, title="Zones", description="Named polygons; see their purposes."
    )
    lines: Lines = Field(default_factory=list, title="Lines", description="Named lines; see their purposes.")

    def stored(self) -> dict[str, Any]:
        """Returns the configuration as stored: every setting written out, defaults included.

        So a version names the same settings for good, even if a later release changes a default.
        """
        return self.model_dump(mode="json")

    def zones_for(self, purpose: ZonePurpose) -> list[Zone]:
        """Returns the zones of one purpose."""
        return [z for z in self.zones if z.purpose == purpose]

    def lines_for(self, purpose: LinePurpose) -> list[Line]:
        """Returns the lines of one purpose."""
        return [ln for ln in self.lines if ln.purpose == purpose]


def upgrade_stored(camera_id: str, stored: dict[str, Any]) -> tuple[CameraConfig, list[str]]:
    """Returns the configuration an older release stored, with notes on what had to go.

    Keys no model declares (e.g. `calibration`, which is recorded and audited through the enforcement
    API now) are dropped; a zone or line that does not validate is dropped whole; an invalid setting
    takes its default. Each such loss is a note (kept in the camera's version history) and a log line.
    """
    notes: list[str] = []
    raw = stored.get("analysis") or {}
    analysis: dict[str, Any] = {}
    for key, value in (raw if isinstance(raw, dict) else {}).items():
        if key not in AnalysisSettings.model_fields:
            notes.append(f"analysis.{key} dropped (not a camera setting): {_short(value)}")
            continue
        try:
            AnalysisSettings.model_validate({key: value})
        except ValidationError as exc:
            notes.append(f"analysis.{key} = {_short(value)} dropped, default used: {_first(exc)}")
            continue
        analysis[key] = value
    kept: dict[str, list[dict[str, Any]]] = {"zones": [], "lines": []}
    for field, model in (("zones", Zone), ("lines", Line)):
        names: set[str] = set()
        has_stop_line = False
        for i, item in enumerate(stored.get(field) or []):
            try:
                valid = model.model_validate(item)
            except ValidationError as exc:
                notes.append(f"{field}.{i} dropped: {_first(exc)}: {_short(item)}")
                continue
            stop_line = getattr(valid, "purpose", None) == LinePurpose.stop_line
            if valid.name in names or (stop_line and has_stop_line):
                why = "its name repeats" if valid.name in names else "a camera has one stop line"
                notes.append(f"{field}.{i} ({valid.name!r}) dropped: {why}")
                continue
            names.add(valid.name)
            has_stop_line |= stop_line
            kept[field].append(valid.model_dump())
    config = CameraConfig.model_validate({"analysis": analysis, **kept})
    for note in notes:
        log.warning("camera %s configuration upgraded: %s", camera_id, note)
    return config, notes


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "…"
