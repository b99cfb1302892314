"""The calibrations as each worker holds them: a full load at start, then changes from the bus.

The centre publishes `CalibrationChanged` when a calibration is recorded and when a later one ends
its period. A worker measures a track's speed with the calibration in force at the moment the track
was seen, and names it in the evidence; a camera with none in force measures no speed.

    calibrations = WorkerCalibrations()
    unsubscribe = follow(ctx, [CalibrationChanged.type], calibrations.on_event)   # subscribe first
    with ctx.db.session() as session:
        calibrations.load(session)
    speed = calibrations.speed_for("cam-7", at)      # SpotSpeed or None
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from safecity.core.events import Event
from safecity.enforcement.calibrations import service
from safecity.enforcement.calibrations.models import CalibrationChanged
from safecity.vision.traffic import Calibration, SpotSpeed


@dataclass
class WorkerCalibrations:
    """A worker's copy of the calibrations in force, by camera, with their spot-speed measures."""

    _by_camera: dict[str, dict[int, Calibration]] = field(default_factory=dict)
    _speeds: dict[int, SpotSpeed] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self, session: Session) -> int:
        """Adds every calibration in force now or later; returns how many the copy holds."""
        for calibration in service.current(session):
            self.apply(calibration)
        with self._lock:
            return sum(len(held) for held in self._by_camera.values())

    def apply(self, calibration: Calibration) -> None:
        """Takes in one calibration; a period only ever shortens, so changes may come in any order."""
        with self._lock:
            held = self._by_camera.setdefault(calibration.camera_id, {})
            known = held.get(calibration.id)
            if known is not None and known.valid_until <= calibration.valid_until:
                return
            held[calibration.id] = calibration

    def on_event(self, event: Event) -> None:
        """Follows `CalibrationChanged` events from the bus."""
        if isinstance(event, CalibrationChanged) and event.camera_id:
            self.apply(
                Calibration(
                    id=event.calibration_id,
                    camera_id=event.camera_id,
                    image_points=event.image_points,
                    ground_points=event.ground_points,
                    valid_from=event.valid_from,
                    valid_until=event.valid_until,
                )
            )

    def in_force(self, camera_id: str, at: datetime) -> Calibration | None:
        """Returns the camera's calibration in force at `at`, or None."""
        with self._lock:
            held = list(self._by_camera.get(camera_id, {}).values())
        valid = [c for c in held if c.in_force(at)]
        return max(valid, key=lambda c: c.valid_from) if valid else None

    def speed_for(self, camera_id: str, at: datetime) -> SpotSpeed | None:
        """Returns the spot-speed measure of the calibration in force at `at`, or None."""
        calibration = self.in_force(camera_id, at)
        if calibration is None:
            return None
        with self._lock:
            speed = self._speeds.get(calibration.id)
        if speed is None:
            speed = SpotSpeed.of(calibration)
            with self._lock:
                self._speeds[calibration.id] = speed
        return speed
