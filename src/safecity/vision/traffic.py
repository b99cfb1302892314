"""Traffic rules a camera pipeline applies: pure functions and small classes called per track.

They see positions, times and pixels and return `ViolationCandidate` events (or None); the centre
de-duplicates, reviews and fines. Nothing here touches the database or the bus, and nothing here
knows a domain: the enforcement domain records calibrations and limits, workers hold copies of them.

    phases = SignalPhases()
    phases.set("J1", "red", at=t0)
    rule = StopLineRule(((100, 400), (500, 400)), phases, junction="J1", camera_id="cam-7",
                        approach_point=(300, 600))
    candidate = rule.check(track_id, prev_point, point, at, plate="ABC123")
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from safecity.core import keys
from safecity.core.errors import InvalidInput
from safecity.core.events import ViolationCandidate

PHASES = ("red", "amber", "green", "off")

Point = tuple[float, float]

#: Below this share of its bounding box's area, a triangle of reference points is too flat to trust.
FLAT_TRIANGLE = 0.02
#: Above this condition number (of the homography between normalised point sets) a pixel of error
#: moves the road position by metres: the points are too close to a line or to each other.
MAX_CONDITION = 1e4
#: A reference measurement the calibration reproduces worse than this (share of its length) refutes it.
REFERENCE_TOLERANCE = 0.02


class SpeedLimit(BaseModel):
    """The limit on a road by vehicle class, and the tolerance allowed before an offence."""

    model_config = ConfigDict(extra="forbid")

    default_kmh: float = Field(gt=0, le=300, title="Limit", description="Limit for classes not listed.")
    by_class: dict[str, float] = Field(
        default_factory=dict, title="Limit by class", description="km/h per vehicle class (car, bike, bus…)."
    )
    tolerance_kmh: float = Field(
        default=5.0, ge=0, le=50, title="Tolerance (km/h)", description="Speed above the limit not fined."
    )
    tolerance_pct: float = Field(
        default=0.0,
        ge=0,
        le=50,
        title="Tolerance (%)",
        description="Share of the limit not fined (larger wins).",
    )

    @field_validator("by_class")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for name, kmh in value.items():
            if not 0 < kmh <= 300:
                raise ValueError(f"limit for {name!r} must be between 0 and 300 km/h")
        return value

    def limit_for(self, vehicle_class: str | None) -> float:
        """Returns the limit in km/h for a vehicle class."""
        return self.by_class.get(vehicle_class or "", self.default_kmh)

    def threshold_for(self, vehicle_class: str | None) -> float:
        """Returns the speed above which the vehicle class offends (limit plus tolerance)."""
        limit = self.limit_for(vehicle_class)
        return limit + max(self.tolerance_kmh, limit * self.tolerance_pct / 100)


@dataclass(frozen=True)
class Calibration:
    """A camera's audited image-to-road calibration as a worker holds it: id, points, period in force."""

    id: int
    camera_id: str
    image_points: Sequence[Sequence[float]]
    ground_points: Sequence[Sequence[float]]
    valid_from: datetime
    valid_until: datetime

    def in_force(self, at: datetime) -> bool:
        """Returns whether the calibration (and its certificate) covers a measurement at `at`."""
        return self.valid_from <= at < self.valid_until


