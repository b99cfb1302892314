"""Traffic enforcement: violations with their evidence, speed sections, signal phases, calibrations.

A violation is one offence by one vehicle at one camera, de-duplicated within a window, reviewed by a
traffic officer (or approved automatically above the configured confidence) before a challan is issued.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.clock import utcnow
from safecity.core.db import Base
from safecity.core.events import Event, register_event
from safecity.vision.traffic import SpeedLimit

OFFENCES = ("red_light", "speeding", "section_speeding", "unregistered", "no_seat_belt", "no_helmet")
REVIEW_ONLY_OFFENCES = ("no_seat_belt", "no_helmet")
"""Offences an officer always reviews, whatever the policy says: a model's judgement of a helmet or a seat
belt through a windscreen is never enough on its own to fine anyone."""
VIOLATION_STATES = ("pending", "approved", "rejected", "issued", "unissuable")


class Violation(Base):
    """One offence by one vehicle at one camera, with the evidence that it happened."""

    __tablename__ = "violations"
    __table_args__ = (Index("ix_violations_status_created", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    offence: Mapped[str] = mapped_column(String(32), index=True)
    plate: Mapped[str | None] = mapped_column(String(20), index=True)
    camera_id: Mapped[str | None] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    confidence: Mapped[float] = mapped_column(default=1.0)
    measured: Mapped[float | None]
    limit: Mapped[float | None]
    unit: Mapped[str] = mapped_column(String(16), default="")
    vehicle_class: Mapped[str | None] = mapped_column(String(16))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source_key: Mapped[str] = mapped_column(String(200), unique=True)
    dedup_key: Mapped[str] = mapped_column(String(200), index=True)
    occurrences: Mapped[int] = mapped_column(default=1)
    auto_approved: Mapped[bool] = mapped_column(default=False)
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None]
    review_reason: Mapped[str] = mapped_column(String(500), default="")
    hold_reason: Mapped[str] = mapped_column(String(500), default="")
    challan_id: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SpeedSection(Base):
    """Two ANPR cameras a known road distance apart: the enforcement-grade average-speed measure."""

    __tablename__ = "speed_sections"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    entry_camera_id: Mapped[str] = mapped_column(String(64), index=True)
    exit_camera_id: Mapped[str] = mapped_column(String(64), index=True)
    distance_m: Mapped[float]
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SectionSighting(Base):
    """A plate seen at a section's entry or exit, waiting for its counterpart."""

    __tablename__ = "section_sightings"
    __table_args__ = (
        UniqueConstraint("section_id", "role", "event_key", name="uq_section_sightings_event"),
        Index("ix_section_sightings_lookup", "section_id", "plate", "role", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    section_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(8))
    plate: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime]
    event_key: Mapped[str] = mapped_column(String(200))
    camera_id: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(default=1.0)
    crop_ref: Mapped[str | None] = mapped_column(String(120))
    frame_ref: Mapped[str | None] = mapped_column(String(120))
    vehicle_class: Mapped[str | None] = mapped_column(String(16))
    paired: Mapped[bool] = mapped_column(default=False)


