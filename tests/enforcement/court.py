"""Court-ready evidence for tests: a camera with everything the readiness gate asks for, and candidates
whose pictures are in the store.

    ready = court_ready(ctx, "cam-1", at=T0, junction="J1")     # calibration, survey, clock, signal
    event = ready_candidate(ctx, "k1", camera_id="cam-1", at=T0, calibration_id=ready)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.errors import NotFound
from safecity.core.events import ViolationCandidate
from safecity.core.media import MediaStore
from safecity.enforcement.calibrations import service as calibrations
from safecity.enforcement.calibrations.models import CalibrationIn, ReferenceMeasurement
from safecity.enforcement.readiness import service as readiness
from safecity.enforcement.readiness.models import ClockCheckIn, RoadSurveyIn, SignalSourceIn

IMAGE = [(170.0, 0.0), (470.0, 0.0), (470.0, 360.0), (170.0, 360.0)]
GROUND = [(0.0, 0.0), (25.0, 0.0), (25.0, 30.0), (0.0, 30.0)]
REFERENCE = ReferenceMeasurement(image_from=(170, 0), image_to=(470, 0), metres=25.0)


def register_camera(ctx: Context, camera_id: str) -> None:
    """Registers an ANPR camera unless it is registered already."""
    with ctx.db.session() as session:
        register_in(session, camera_id)


def register_in(session: Session, camera_id: str) -> None:
    """Registers an ANPR camera in the caller's transaction unless it is registered already."""
    try:
        cameras.get(session, camera_id)
    except NotFound:
        data = {"id": camera_id, "name": camera_id, "kind": "anpr", "district": "East"}
        camera = CameraIn.model_validate({**data, "latitude": 24.86, "longitude": 67.07})
        cameras.create(session, camera, actor="test")


def calibration_in(
    media: Context | MediaStore, *, valid_from: datetime, expires_in_days: int = 365, **changes: Any
) -> CalibrationIn:
    """Returns a sound calibration in force from `valid_from`, its certificate stored."""
    store = media.media if isinstance(media, Context) else media
    certificate = store.put(b"%PDF-1.4 certificate of calibration", "pdf")
    data: dict[str, Any] = {
        "image_points": IMAGE,
        "ground_points": GROUND,
        "references": [REFERENCE],
        "measured_by": "Inspector Rana",
        "measured_at": valid_from - timedelta(hours=1),
        "valid_from": valid_from,
        "certificate_ref": certificate,
        "certificate_number": "PSQCA-2025-0042",
        "certificate_expires": (utcnow() + timedelta(days=expires_in_days)).date(),
    }
    return CalibrationIn.model_validate({**data, **changes})


def court_ready(
    ctx: Context,
    camera_id: str,
    *,
    at: datetime,
    junction: str | None = None,
    clock_offset_s: float = 0.05,
    compliant: bool = True,
) -> int:
    """Records what makes `camera_id`'s evidence at `at` court-ready; returns its calibration id."""
    with ctx.db.session() as session:
        return prepare(
            session,
            ctx.media,
            camera_id,
            at=at,
            junction=junction,
            clock_offset_s=clock_offset_s,
            compliant=compliant,
        )


def prepare(
    session: Session,
    media: MediaStore,
    camera_id: str,
    *,
    at: datetime,
    junction: str | None = None,
    clock_offset_s: float = 0.05,
    compliant: bool = True,
) -> int:
    """Does `court_ready` in the caller's transaction."""
    register_in(session, camera_id)
    found = calibrations.in_force(session, camera_id, at)
    calibration_id = (
        found.id
        if found is not None
        else calibrations.record(
            session,
            camera_id,
            calibration_in(media, valid_from=at - timedelta(days=30)),
            media=media,
            actor="test",
        ).id
    )
    survey = RoadSurveyIn(
        lane_markings=True,
        stop_lines=compliant,
        signals=True,
        surveyed_by="Inspector Rana",
        surveyed_at=at - timedelta(days=10),
    )
    readiness.record_survey(session, camera_id, survey, actor="test")
    check = ClockCheckIn(offset_s=clock_offset_s, measured_at=at - timedelta(minutes=5), method="onvif")
    readiness.record_clock_check(session, camera_id, check, actor="test")
    if junction:
        source = SignalSourceIn(
            kind="controller",
            device=f"ctl-{junction}",
            offset_ms=20,
            checked_at=at - timedelta(days=1),
            checked_by="Engineer Shah",
        )
        readiness.record_signal_source(session, junction, source, actor="test")
    return calibration_id


def frames(ctx: Context | MediaStore, shade: int = 90) -> list[str]:
    """Stores two evidence frames (before and after) and returns their refs."""
    store = ctx.media if isinstance(ctx, Context) else ctx
    return [store.put_image(np.full((36, 64, 3), shade + i, np.uint8)) for i in (0, 1)]


def ready_candidate(
    ctx: Context | MediaStore,
    key: str,
    *,
    camera_id: str = "cam-1",
    at: datetime = datetime(2025, 6, 1, 8, 0, tzinfo=UTC),
    offence: str = "speeding",
    plate: str | None = "ABC123",
    confidence: float = 0.99,
    calibration_id: int | None = None,
    measured: float = 92.0,
    detail: dict[str, Any] | None = None,
) -> ViolationCandidate:
    """Returns a candidate with its frames in the store and, for speeding, the calibration it used."""
    before, after = frames(ctx)
    extra: dict[str, Any] = {
        "unit": "km/h",
        "track_id": 7,
        "frames_before": [before],
        "frames_after": [after],
    }
    if offence == "speeding":
        extra |= {"calibration_id": calibration_id, "calibration": {"image_points": [list(p) for p in IMAGE]}}
    return ViolationCandidate(
        key=key,
        camera_id=camera_id,
        at=at,
        offence=offence,
        plate=plate,
        confidence=confidence,
        measured=measured,
        limit=60.0,
        evidence_refs=[before, after],
        detail={**extra, **(detail or {})},
    )