def check_geometry(
    image_points: Sequence[Sequence[float]],
    ground_points: Sequence[Sequence[float]],
    references: Sequence[tuple[Point, Point, float]] = (),
) -> npt.NDArray[np.float64]:
    """Returns the image-to-road homography of four point pairs, refusing point sets that cannot carry one.

    Refused, each with what to measure again: a repeated point, three points on (or nearly on) a
    line, a homography so ill-conditioned that a pixel moves the road position by metres, and a
    reference measurement (two image points and the taped distance between them) that the
    homography does not reproduce within `REFERENCE_TOLERANCE`.
    """
    sets = (
        ("image", np.array(image_points, dtype=np.float64)),
        ("road", np.array(ground_points, dtype=np.float64)),
    )
    for what, pts in sets:
        if pts.shape != (4, 2) or not np.all(np.isfinite(pts)):
            raise InvalidInput(f"the {what} points must be four finite [x, y] pairs")
        for i in range(4):
            for j in range(i + 1, 4):
                if np.allclose(pts[i], pts[j]):
                    raise InvalidInput(
                        f"{what} points {i + 1} and {j + 1} are the same point",
                        hint="mark four distinct corners of a quadrilateral on the road",
                    )
        span = np.ptp(pts, axis=0)
        box = float(span[0] * span[1]) or float(max(span) ** 2)
        for i in range(4):
            others = np.delete(pts, i, axis=0)
            (ax, ay), (bx, by) = others[1] - others[0], others[2] - others[0]
            area = abs(float(ax * by - ay * bx)) / 2
            if area <= FLAT_TRIANGLE * box:
                which = ", ".join(str(k + 1) for k in range(4) if k != i)
                exactly = "collinear" if area < 1e-9 else "nearly collinear"
                raise InvalidInput(
                    f"{what} points {which} are {exactly}",
                    hint="pick the corners of a quadrilateral spanning the lanes, not points along a line",
                )
        edges = np.roll(pts, -1, axis=0) - pts
        following = np.roll(edges, -1, axis=0)
        turns = (edges[:, 0] * following[:, 1] - edges[:, 1] * following[:, 0]).tolist()
        if not (all(t > 0 for t in turns) or all(t < 0 for t in turns)):
            raise InvalidInput(
                f"the {what} points do not go round a convex quadrilateral in order",
                hint="list the corners in the same order round the shape, in the image and on the road",
            )
    image, ground = sets[0][1], sets[1][1]
    homography = cv2.getPerspectiveTransform(image.astype(np.float32), ground.astype(np.float32))
    condition = _condition(image, ground)
    if not math.isfinite(condition) or condition > MAX_CONDITION:
        raise InvalidInput(
            f"the calibration is ill-conditioned (condition number {condition:.3g}): a pixel of error "
            "would move the measured position by metres",
            hint="spread the four points over the lanes the camera measures",
        )
    for n, (start, end, metres) in enumerate(references, start=1):
        a, b = cv2.perspectiveTransform(np.array([[start], [end]], dtype=np.float64), homography).reshape(
            2, 2
        )
        measured = float(np.hypot(*(b - a)))
        if abs(measured - metres) > REFERENCE_TOLERANCE * metres:
            raise InvalidInput(
                f"reference measurement {n} reads {measured:.2f} m through the calibration where "
                f"{metres:g} m were measured on the road ({abs(measured - metres) / metres:.0%} off)",
                hint="re-measure the reference points or the calibration points",
            )
    return np.asarray(homography, dtype=np.float64)


def _normalise(pts: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Returns Hartley's normalisation: centroid to the origin, mean distance √2."""
    centre = pts.mean(axis=0)
    scale = math.sqrt(2) / max(float(np.mean(np.hypot(*(pts - centre).T))), 1e-12)
    return np.array([[scale, 0, -scale * centre[0]], [0, scale, -scale * centre[1]], [0, 0, 1]])


def _condition(image: npt.NDArray[np.float64], ground: npt.NDArray[np.float64]) -> float:
    """Returns the condition number of the homography between the two normalised point sets."""
    t_image, t_ground = _normalise(image), _normalise(ground)
    ones = np.ones((4, 1))
    src = (t_image @ np.hstack([image, ones]).T).T[:, :2].astype(np.float32)
    dst = (t_ground @ np.hstack([ground, ones]).T).T[:, :2].astype(np.float32)
    normalised = cv2.getPerspectiveTransform(src, dst)
    return float(np.linalg.cond(normalised))


@dataclass(frozen=True)
class PhaseRecord:
    """A junction's phase from a moment on, and who said so."""

    phase: str
    since: datetime
    source: str


@dataclass
class SignalPhases:
    """The phase of each junction's signal over time, from the controller feed or the signal head's pixels.

    Keeps a short history per junction so a crossing seen a little late is judged by the phase at
    the moment it happened, not the phase now.
    """

    history: int = 64
    _changes: dict[str, list[PhaseRecord]] = field(default_factory=dict)

    def set(self, junction: str, phase: str, *, at: datetime, source: str = "controller") -> None:
        """Records that `junction` turned `phase` at `at` (out-of-order reports are placed in time)."""
        if phase not in PHASES:
            raise InvalidInput(f"unknown signal phase {phase!r}", hint=f"use one of {', '.join(PHASES)}")
        records = self._changes.setdefault(junction, [])
        times = [r.since for r in records]
        records.insert(bisect.bisect_right(times, at), PhaseRecord(phase, at, source))
        del records[: max(0, len(records) - self.history)]

    def phase_at(self, junction: str, at: datetime) -> PhaseRecord | None:
        """Returns the phase in force at `junction` at `at`, or None when nothing is known then."""
        records = self._changes.get(junction, [])
        index = bisect.bisect_right([r.since for r in records], at) - 1
        return records[index] if index >= 0 else None

    def read_head(
        self, junction: str, frame: npt.NDArray[np.uint8], box: tuple[int, int, int, int], *, at: datetime
    ) -> str:
        """Reads the lit lamp inside `box` (x, y, w, h) of a BGR frame, records a change, returns it."""
        phase = classify_signal_head(frame, box)
        current = self.phase_at(junction, at)
        if current is None or current.phase != phase:
            self.set(junction, phase, at=at, source="camera")
        return phase

    def on_event(self, event: Any) -> None:
        """Follows `SignalPhaseChanged` events from the bus (the controller feed via the centre)."""
        self.set(event.junction, event.phase, at=event.at, source=event.source)


def classify_signal_head(frame: npt.NDArray[np.uint8], box: tuple[int, int, int, int]) -> str:
    """Returns red, amber, green or off: the hue of the bright, saturated pixels in the signal head's box."""
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise InvalidInput(f"signal head box {box} is empty", hint="give x, y, width, height in pixels")
    crop = frame[max(0, y) : y + h, max(0, x) : x + w]
    if crop.size == 0:
        raise InvalidInput(f"signal head box {box} lies outside the frame", hint="check the camera's box")
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
    lit = (hsv[..., 1] > 100) & (hsv[..., 2] > 150)
    if lit.sum() < max(4, 0.02 * lit.size):
        return "off"
    hue = hsv[..., 0][lit].astype(np.int32)
    # OpenCV hue runs 0..179: red wraps around 0, amber sits near 15-35, green near 40-90.
    counts = {
        "red": int(((hue <= 10) | (hue >= 165)).sum()),
        "amber": int(((hue > 10) & (hue <= 35)).sum()),
        "green": int(((hue > 35) & (hue <= 95)).sum()),
    }
    return max(counts, key=lambda k: counts[k])


def _side(a: Point, b: Point, p: Point) -> float:
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])


