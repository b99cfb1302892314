"""The ANPR camera pipeline: vehicles found and tracked, plates read and voted, traffic rules applied.

Per analysed frame: moving vehicles are detected (the camera's `detector` setting: NanoDet on frames
where something moved, or motion blobs alone) and tracked; each tracked vehicle's crop is read a
few times while it is well in view; its positions and times feed the stop-line and spot-speed
rules. When a track ends, its reads are voted into one `PlateRead` (best crop, direction, speed) and
any violation candidates it raised are completed with that plate. Only events leave the pipeline.

With the camera's helmet or seat-belt check on, the detector also finds persons; each frame's riders
(paired with tracked motorcycles) and car windscreens are judged by the installed model
(`vision/compliance.py`), and when a track ends its votes may raise `no_helmet` / `no_seat_belt`
with the surest frame and crop as evidence. With no model installed the check runs nothing and the
camera's health says that the offence is not detected.

Pictures go to the media store only when an event will name them: the frame before a stop-line
crossing is kept in memory and stored when the crossing is an offence, not at every step of every
track. Speeds are measured with the audited calibration in force when the vehicle was seen, which
the worker's copy of the calibrations (`calibrations`) gives; a camera with none measures no speed.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import supervision as sv

from safecity.core import keys
from safecity.core.camera_config import (
    AnalysisSettings,
    Line,
    LinePurpose,
    VehicleDetector,
    Zone,
    ZonePurpose,
)
from safecity.core.events import Event, PlateRead, ViolationCandidate
from safecity.core.media import MediaStore
from safecity.video.sources import Frame
from safecity.vision import compliance
from safecity.vision.compliance import ComplianceCheck
from safecity.vision.objects import (
    VEHICLE_CLASSES,
    YOLO11N,
    MotionGatedDetector,
    MotionObjectDetector,
    NanoDetDetector,
    ObjectDetector,
    ObjectTracker,
    YoloDetector,
)
from safecity.vision.plates import PlateReader, PlateVoter, VotedPlate
from safecity.vision.registry import ModelUnavailable
from safecity.vision.traffic import SignalPhases, SpeedLimit, SpotSpeed, StopLineRule
from safecity.vision.zones import RegionOfInterest

log = logging.getLogger(__name__)

Point = tuple[float, float]
#: Returns the spot-speed measure of a camera's calibration in force at a moment, or None.
CalibrationLookup = Callable[[str, datetime], SpotSpeed | None]


@dataclass
class _Track:
    points: list[Point] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    reads: int = 0
    frames_since_read: int = 99
    best_frame: npt.NDArray[np.uint8] | None = None
    best_confidence: float = -1.0
    pending: list[ViolationCandidate] = field(default_factory=list)


@dataclass
class CameraSetup:
    """What a pipeline needs to know about its camera (from the registry): its typed configuration."""

    camera_id: str
    kind: str
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    lines: list[Line] = field(default_factory=list)
    zones: list[Zone] = field(default_factory=list)
    region: str = "pk"
    # The configuration version these settings are (cameras' history), for events to cite.
    config_version: int = 0

    def roi(self, anchor: sv.Position = sv.Position.BOTTOM_CENTER) -> RegionOfInterest:
        """Returns the camera's region of interest: its `roi` zones, or the whole picture if it has none."""
        return RegionOfInterest(
            [z.polygon for z in self.zones if z.purpose == ZonePurpose.roi], anchor=anchor
        )


def vehicle_detector(analysis: AnalysisSettings) -> tuple[ObjectDetector, str | None]:
    """The vehicle detector a camera's settings ask for, and why it had to fall back (else None).

    A missing or corrupt model must not stop the camera: a plug-in not installed falls back to the
    shipped NanoDet, a broken NanoDet to motion blobs alone, and the reason (naming the file and how to
    restore it) goes into the camera's health. Persons are found too when a helmet check needs riders.
    """
    if analysis.detector == VehicleDetector.motion:
        return MotionObjectDetector(), None
    classes = VEHICLE_CLASSES + (("person",) if analysis.helmet_enforcement else ())
    why: str | None = None
    if analysis.detector == VehicleDetector.yolo11n:
        try:
            return MotionGatedDetector(YoloDetector(YOLO11N, classes=classes)), None
        except ModelUnavailable as exc:
            log.error("detector yolo11n unavailable, falling back to nanodet: %s", exc)
            why = (
                "detector yolo11n is not installed (safecity models install yolo11n --accept-licence): "
                f"vehicles found by nanodet instead ({exc.message})"
            )
    try:
        model = NanoDetDetector(classes=classes)
    except ModelUnavailable as exc:
        log.error("vehicle detector unavailable, falling back to motion: %s", exc)
        return (
            MotionObjectDetector(),
            f"vehicles found by motion only (the vehicle detector is unavailable): {exc}",
        )
    return MotionGatedDetector(model), why


