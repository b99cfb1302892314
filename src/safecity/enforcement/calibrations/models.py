"""Speed-camera calibrations: one per camera per period, with who measured it, how, and its certificate.

A calibration maps image points to road metres. It is recorded with the reference measurements that
prove it (distances taped on the road and reproduced through it), the certificate of the inspecting
body (a stored file, its number and expiry) and the period it is in force: from `valid_from` until
the next calibration of the camera starts or the certificate expires, whichever comes first.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import JSON, Date, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.clock import utcnow
from safecity.core.db import Base
from safecity.core.events import Event, register_event

#: A pixel or a metre of a calibration: finite and within a million, so the geometry cannot overflow.
Coordinate = Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False)]
Pair = tuple[Coordinate, Coordinate]
#: Certificates are stored documents or scans.
CERTIFICATE_REF = r"^sha256:[0-9a-f]{64}\.(pdf|jpg|png)$"


class CameraCalibration(Base):
    """A camera's image-to-road calibration, its proof, its certificate and the period it is in force."""

    __tablename__ = "camera_calibrations"
    __table_args__ = (Index("ix_camera_calibrations_camera_valid", "camera_id", "valid_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), index=True)
    image_points: Mapped[list[list[float]]] = mapped_column(JSON)
    ground_points: Mapped[list[list[float]]] = mapped_column(JSON)
    references: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    measured_by: Mapped[str] = mapped_column(String(100), default="")
    measured_at: Mapped[datetime | None]
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    certificate_ref: Mapped[str | None] = mapped_column(String(120))
    certificate_number: Mapped[str] = mapped_column(String(100), default="")
    certificate_expires: Mapped[date | None] = mapped_column(Date)
    superseded_by: Mapped[int | None]
    note: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Revoked (a faulty device, a withdrawn certificate): not in force from `revoked_from` on.
    revoked_from: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(100))
    revoked_reason: Mapped[str] = mapped_column(String(500), default="", server_default="")


class CalibrationChanged(Event):
    """A calibration was recorded or its period ended early; workers update their copy of it."""

    type: ClassVar[str] = "calibration_changed"
    calibration_id: int = Field(title="Calibration", description="Id of the calibration record.")
    image_points: list[list[float]] = Field(title="Image points", description="Four [x, y] pixels.")
    ground_points: list[list[float]] = Field(title="Road points", description="The same four points, metres.")
    valid_from: datetime = Field(title="In force from", description="First moment it measures speeds.")
    valid_until: datetime = Field(title="In force until", description="It measures nothing from then on.")


register_event(CalibrationChanged)


class ReferenceMeasurement(BaseModel):
    """A distance taped on the road between two marks, and where the marks are in the image."""

    model_config = ConfigDict(extra="forbid")

    image_from: Pair = Field(title="From (image)", description="[x, y] pixel of the first mark.")
    image_to: Pair = Field(title="To (image)", description="[x, y] pixel of the second mark.")
    metres: float = Field(gt=0, le=1000, title="Distance", description="Taped distance between them, metres.")


class CalibrationIn(BaseModel):
    """A calibration as the inspecting officer records it."""

    model_config = ConfigDict(extra="forbid")

    image_points: list[Pair] = Field(
        min_length=4,
        max_length=4,
        title="Image points",
        description="Four [x, y] pixels round a quadrilateral on the road, no three collinear.",
    )
    ground_points: list[Pair] = Field(
        min_length=4,
        max_length=4,
        title="Road points",
        description="The same four points on the road, metres, in the same order.",
    )
    references: list[ReferenceMeasurement] = Field(
        min_length=1,
        max_length=20,
        title="Reference measurements",
        description="Taped distances the calibration must reproduce within 2%.",
    )
    measured_by: str = Field(
        min_length=1, max_length=100, title="Measured by", description="Officer or inspector who measured."
    )
    measured_at: datetime = Field(title="Measured at", description="When the measurements were taken.")
    valid_from: datetime | None = Field(
        default=None, title="In force from", description="Empty: from when it was measured."
    )
    certificate_ref: str = Field(
        pattern=CERTIFICATE_REF,
        title="Certificate file",
        description="Ref of the stored certificate (PDF or scan), from the certificate upload.",
    )
    certificate_number: str = Field(
        min_length=1, max_length=100, title="Certificate number", description="As printed on it."
    )
    certificate_expires: date = Field(title="Certificate expires", description="Last day it is valid.")
    note: str = Field(default="", max_length=500, title="Note", description="Method, instrument, remarks.")

    @model_validator(mode="after")
    def _in_order(self) -> CalibrationIn:
        if self.valid_from is not None and self.valid_from < self.measured_at:
            raise ValueError("a calibration cannot be in force before it was measured")
        return self


class CalibrationOut(BaseModel):
    """A recorded calibration."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    camera_id: str
    image_points: list[list[float]]
    ground_points: list[list[float]]
    references: list[dict[str, object]]
    measured_by: str
    measured_at: datetime | None
    valid_from: datetime | None
    valid_until: datetime | None
    certificate_ref: str | None
    certificate_number: str
    certificate_expires: date | None
    superseded_by: int | None
    note: str
    created_by: str
    created_at: datetime
    revoked_from: datetime | None = Field(
        default=None, title="Revoked from", description="Not in force from this moment on (revoked)."
    )
    revoked_at: datetime | None = Field(default=None, title="Revoked", description="When it was revoked.")
    revoked_by: str | None = Field(default=None, title="Revoked by", description="Who revoked it.")
    revoked_reason: str = Field(default="", title="Why revoked", description="The reason given.")


class CalibrationRevokeIn(BaseModel):
    """Revokes a calibration from a moment on: speeds measured with it from then are not evidence."""

    effective_from: datetime = Field(
        title="Revoked from",
        description="The first moment the calibration no longer holds (e.g. when the device was found "
        "faulty or the certificate withdrawn); within its period, not in the future beyond its end.",
    )
    reason: str = Field(min_length=3, max_length=500, title="Reason", description="Why it is revoked.")


class CalibrationRevokeOut(BaseModel):
    """What a revocation changed and what people must now look at."""

    calibration: CalibrationOut = Field(title="Calibration", description="The calibration as it now stands.")
    violations_held: list[str] = Field(
        title="Violations held",
        description="Pending or approved violations measured with it from the revocation on: now held "
        "with the reason (the gate refuses their challans).",
    )
    challans_to_review: list[str] = Field(
        title="Challans to review",
        description="Numbers of challans already issued on speeds it measured from the revocation on: "
        "the authority should withdraw or re-examine them.",
    )