def crosses(line: tuple[Point, Point], prev: Point, point: Point) -> bool:
    """Returns whether the step prev → point crosses the line segment (touching counts once, on arrival)."""
    a, b = line
    s1, s2 = _side(a, b, prev), _side(a, b, point)
    if s1 == 0 or s1 * s2 > 0:
        return False
    t1, t2 = _side(prev, point, a), _side(prev, point, b)
    return t1 * t2 <= 0


@dataclass
class StopLineRule:
    """A stop line at a signalised junction: a vehicle crossing it, in the approach direction, during red.

    `approach_point` is any image point on the side vehicles wait on; crossings the other way (a
    vehicle from the far side) are ignored. Each track is judged once.
    """

    stop_line: tuple[Point, Point]
    signal: SignalPhases
    junction: str
    camera_id: str
    approach_point: Point
    lane: str = ""
    amber_is_red: bool = False
    _fired: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        a, b = self.stop_line
        if a == b:
            raise InvalidInput(
                "the stop line's two points are the same", hint="draw the line across the lane"
            )
        if _side(a, b, self.approach_point) == 0:
            raise InvalidInput(
                "the approach point lies on the stop line", hint="pick a point where vehicles wait"
            )

    def check(
        self,
        track_id: int,
        prev_point: Point,
        point: Point,
        at: datetime,
        *,
        plate: str | None = None,
        confidence: float = 1.0,
        vehicle_class: str | None = None,
        frames_before: Sequence[str] = (),
        frames_after: Sequence[str] = (),
        plate_crop: str | None = None,
    ) -> ViolationCandidate | None:
        """Returns a red-light candidate when this step crosses the line from the approach side during red."""
        if track_id in self._fired or not crosses(self.stop_line, prev_point, point):
            return None
        a, b = self.stop_line
        if _side(a, b, prev_point) * _side(a, b, self.approach_point) <= 0:
            return None
        self._fired.add(track_id)
        record = self.signal.phase_at(self.junction, at)
        red = {"red", "amber"} if self.amber_is_red else {"red"}
        if record is None or record.phase not in red:
            return None
        red_for = (at - record.since).total_seconds()
        refs = [*frames_before, *frames_after, *([plate_crop] if plate_crop else [])]
        return ViolationCandidate(
            key=keys.offence(self.camera_id, "red_light", track_id, at),
            camera_id=self.camera_id,
            at=at,
            offence="red_light",
            plate=plate,
            confidence=confidence,
            measured=round(red_for, 3),
            limit=0.0,
            evidence_refs=refs,
            detail={
                "junction": self.junction,
                "lane": self.lane,
                "phase": record.phase,
                "phase_source": record.source,
                "red_since": record.since.isoformat(),
                "unit": "s into red",
                "track_id": track_id,
                "vehicle_class": vehicle_class,
                "stop_line": [list(a), list(b)],
                "frames_before": list(frames_before),
                "frames_after": list(frames_after),
                "plate_crop": plate_crop,
            },
        )