def compliance_checks(camera: CameraSetup) -> tuple[list[ComplianceCheck], list[str]]:
    """The helmet and seat-belt checks a camera's settings ask for, and why any cannot run.

    A check whose model is not installed (or is broken) is left out and named: the offence is not
    detected at this camera, which its health says in those words.
    """
    analysis = camera.analysis
    wanted = [
        task
        for task, on in (
            ("helmet", analysis.helmet_enforcement),
            ("seat-belt", analysis.seat_belt_enforcement),
        )
        if on
    ]
    checks: list[ComplianceCheck] = []
    notes: list[str] = []
    for task in wanted:
        if analysis.detector == VehicleDetector.motion:
            notes.append(
                f"{compliance.WHAT[task]} offences are not detected: the motion detector does not tell "
                "riders and cars apart (set the camera's detector to nanodet)"
            )
            continue
        try:
            judge = compliance.judge_for(task)
        except ModelUnavailable as exc:
            notes.append(f"{compliance.WHAT[task]} offences are not detected: {exc.message}")
            continue
        if judge is None:
            notes.append(compliance.missing_model_statement(task))
            continue
        checks.append(
            ComplianceCheck(
                task,
                judge,
                camera_id=camera.camera_id,
                include_buses_and_trucks=analysis.seat_belt_buses_trucks,
            )
        )
    return checks, notes


