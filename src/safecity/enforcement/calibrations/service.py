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


def revoke(
    session: Session,
    calibration_id: int,
    *,
    effective_from: datetime,
    reason: str,
    actor: str,
    now: datetime | None = None,
) -> tuple[CameraCalibration, list[str], list[str]]:
    """Revokes a calibration from `effective_from` on (a faulty device, a withdrawn certificate).

    Its period ends then, so workers stop measuring with it and the court-readiness gate refuses every
    speed measured with it from that moment, naming the revocation. Pending violations it measured from
    then on are held with the reason and approved ones become unissuable; challans already issued on
    them are returned by number for the authority to withdraw. Returns the calibration, the violations
    held and the challan numbers. Refused: an unknown calibration, one already revoked from that moment
    or earlier, or a moment outside its period.
    """
    from safecity.challans.models import Challan
    from safecity.enforcement import service as enforcement
    from safecity.enforcement.models import Violation

    now = now or utcnow()
    row = session.get(CameraCalibration, calibration_id, with_for_update=True) or get(session, calibration_id)
    moment = as_utc(effective_from)
    start = as_utc(row.valid_from or row.created_at)
    end = as_utc(row.valid_until or row.created_at)
    why = reason.strip()
    if len(why) < 3:
        raise InvalidInput("a revocation needs a reason", hint="say why the calibration no longer holds")
    if row.revoked_from is not None and as_utc(row.revoked_from) <= moment:
        raise Conflict(
            f"calibration {row.id} is already revoked from {as_utc(row.revoked_from).isoformat()}",
            hint="an earlier moment may still be given",
        )
    if not start <= moment < max(end, as_utc(row.revoked_from) if row.revoked_from else end):
        raise InvalidInput(
            f"calibration {row.id} is in force from {start.isoformat()} to {end.isoformat()}; "
            f"{moment.isoformat()} is outside that period",
            hint="give a moment within its period",
        )
    row.valid_until = moment
    row.revoked_from, row.revoked_at, row.revoked_by, row.revoked_reason = moment, now, actor, why[:500]
    line = f"calibration {row.id} was revoked from {moment.isoformat()} by {actor}: {why}"
    measured = [
        v
        for v in session.scalars(
            select(Violation).where(
                Violation.camera_id == row.camera_id,
                Violation.offence == "speeding",
                Violation.at >= moment,
            )
        )
        if ((v.evidence or {}).get("calibration") or {}).get("id") == row.id
    ]
    held: list[str] = []
    unissuable: dict[str, str] = {}
    for violation in measured:
        if violation.status == "pending":
            violation.hold_reason = "; ".join(filter(None, [violation.hold_reason, line]))
            held.append(violation.id)
        elif violation.status == "approved":
            unissuable[violation.id] = line
    session.flush()
    enforcement.mark_unissuable(session, unissuable)
    issued = [v.challan_id for v in measured if v.status == "issued" and v.challan_id]
    numbers = sorted(session.scalars(select(Challan.number).where(Challan.id.in_(issued)))) if issued else []
    audit.record(
        session,
        actor=actor,
        action="enforcement.calibration_revoke",
        target=row.camera_id,
        detail={
            "id": row.id,
            "from": moment.isoformat(),
            "reason": why,
            "violations_held": len(held) + len(unissuable),
            "challans_to_review": numbers,
        },
    )
    outbox.stage(session, change_event(row))
    return row, sorted([*held, *unissuable]), numbers


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