class SpotSpeed:
    """Spot speed from one calibrated camera: image points → road metres by homography, then a line fit.

    speed = SpotSpeed([[170, 0], [470, 0], [470, 360], [170, 360]], [[0, 0], [25, 0], [25, 30], [0, 30]])
    kmh = speed.speed_kmh([(410, 620), (405, 560), (400, 505)], [t0, t1, t2])
    """

    def __init__(
        self,
        image_points: Sequence[Sequence[float]],
        ground_points: Sequence[Sequence[float]],
        *,
        calibration_id: int | None = None,
    ) -> None:
        self.homography = check_geometry(image_points, ground_points)
        self.image_points = [[float(v) for v in p] for p in image_points]
        self.ground_points = [[float(v) for v in p] for p in ground_points]
        self.calibration_id = calibration_id

    @classmethod
    def of(cls, calibration: Calibration) -> SpotSpeed:
        """Returns the spot-speed measure of a recorded calibration (the evidence names its id)."""
        return cls(calibration.image_points, calibration.ground_points, calibration_id=calibration.id)

    def to_ground(self, points: Sequence[Point]) -> npt.NDArray[np.float64]:
        """Returns the road-plane positions (metres) of image points."""
        pts = np.array(points, dtype=np.float64).reshape(-1, 1, 2)
        return np.asarray(cv2.perspectiveTransform(pts, self.homography), dtype=np.float64).reshape(-1, 2)

    def speed_kmh(self, points: Sequence[Point], times: Sequence[datetime | float]) -> float:
        """Returns the speed in km/h from a track's image positions and their times (least squares)."""
        if len(points) != len(times) or len(points) < 2:
            raise InvalidInput("a speed needs at least two positions, each with its time")
        secs = np.array(
            [t.timestamp() if isinstance(t, datetime) else float(t) for t in times], dtype=np.float64
        )
        secs -= secs[0]
        if np.any(np.diff(secs) <= 0):
            raise InvalidInput("the positions' times do not advance", hint="pass increasing frame times")
        ground = self.to_ground(points)
        # Fit position against time on each axis: one slope per axis, robust to per-frame jitter.
        slopes = np.polyfit(secs, ground, 1)[0]
        return float(np.hypot(*slopes) * 3.6)

    def check(
        self,
        track_id: int,
        points: Sequence[Point],
        times: Sequence[datetime],
        *,
        camera_id: str,
        limit: SpeedLimit,
        plate: str | None = None,
        confidence: float = 1.0,
        vehicle_class: str | None = None,
        frames_before: Sequence[str] = (),
        frames_after: Sequence[str] = (),
        plate_crop: str | None = None,
    ) -> ViolationCandidate | None:
        """Returns a speeding candidate when the track's speed exceeds the class limit plus tolerance."""
        kmh = self.speed_kmh(points, times)
        if kmh <= limit.threshold_for(vehicle_class):
            return None
        at = times[-1]
        return ViolationCandidate(
            key=keys.offence(camera_id, "speeding", track_id, at),
            camera_id=camera_id,
            at=at,
            offence="speeding",
            plate=plate,
            confidence=confidence,
            measured=round(kmh, 1),
            limit=limit.limit_for(vehicle_class),
            evidence_refs=[*frames_before, *frames_after, *([plate_crop] if plate_crop else [])],
            detail={
                "unit": "km/h",
                "track_id": track_id,
                "vehicle_class": vehicle_class,
                "tolerance_kmh": limit.threshold_for(vehicle_class) - limit.limit_for(vehicle_class),
                "calibration_id": self.calibration_id,
                "calibration": {"image_points": self.image_points, "ground_points": self.ground_points},
                "track_image_points": [list(p) for p in points],
                "track_times": [t.isoformat() for t in times],
                "frames_before": list(frames_before),
                "frames_after": list(frames_after),
                "plate_crop": plate_crop,
            },
        )
