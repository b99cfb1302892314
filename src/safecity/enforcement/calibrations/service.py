"""Calibrations: recorded with their proof and certificate, one in force per camera at any moment."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from safecity.audit import service as audit
from safecity.cameras import service as cameras
from safecity.core import outbox
from safecity.core.clock import as_utc, utcnow
from safecity.core.db import get_or_raise
from safecity.core.errors import Conflict, InvalidInput
from safecity.core.media import MediaStore
from safecity.enforcement.calibrations.models import CalibrationChanged, CalibrationIn, CameraCalibration
from safecity.evidence import service as media_owners
from safecity.vision.traffic import Calibration, check_geometry


def certificate_end(expires: date) -> datetime:
    """Returns the first moment a certificate no longer covers: the midnight (UTC) after its last day."""
    return datetime.combine(expires + timedelta(days=1), time(0), tzinfo=UTC)


def record(
    session: Session,
    camera_id: str,
    data: CalibrationIn,
    *,
    media: MediaStore,
    actor: str,
    now: datetime | None = None,
) -> CameraCalibration:
    """Records a calibration; the one in force when it starts ends then (older ones stay as evidence).

    Refused with the reason: an unknown camera, degenerate points or a reference measurement the
    points do not reproduce, a certificate that is missing from the store or expired, and a period
    that starts before or with the camera's latest calibration (periods never overlap).
    """
    now = now or utcnow()
    cameras.get(session, camera_id)
    check_geometry(
        data.image_points,
        data.ground_points,
        [(r.image_from, r.image_to, r.metres) for r in data.references],
    )
    if not media.path(data.certificate_ref).exists():
        raise InvalidInput(
            f"certificate {data.certificate_ref} is not in the store",
            hint="upload the certificate file first and pass the ref it returns",
        )
    valid_from = as_utc(data.valid_from or data.measured_at)
    valid_until = certificate_end(data.certificate_expires)
    if valid_until <= max(now, valid_from):
        raise InvalidInput(
            f"certificate {data.certificate_number} expired on {data.certificate_expires.isoformat()}",
            hint="a calibration needs a certificate that is current and covers the period it starts",
        )
    later = session.scalars(
        select(CameraCalibration)
        .where(CameraCalibration.camera_id == camera_id, CameraCalibration.valid_from >= valid_from)
        .order_by(CameraCalibration.valid_from)
        .limit(1)
    ).first()
    if later is not None:
        raise Conflict(
            f"calibration {later.id} of camera {camera_id} is in force from "
            f"{as_utc(later.valid_from or later.created_at).isoformat()}",
            hint="a new calibration must start after the camera's latest one",
        )
    row = CameraCalibration(
        camera_id=camera_id,
        image_points=[list(p) for p in data.image_points],
        ground_points=[list(p) for p in data.ground_points],
        references=[r.model_dump(mode="json") for r in data.references],
        measured_by=data.measured_by,
        measured_at=as_utc(data.measured_at),
        valid_from=valid_from,
        valid_until=valid_until,
        certificate_ref=data.certificate_ref,
        certificate_number=data.certificate_number,
        certificate_expires=data.certificate_expires,
        note=data.note,
        created_by=actor,
        created_at=now,
    )
    session.add(row)
    session.flush()
    previous = in_force(session, camera_id, valid_from - timedelta(microseconds=1))
    if previous is not None and previous.id != row.id:
        # Its period ends where the new one starts: one calibration per camera at any moment.
        previous.valid_until, previous.superseded_by = valid_from, row.id
        outbox.stage(session, change_event(previous))
    media_owners.own(session, "calibration_certificate", str(row.id), [row.certificate_ref], at=now)
    audit.record(
        session,
        actor=actor,
        action="enforcement.calibrate",
        target=camera_id,
        detail={
            "id": row.id,
            "certificate": data.certificate_number,
            "certificate_expires": data.certificate_expires.isoformat(),
            "valid_from": valid_from.isoformat(),
            "superseded": previous.id if previous is not None else None,
            "measured_by": data.measured_by,
        },
    )
    outbox.stage(session, change_event(row))
    return row


def change_event(row: CameraCalibration) -> CalibrationChanged:
    """Returns the event that brings every worker's copy of a calibration up to date."""
    until = as_utc(row.valid_until or row.created_at)
    return CalibrationChanged(
        key=f"calibration:{row.id}:{until.isoformat()}",
        camera_id=row.camera_id,
        calibration_id=row.id,
        image_points=row.image_points,
        ground_points=row.ground_points,
        valid_from=as_utc(row.valid_from or row.created_at),
        valid_until=until,
    )


def get(session: Session, calibration_id: int) -> CameraCalibration:
    """Returns a calibration or raises NotFound."""
    return get_or_raise(session, CameraCalibration, calibration_id, what="calibration")


def list_for(session: Session, camera_id: str) -> Sequence[CameraCalibration]:
    """Returns a camera's calibrations, the latest first (those out of force stay as evidence)."""
    return session.scalars(
        select(CameraCalibration)
        .where(CameraCalibration.camera_id == camera_id)
        .order_by(CameraCalibration.valid_from.desc(), CameraCalibration.id.desc())
    ).all()


def in_force(session: Session, camera_id: str, at: datetime) -> CameraCalibration | None:
    """Returns the calibration of a camera in force at `at`, or None."""
    return session.scalars(
        select(CameraCalibration)
        .where(
            CameraCalibration.camera_id == camera_id,
            CameraCalibration.valid_from <= at,
            CameraCalibration.valid_until > at,
        )
        .order_by(CameraCalibration.valid_from.desc())
        .limit(1)
    ).first()


def by_ids(session: Session, ids: Collection[int]) -> dict[int, CameraCalibration]:
    """Returns the named calibrations by id (unknown ids are left out)."""
    if not ids:
        return {}
    rows = session.scalars(select(CameraCalibration).where(CameraCalibration.id.in_(list(ids))))
    return {row.id: row for row in rows}


def current(session: Session, *, now: datetime | None = None) -> list[Calibration]:
    """Returns every calibration in force now or later, as workers hold them."""
    moment = now or utcnow()
    rows = session.scalars(
        select(CameraCalibration).where(
            CameraCalibration.valid_until > moment, CameraCalibration.valid_from.is_not(None)
        )
    )
    return [as_worker_copy(row) for row in rows]


def as_worker_copy(row: CameraCalibration) -> Calibration:
    """Returns a calibration as the pure value a worker measures speeds with."""
    return Calibration(
        id=row.id,
        camera_id=row.camera_id,
        image_points=row.image_points,
        ground_points=row.ground_points,
        valid_from=as_utc(row.valid_from or row.created_at),
        valid_until=as_utc(row.valid_until or row.created_at),
    )