class SignalPhaseChange(Base):
    """A junction's signal changed phase, as its controller reported (or a camera read from the head)."""

    __tablename__ = "signal_phase_changes"
    __table_args__ = (Index("ix_signal_phase_changes_junction_at", "junction", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    junction: Mapped[str] = mapped_column(String(64))
    phase: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(32), default="controller")
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class EnforcementPolicySetting(Base):
    """The one row holding the enforcement policy the traffic police chose (JSON of EnforcementPolicy)."""

    __tablename__ = "enforcement_policy"

    id: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_by: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- events ----------------------------------------------------------------------------------------


class ViolationApproved(Event):
    """A violation passed review (or was approved automatically) and may become a challan."""

    type: ClassVar[str] = "violation_approved"
    violation_id: str = Field(title="Violation", description="Id of the approved violation.")
    offence: str = Field(title="Offence", description="Offence of the violation.")
    plate: str | None = Field(default=None, title="Plate", description="Plate of the vehicle, if read.")


class SignalPhaseChanged(Event):
    """A junction's signal phase changed; workers follow it to judge stop-line crossings."""

    type: ClassVar[str] = "signal_phase"
    junction: str = Field(title="Junction", description="Junction (signal controller) id.")
    phase: str = Field(title="Phase", description="red, amber, green or off.")
    source: str = Field(default="controller", title="Source", description="controller or camera.")


register_event(ViolationApproved)
register_event(SignalPhaseChanged)


# --- schemas ---------------------------------------------------------------------------------------


class SpeedSectionIn(BaseModel):
    """A speed section as configured by the traffic police."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", title="Id")
    name: str = Field(min_length=1, max_length=200, title="Name", description="Road and direction.")
    entry_camera_id: str = Field(
        min_length=1, max_length=64, title="Entry camera", description="ANPR camera."
    )
    exit_camera_id: str = Field(min_length=1, max_length=64, title="Exit camera", description="ANPR camera.")
    distance_m: float = Field(gt=10, le=100_000, title="Distance", description="Road distance in metres.")
    limit: SpeedLimit = Field(title="Limit", description="Limit per vehicle class and tolerance.")
    enabled: bool = Field(default=True, title="Enabled")

    @model_validator(mode="after")
    def _two_cameras(self) -> SpeedSectionIn:
        if self.entry_camera_id == self.exit_camera_id:
            raise ValueError("entry and exit cameras must differ")
        return self


class SpeedSectionOut(BaseModel):
    """A configured speed section."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    entry_camera_id: str
    exit_camera_id: str
    distance_m: float
    limits: dict[str, Any]
    enabled: bool


class PhaseIn(BaseModel):
    """A phase change posted by a signal controller."""

    model_config = ConfigDict(extra="forbid")

    phase: Literal["red", "amber", "green", "off"] = Field(title="Phase")
    at: datetime | None = Field(default=None, title="Time", description="When it changed; empty: now.")
    source: Literal["controller", "camera", "manual"] = Field(default="controller", title="Source")


class PhaseOut(BaseModel):
    """A recorded phase change."""

    model_config = ConfigDict(from_attributes=True)

    junction: str
    phase: str
    at: datetime
    source: str


class EnforcementPolicy(BaseModel):
    """What the traffic police chose: de-duplication, automatic issue, and what counts as evidence."""

    model_config = ConfigDict(extra="forbid")

    dedup_window_s: float = Field(
        default=300,
        ge=0,
        le=86_400,
        title="De-duplication window",
        description="Seconds within which the same vehicle, offence and camera is one violation.",
    )
    auto_issue_confidence: float | None = Field(
        default=0.95,
        ge=0,
        le=1,
        title="Auto-issue confidence",
        description="Violations at or above this confidence skip review; empty: every one is reviewed.",
    )
    auto_issue_offences: list[str] = Field(
        default_factory=lambda: ["red_light", "speeding", "section_speeding"],
        title="Auto-issue offences",
        description="Offences that may skip review. Seat belt and helmet (no_seat_belt, no_helmet) may not: "
        "an officer always reviews them.",
    )
    min_plate_confidence: float = Field(
        default=0.8,
        ge=0,
        le=1,
        title="Plate confidence",
        description="Reads below this are not trusted to say a plate is missing from the registry.",
    )
    unregistered_check: bool = Field(
        default=True,
        title="Unregistered check",
        description="Raise a violation for plates not in the registry.",
    )
    clock_source: str = Field(
        default="camera clock, NTP-synchronised to the command centre's stratum-1 server",
        max_length=300,
        title="Clock source",
        description="Recorded in each violation's evidence.",
    )
    clock_tolerance_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        title="Camera clock tolerance (s)",
        description="A camera clock further than this from NTP makes its violations unissuable.",
    )
    clock_check_max_age_h: float = Field(
        default=24,
        gt=0,
        le=24 * 31,
        title="Clock check age (h)",
        description="A violation needs a clock check of its camera at most this long before it.",
    )
    signal_clock_tolerance_ms: float = Field(
        default=100,
        ge=0,
        le=5000,
        title="Signal clock tolerance (ms)",
        description="A signal source whose clock drifts more than this cannot prove a red light.",
    )
    signal_check_max_age_days: float = Field(
        default=90,
        gt=0,
        le=366,
        title="Signal check age (days)",
        description="A red light needs its junction's signal source checked at most this long before.",
    )

    @field_validator("auto_issue_offences")
    @classmethod
    def _reviewed_offences_stay_reviewed(cls, value: list[str]) -> list[str]:
        refused = [o for o in value if o in REVIEW_ONLY_OFFENCES]
        if refused:
            raise ValueError(
                f"{', '.join(refused)} cannot skip review: an officer always reviews helmet and seat-belt "
                "offences (a model's judgement alone never issues a challan); remove them from the list"
            )
        return value


class ViolationOut(BaseModel):
    """A violation as shown to a traffic officer."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    offence: str
    plate: str | None
    camera_id: str | None
    at: datetime
    status: str
    confidence: float
    measured: float | None
    limit: float | None
    unit: str
    vehicle_class: str | None
    evidence: dict[str, Any]
    detail: dict[str, Any]
    occurrences: int
    auto_approved: bool
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_reason: str
    hold_reason: str
    challan_id: str | None
    created_at: datetime


class ReviewOut(ViolationOut):
    """A violation after review, with what the decision led to in words an officer can act on."""

    outcome: str = Field(title="Outcome", description="What happened: the challan issued, or why not.")

    @classmethod
    def of(cls, violation: Violation, *, outcome: str) -> ReviewOut:
        """Returns the reviewed violation with its outcome."""
        return cls.model_validate({**ViolationOut.model_validate(violation).model_dump(), "outcome": outcome})


class ReviewIn(BaseModel):
    """A traffic officer's decision on a violation."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"] = Field(title="Decision")
    reason: str = Field(default="", max_length=500, title="Reason", description="Required to reject.")
    plate: str | None = Field(
        default=None, max_length=20, title="Corrected plate", description="The plate as the officer reads it."
    )


# The sub-domains' tables and events belong to this domain's schema (Alembic and `safecity.models`).
from safecity.enforcement.calibrations import models as _calibrations  # noqa: E402, F401
from safecity.enforcement.readiness import models as _readiness  # noqa: E402, F401