class AnprPipeline:
    """Turns an ANPR camera's frames into plate reads and violation candidates."""

    def __init__(
        self,
        camera: CameraSetup,
        media: MediaStore,
        *,
        reader: PlateReader | None = None,
        detector: ObjectDetector | None = None,
        fps: float = 5.0,
        max_reads_per_track: int = 3,
        read_every: int = 2,
        track_timeout_s: float = 1.5,
        signals: SignalPhases | None = None,
        calibrations: CalibrationLookup | None = None,
        checks: list[ComplianceCheck] | None = None,
    ) -> None:
        self.camera = camera
        self.media = media
        self.reader = reader or PlateReader(region=camera.region)
        # Why the pipeline runs with less than its settings ask for (reported in the camera's health).
        self.degraded: str | None = None
        if detector is None:
            detector, self.degraded = vehicle_detector(camera.analysis)
        self.detector = detector
        if checks is None:
            checks, notes = compliance_checks(camera)
            self.degraded = "; ".join(filter(None, [self.degraded, *notes])) or None
        self.checks = checks
        self.tracker = ObjectTracker(fps=fps, lost_seconds=track_timeout_s)
        self.voter = PlateVoter(timeout_s=track_timeout_s)
        self.max_reads = max_reads_per_track
        self.read_every = read_every
        self.track_timeout = timedelta(seconds=track_timeout_s)
        self.tracks: dict[int, _Track] = {}
        # The previous frame, in memory: stored only when a stop-line crossing names it as evidence.
        self.recent: deque[tuple[datetime, npt.NDArray[np.uint8]]] = deque(maxlen=1)
        self.signals = signals or SignalPhases()
        self.junction = camera.analysis.junction or camera.camera_id
        self.head_box = camera.analysis.signal_head_box
        self.stop_rule = self._stop_rule()
        self.roi = camera.roi()
        self.calibrations = calibrations
        limit = camera.analysis.speed_limit_kmh
        self.limit = SpeedLimit(default_kmh=limit) if limit else None
        self.last_at: datetime | None = None
        # What to undo when the camera stops here (its subscription to the signal controller's feed).
        self.on_close: list[Callable[[], None]] = []

    def close(self) -> None:
        """Lets go of what the pipeline follows (the camera moved to another worker or stopped)."""
        for undo in self.on_close:
            undo()
        self.on_close.clear()

    def _stop_rule(self) -> StopLineRule | None:
        for line in self.camera.lines:
            if line.purpose == LinePurpose.stop_line:
                (ax, ay), (bx, by) = line.points
                approach = self.camera.analysis.approach_point or ((ax + bx) / 2, min(ay, by) - 50)
                return StopLineRule(
                    stop_line=((ax, ay), (bx, by)),
                    signal=self.signals,
                    junction=self.junction,
                    camera_id=self.camera.camera_id,
                    approach_point=(float(approach[0]), float(approach[1])),
                    lane=line.name,
                )
        return None

    def process(self, frame: Frame) -> list[Event]:
        """Analyses one frame; returns the events of tracks that ended."""
        image, at = frame.image, frame.wall_time
        self.last_at = at
        if self.head_box:
            x, y, w, h = (int(v) for v in self.head_box)
            self.signals.read_head(self.junction, image, (x, y, w, h), at=at)
        found = self.detector.detect(image)
        names = found.data.get("class_name") if len(found) else None
        is_person = (
            np.asarray(names == "person", dtype=bool) if names is not None else np.zeros(len(found), bool)
        )
        persons, vehicles = found[is_person], found[~is_person]
        assert isinstance(persons, sv.Detections) and isinstance(vehicles, sv.Detections)
        # Vehicles outside the roi zones are never tracked, read or judged.
        detections = self.tracker.update(self.roi.keep(vehicles))
        for check in self.checks:
            check.observe(image, detections, persons, at)
        height, width = image.shape[:2]
        track_ids: Any = detections.tracker_id if detections.tracker_id is not None else []
        for xyxy, track_id in zip(detections.xyxy, track_ids, strict=True):
            tid = int(track_id)
            track = self.tracks.setdefault(tid, _Track())
            x1, y1, x2, y2 = (float(v) for v in xyxy)
            point = ((x1 + x2) / 2, y2)
            if self.stop_rule is not None and track.points:
                candidate = self.stop_rule.check(tid, track.points[-1], point, at)
                if candidate is not None:
                    self._add_frames(candidate, image)
                    track.pending.append(candidate)
            inside = x1 > 2 and y1 > 2 and x2 < width - 2 and y2 < height - 2
            if inside or not track.points:
                # A box cut by the frame's edge stops moving with the vehicle: keep it out of the speed fit.
                track.points.append(point)
                track.times.append(at)
            track.frames_since_read += 1
            if inside and track.reads < self.max_reads and track.frames_since_read >= self.read_every:
                self._read(tid, track, image, (x1, y1, x2, y2), frame.pts_seconds)
        self.recent.append((at, image))
        return self._finish(self._ended(at))

    def tick(self, now: datetime) -> list[Event]:
        """Ends tracks not seen for a while, even when no frames come (the motion gate holds them)."""
        if self.last_at is None or now - self.last_at < self.track_timeout:
            return []
        return self._finish(list(self.tracks))

    def _add_frames(self, candidate: ViolationCandidate, image: npt.NDArray[np.uint8]) -> None:
        """Stores the frame before the offence and the frame of it, and names both in the candidate."""
        before = [self.media.put_image(img) for _, img in self.recent]
        after = [self.media.put_image(image)]
        candidate.evidence_refs[:0] = [*before, *after]
        candidate.detail["frames_before"], candidate.detail["frames_after"] = before, after

    def _speed(self, at: datetime) -> SpotSpeed | None:
        return self.calibrations(self.camera.camera_id, at) if self.calibrations is not None else None

    def _read(
        self, tid: int, track: _Track, image: npt.NDArray[np.uint8], box: tuple[float, ...], t: float
    ) -> None:
        x1, y1, x2, y2 = (round(v) for v in box)
        # Number plates sit on the lower half of a vehicle seen from the front or the back.
        y1 = y1 + (y2 - y1) // 2
        crop = image[max(0, y1) : y2, max(0, x1) : x2]
        if crop.size == 0:
            return
        track.reads += 1
        track.frames_since_read = 0
        if track.best_frame is None:
            track.best_frame = image
        try:
            reads = self.reader.read(crop)
        except Exception as exc:  # a bad crop must never stop the camera
            log.warning("plate read failed on %s: %s", self.camera.camera_id, exc)
            return
        if not reads:
            return
        best = reads[0]
        bx, by, bw, bh = best.box
        best.box = (bx + x1, by + y1, bw, bh)
        self.voter.add(tid, best, t, ((x1 + x2) / 2, (y1 + y2) / 2))
        if best.confidence > track.best_confidence:
            track.best_confidence, track.best_frame = best.confidence, image

    def _ended(self, now: datetime) -> list[int]:
        active = self.tracker.active
        return [
            tid
            for tid, tr in self.tracks.items()
            if tid not in active or now - tr.times[-1] > self.track_timeout
        ]

    def _finish(self, track_ids: list[int]) -> list[Event]:
        events: list[Event] = []
        for tid in track_ids:
            track = self.tracks.pop(tid, None)
            if track is None:
                continue
            voted = self.voter.finish(tid)
            events.extend(self._track_events(tid, track, voted))
        return events

    def _track_events(self, tid: int, track: _Track, voted: VotedPlate | None) -> list[Event]:
        events: list[Event] = []
        cam = self.camera.camera_id
        at = track.times[-1]
        kmh = None
        speed = self._speed(track.times[0]) if len(track.points) >= 3 else None
        last = self._speed(at) if speed is not None else None
        if speed is not None and (last is None or last.calibration_id != speed.calibration_id):
            speed = None  # a calibration ended while the vehicle was in view: no measure spans two
        if speed is not None:
            try:
                kmh = round(speed.speed_kmh(track.points, track.times), 1)
            except Exception:
                kmh = None
        plate = voted.plate if voted else None
        crop_ref = self.media.put_image(voted.crop) if voted is not None and voted.crop is not None else None
        stored: list[str] = []

        def frame_ref() -> str | None:
            """Stores the track's best frame the first time an event names it."""
            if not stored and track.best_frame is not None:
                stored.append(self.media.put_image(track.best_frame))
            return stored[0] if stored else None

        if voted is not None:
            events.append(
                PlateRead(
                    key=keys.plate_read(cam, tid, track.times[0]),
                    camera_id=cam,
                    at=at,
                    plate=voted.plate,
                    region=voted.region,
                    confidence=round(voted.confidence, 3),
                    crop_ref=crop_ref,
                    frame_ref=frame_ref(),
                    box=list(voted.box),
                    direction=voted.direction,
                    track_id=tid,
                    speed_kmh=kmh,
                )
            )
        if speed is not None and kmh is not None and self.limit is not None:
            speeding = speed.check(
                tid,
                track.points,
                track.times,
                camera_id=cam,
                limit=self.limit,
                plate=plate,
                confidence=voted.confidence if voted else 0.5,
                plate_crop=crop_ref,
            )
            if speeding is not None:
                frame = frame_ref()
                if frame is not None:
                    speeding.evidence_refs.insert(0, frame)
                    speeding.detail["frames_after"] = [frame]
                events.append(speeding)
        for candidate in track.pending:
            candidate.plate = plate
            candidate.confidence = round(voted.confidence, 3) if voted else 0.5
            if crop_ref:
                candidate.evidence_refs.append(crop_ref)
                candidate.detail["plate_crop"] = crop_ref
            events.append(candidate)
        for check in self.checks:
            verdict = check.finish(tid)
            if verdict is not None:
                events.append(
                    compliance.candidate(
                        verdict,
                        camera_id=cam,
                        frame_ref=self.media.put_image(verdict.frame),
                        crop_ref=self.media.put_image(verdict.crop),
                        plate=plate,
                        plate_crop=crop_ref,
                    )
                )
        if voted is None and track.reads >= 2 and len(track.points) >= 4:
            events.append(
                ViolationCandidate(
                    key=keys.offence(cam, "unregistered", tid, at),
                    camera_id=cam,
                    at=at,
                    offence="unregistered",
                    plate=None,
                    confidence=0.6,
                    evidence_refs=[ref] if (ref := frame_ref()) else [],
                    detail={"reason": "no readable plate", "track_id": tid, "reads_tried": track.reads},
                )
            )
        return events
