"""Dispatch: patrol units and officers with live positions, incidents, and who was sent where."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.clock import utcnow
from safecity.core.db import Base


class UnitStatus(StrEnum):
    available = "available"
    en_route = "en_route"
    on_scene = "on_scene"
    off_duty = "off_duty"


class UnitKind(StrEnum):
    patrol_car = "patrol_car"
    motorcycle = "motorcycle"
    officer = "officer"


class Outcome(StrEnum):
    arrest = "arrest"
    not_found = "not_found"
    false_alarm = "false_alarm"
    resolved = "resolved"


class Unit(Base):
    """A patrol unit or officer on foot: where it is, what it is doing, and the incident it serves."""

    __tablename__ = "units"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    callsign: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    district: Mapped[str] = mapped_column(String(100), default="", index=True)
    status: Mapped[str] = mapped_column(String(16), default="available", index=True)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    position_at: Mapped[datetime | None]
    incident_id: Mapped[str | None] = mapped_column(String(32), index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)


class Incident(Base):
    """One situation handled in the field: the alerts that raised it, the units sent, and the outcome."""

    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    priority: Mapped[int] = mapped_column(default=3)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    outcome: Mapped[str | None] = mapped_column(String(16), index=True)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(String(100))
    closed_at: Mapped[datetime | None]
    notes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class IncidentAlert(Base):
    """An alert linked to an incident."""

    __tablename__ = "incident_alerts"

    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)


class Dispatch(Base):
    """One unit sent to one incident: when, by whom, how far, and when it arrived and cleared."""

    __tablename__ = "dispatches"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id"), index=True)
    dispatched_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    dispatched_by: Mapped[str] = mapped_column(String(100))
    distance_m: Mapped[float | None]
    eta_s: Mapped[float | None]
    arrived_at: Mapped[datetime | None]
    cleared_at: Mapped[datetime | None]


class UnitIn(BaseModel):
    """A unit as registered."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", title="Id")
    callsign: str = Field(min_length=1, max_length=100, title="Call sign", description="Radio call sign.")
    kind: UnitKind = Field(
        default=UnitKind.patrol_car, title="Kind", description="patrol_car, motorcycle, officer."
    )
    district: str = Field(default="", max_length=100, title="District", description="Home district.")
    status: UnitStatus = Field(default=UnitStatus.available, title="Status")
    latitude: float | None = Field(default=None, ge=-90, le=90, title="Latitude")
    longitude: float | None = Field(default=None, ge=-180, le=180, title="Longitude")


class UnitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    callsign: str
    kind: str
    district: str
    status: str
    latitude: float | None
    longitude: float | None
    position_at: datetime | None
    incident_id: str | None
    updated_at: datetime
    version: int
    officer: str | None = Field(
        default=None, title="Officer", description="Who is signed in to the unit on the officer's phone."
    )
    officer_since: datetime | None = Field(
        default=None, title="Signed in", description="When that officer's shift on the unit began."
    )


class ShiftEndIn(BaseModel):
    """A supervisor ends the shift open on a unit (a lost phone, an officer off duty not signed out)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500, title="Reason", description="Why the shift is ended.")


class PositionIn(BaseModel):
    """A position report from a unit's device."""

    model_config = ConfigDict(extra="forbid")

    latitude: float = Field(ge=-90, le=90, title="Latitude", description="WGS84 latitude.")
    longitude: float = Field(ge=-180, le=180, title="Longitude", description="WGS84 longitude.")
    at: datetime | None = Field(default=None, title="Time", description="When the fix was taken; empty: now.")


class StatusIn(BaseModel):
    """A status update from the field (or relayed by an operator)."""

    model_config = ConfigDict(extra="forbid")

    status: UnitStatus = Field(title="Status", description="available, en_route, on_scene, off_duty.")
    note: str = Field(default="", max_length=500, title="Note", description="What the unit reports.")


class Candidate(BaseModel):
    """A unit that could go, with how far it is and how long it would take."""

    unit: UnitOut
    distance_m: float = Field(title="Distance", description="Straight-line distance in metres.")
    eta_s: float = Field(title="ETA", description="Estimated seconds to arrive at the average urban speed.")


class DispatchIn(BaseModel):
    """Send a unit: to an existing incident, or to an alert (an incident is opened for it if needed)."""

    model_config = ConfigDict(extra="forbid")

    unit_id: str = Field(min_length=1, max_length=64, title="Unit")
    alert_id: str | None = Field(default=None, min_length=1, max_length=32, title="Alert")
    incident_id: str | None = Field(default=None, min_length=1, max_length=32, title="Incident")


class DispatchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    incident_id: str
    unit_id: str
    dispatched_at: datetime
    dispatched_by: str
    distance_m: float | None
    eta_s: float | None
    arrived_at: datetime | None
    cleared_at: datetime | None


class IncidentIn(BaseModel):
    """Open an incident by hand (a call, a radio report) or from alerts."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300, title="Title")
    priority: int = Field(default=3, ge=1, le=5, title="Priority")
    latitude: float | None = Field(default=None, ge=-90, le=90, title="Latitude")
    longitude: float | None = Field(default=None, ge=-180, le=180, title="Longitude")
    alert_ids: list[str] = Field(default_factory=list, max_length=50, title="Alerts")


class NoteIn(BaseModel):
    """A note on an incident, optionally with an evidence ref (a photo the officer uploaded)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=2000, title="Text")
    evidence_ref: str | None = Field(
        default=None,
        pattern=r"^sha256:[0-9a-f]{64}\.[a-z0-9]{1,5}$",
        title="Evidence",
        description="Media ref.",
    )


class CloseIn(BaseModel):
    """How an incident ended."""

    model_config = ConfigDict(extra="forbid")

    outcome: Outcome = Field(title="Outcome", description="arrest, not_found, false_alarm, resolved.")
    note: str = Field(default="", max_length=2000, title="Note")


class IncidentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    priority: int
    status: str
    outcome: str | None
    latitude: float | None
    longitude: float | None
    created_at: datetime
    created_by: str
    closed_at: datetime | None
    notes: list[dict[str, Any]]
    alert_ids: list[str] = Field(default_factory=list)
    dispatches: list[DispatchOut] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list, description="Media refs from the alerts and the notes.")


class DispatchStats(BaseModel):
    """Response times of units: dispatch to arrival on scene."""

    dispatches: int
    arrived: int
    p50_s: float | None
    p90_s: float | None
    by_outcome: dict[str, int]


# The officer's phone keeps its tables in its sub-domain; imported here so the schema sees them.
from safecity.dispatch.field import models as field_models  # noqa: E402, F401
