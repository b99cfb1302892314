"""What makes a violation's evidence court-ready besides its pictures: surveys, clock checks, signal sources.

- A road survey says whether the road a camera watches is marked as the law requires before an
  e-challan may be issued there (lane markings, stop lines and signals), who surveyed it and when.
- A clock check says how far a camera's clock was from the NTP reference, measured how and when.
- A signal source says where a junction's phase comes from (the controller's feed or a camera
  reading the lamp) and the drift its clock showed against the reference when last checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.clock import utcnow
from safecity.core.db import Base

CLOCK_METHODS = ("onvif", "rtcp", "ntp_query", "manual")
SIGNAL_KINDS = ("controller", "lamp")


class RoadSurvey(Base):
    """A survey of the road a camera watches: the markings and signals the law requires, seen or not."""

    __tablename__ = "road_surveys"
    __table_args__ = (Index("ix_road_surveys_camera_at", "camera_id", "surveyed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    lane_markings: Mapped[bool]
    stop_lines: Mapped[bool]
    signals: Mapped[bool]
    surveyed_by: Mapped[str] = mapped_column(String(100))
    surveyed_at: Mapped[datetime]
    note: Mapped[str] = mapped_column(String(500), default="")
    recorded_by: Mapped[str] = mapped_column(String(100), default="")
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def compliant(self) -> bool:
        """Returns whether the road has everything an e-challan there requires."""
        return self.lane_markings and self.stop_lines and self.signals


class CameraClockCheck(Base):
    """How far a camera's clock was from the NTP reference at one moment (camera minus reference)."""

    __tablename__ = "camera_clock_checks"
    __table_args__ = (Index("ix_camera_clock_checks_camera_at", "camera_id", "measured_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    offset_s: Mapped[float]
    # ± how sure the measurement is (an ONVIF probe knows; a hand-entered one may not: None).
    uncertainty_s: Mapped[float | None]
    measured_at: Mapped[datetime]
    method: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(500), default="", server_default="")
    recorded_by: Mapped[str] = mapped_column(String(100), default="")
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class SignalSource(Base):
    """Where a junction's signal phase comes from, and its clock's drift when last checked."""

    __tablename__ = "signal_sources"
    __table_args__ = (Index("ix_signal_sources_junction_checked", "junction", "checked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    junction: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    device: Mapped[str] = mapped_column(String(100))
    offset_ms: Mapped[float]
    checked_at: Mapped[datetime]
    checked_by: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(String(500), default="")
    recorded_by: Mapped[str] = mapped_column(String(100), default="")
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class RoadSurveyIn(BaseModel):
    """A road survey as the surveying officer reports it."""

    model_config = ConfigDict(extra="forbid")

    lane_markings: bool = Field(title="Lane markings", description="Lanes are marked and visible.")
    stop_lines: bool = Field(title="Stop lines", description="Stop lines are painted and visible.")
    signals: bool = Field(title="Signals", description="Signals (and signs) are installed and working.")
    surveyed_by: str = Field(min_length=1, max_length=100, title="Surveyed by", description="Officer.")
    surveyed_at: datetime = Field(title="Surveyed at", description="When the road was surveyed.")
    note: str = Field(default="", max_length=500, title="Note", description="What was found.")


class RoadSurveyOut(RoadSurveyIn):
    """A recorded road survey."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    camera_id: str
    compliant: bool
    recorded_by: str
    recorded_at: datetime


class ClockCheckIn(BaseModel):
    """A measurement of a camera's clock against the NTP reference."""

    model_config = ConfigDict(extra="forbid")

    offset_s: float = Field(
        ge=-1e7,
        le=1e7,
        allow_inf_nan=False,
        title="Offset (s)",
        description="Camera clock minus the reference, seconds (positive: the camera is ahead).",
    )
    uncertainty_s: float | None = Field(
        default=None,
        ge=0,
        le=1e4,
        allow_inf_nan=False,
        title="Uncertainty (s)",
        description="The true offset is within ± this; the gate adds it to the offset. Empty: not known.",
    )
    detail: str = Field(
        default="",
        max_length=500,
        title="How measured",
        description="E.g. the probe's requests and its reference.",
    )
    measured_at: datetime = Field(title="Measured at", description="When it was measured (reference time).")
    method: Literal["onvif", "rtcp", "ntp_query", "manual"] = Field(
        title="Method",
        description="onvif: GetSystemDateAndTime; rtcp: the stream's sender reports; ntp_query; manual.",
    )


class ClockCheckOut(ClockCheckIn):
    """A recorded clock check."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    camera_id: str
    recorded_by: str
    recorded_at: datetime


class SignalSourceIn(BaseModel):
    """A junction's signal-phase source and its last clock check."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["controller", "lamp"] = Field(
        title="Kind", description="controller: the controller's feed; lamp: a camera reading the signal head."
    )
    device: str = Field(
        min_length=1,
        max_length=100,
        title="Device",
        description="Controller id, or the camera reading the lamp.",
    )
    offset_ms: float = Field(
        ge=-1e7,
        le=1e7,
        allow_inf_nan=False,
        title="Clock offset (ms)",
        description="The source's clock minus the reference when checked, milliseconds.",
    )
    checked_at: datetime = Field(title="Checked at", description="When the clock was checked.")
    checked_by: str = Field(
        min_length=1, max_length=100, title="Checked by", description="Officer or engineer."
    )
    note: str = Field(default="", max_length=500, title="Note")


class SignalSourceOut(SignalSourceIn):
    """A recorded signal source."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    junction: str
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class Check:
    """One court-readiness check of one violation: passed or not, and what was found.

    A plain dataclass, not a pydantic model: the gate makes several for every challan it lets through.
    """

    check: Literal["calibration", "signal", "camera_clock", "road", "images"]
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        """Returns the check as stored in a violation's evidence."""
        return {"check": self.check, "ok": self.ok, "detail": self.detail}
