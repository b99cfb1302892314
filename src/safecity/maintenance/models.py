"""Camera maintenance: health history as state spans, faults that close themselves, maintenance tickets.

A span is one stretch of one health state of one camera (`until` empty while it lasts). A fault is a
span in a state other than online, kept with its evidence frame until the camera recovers or changes
to another fault. A ticket is the maintenance team's work on a camera, opened by hand or when a fault
outlasts its threshold, assigned to a team member and closed with a note.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import JSON, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.clock import utcnow
from safecity.core.db import MAX_BIGINT, Base

TICKET_STATES = ("open", "assigned", "closed")
OPEN_TICKET_STATES = ("open", "assigned")
OPEN_FAULT_INDEX = "uq_maintenance_tickets_open_fault"
_OPEN_SQL = "status IN ('open', 'assigned')"


class MaintenanceSettings(BaseSettings):
    """Settings of the maintenance domain (`SAFECITY_MAINTENANCE_*` environment variables)."""

    model_config = SettingsConfigDict(env_prefix="SAFECITY_MAINTENANCE_", extra="ignore")

    ticket_after_minutes: float = Field(
        default=15,
        ge=0,
        title="Automatic ticket after",
        description="Minutes a camera may stay faulty before a maintenance ticket opens by itself; 0: never.",
    )
    sweep_seconds: float = Field(
        default=30,
        gt=0,
        title="Sweep interval",
        description="Seconds between checks for faults that outlasted the automatic-ticket threshold.",
    )


class HealthSpan(Base):
    """One stretch of one health state of one camera; `until` is empty while the state lasts."""

    __tablename__ = "camera_health_spans"
    __table_args__ = (Index("ix_camera_health_spans_camera_since", "camera_id", "since"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(String(500), default="")
    since: Mapped[datetime]
    until: Mapped[datetime | None] = mapped_column(index=True)
    frame_ref: Mapped[str | None] = mapped_column(String(200))
    fps: Mapped[float | None]
    event_key: Mapped[str] = mapped_column(String(200), unique=True)


class CameraFault(Base):
    """A camera in a state other than online, with its evidence, until it recovers or changes state."""

    __tablename__ = "camera_faults"
    __table_args__ = (Index("ix_camera_faults_camera_open", "camera_id", "ended_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(String(500), default="")
    started_at: Mapped[datetime] = mapped_column(index=True)
    # When the camera was last online before this fault (the outage may have passed through other faults).
    outage_since: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(100))
    resolution: Mapped[str] = mapped_column(String(500), default="")
    frame_ref: Mapped[str | None] = mapped_column(String(200))
    event_key: Mapped[str] = mapped_column(String(200), unique=True)


class Ticket(Base):
    """A maintenance team's piece of work on one camera; a fault has at most one open ticket."""

    __tablename__ = "maintenance_tickets"
    # The database holds the rule, so two people (or a person and the sweep) pressing at once open one.
    __table_args__ = (
        Index(
            OPEN_FAULT_INDEX,
            "fault_id",
            unique=True,
            sqlite_where=text(_OPEN_SQL),
            postgresql_where=text(_OPEN_SQL),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), index=True)
    fault_id: Mapped[str | None] = mapped_column(ForeignKey("camera_faults.id", ondelete="SET NULL"))
    description: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    assignee: Mapped[str | None] = mapped_column(String(100), index=True)
    opened_by: Mapped[str] = mapped_column(String(100))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    closed_by: Mapped[str | None] = mapped_column(String(100))
    closed_at: Mapped[datetime | None]
    close_note: Mapped[str] = mapped_column(String(2000), default="")
    # Set only on tickets the system opens, one per fault, so two sweeping servers open one ticket.
    auto_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    version: Mapped[int] = mapped_column(default=1)


class TicketAction(Base):
    """Every step of a ticket: opened, assigned, noted, closed, with who and the words they wrote."""

    __tablename__ = "maintenance_ticket_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[str] = mapped_column(
        ForeignKey("maintenance_tickets.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(2000), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SpanOut(BaseModel):
    """One stretch of a camera's health, for the history chart."""

    model_config = ConfigDict(from_attributes=True)

    camera_id: str = Field(title="Camera", description="Camera id.")
    state: str = Field(title="State", description="online, offline, frozen, covered…")
    detail: str = Field(title="Detail", description="What was wrong, in plain words.")
    since: datetime = Field(title="Since", description="When the state began (UTC).")
    until: datetime | None = Field(title="Until", description="When it ended; empty while it lasts.")
    frame_ref: str | None = Field(title="Evidence", description="Media ref of the evidence frame, if any.")
    fps: float | None = Field(title="Frame rate", description="Measured frames per second, if known.")


class FaultOut(BaseModel):
    """A camera fault with its evidence, open or closed."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(title="Fault", description="Fault id.")
    camera_id: str = Field(title="Camera", description="Camera id.")
    state: str = Field(title="State", description="The fault state: offline, frozen, covered…")
    detail: str = Field(title="Detail", description="What is wrong, in plain words.")
    started_at: datetime = Field(title="Began", description="When the fault began (UTC).")
    outage_since: datetime = Field(
        title="Outage since", description="When the camera was last online before this fault."
    )
    ended_at: datetime | None = Field(title="Ended", description="When it ended; empty while open.")
    closed_by: str | None = Field(
        title="Closed by", description="'recovered', 'superseded' (another fault took over) or a user."
    )
    resolution: str = Field(title="Resolution", description="How it ended, in plain words.")
    frame_ref: str | None = Field(title="Evidence", description="Media ref of the evidence frame, if any.")
    open_ticket_id: str | None = Field(
        default=None, title="Open ticket", description="The fault's open ticket, if it has one (at most one)."
    )


class DayUptime(BaseModel):
    """The share of one local day a camera (or the city) was online."""

    day: date = Field(title="Day", description="The day, in the report's time zone.")
    start: datetime = Field(title="Starts", description="The day's local midnight, in UTC.")
    end: datetime = Field(title="Ends", description="The next local midnight, in UTC.")
    online_s: float = Field(title="Online", description="Seconds online that day.")
    known_s: float = Field(
        title="Watched", description="Seconds of the day with a known state (the past part of the day only)."
    )
    uptime: float | None = Field(
        title="Uptime", description="online_s / known_s, 0..1; empty when nothing was known that day."
    )


class CameraUptime(BaseModel):
    """One camera's daily uptime over a period."""

    camera_id: str = Field(title="Camera", description="Camera id.")
    name: str = Field(title="Name", description="Camera name.")
    district: str = Field(title="District", description="District the camera covers.")
    days: list[DayUptime] = Field(title="Days", description="One entry per day, oldest first.")
    uptime: float | None = Field(title="Uptime", description="Share of the whole period online, 0..1.")


class UptimeReport(BaseModel):
    """Uptime per camera per day and for the whole city."""

    tz: str = Field(title="Time zone", description="Time zone the days are counted in.")
    start: datetime = Field(title="From", description="Start of the first day (UTC).")
    end: datetime = Field(title="To", description="End of the period: now (UTC).")
    city: list[DayUptime] = Field(title="City", description="City-wide uptime per day, oldest first.")
    uptime: float | None = Field(title="City uptime", description="Share of the period cameras were online.")
    cameras: list[CameraUptime] = Field(title="Cameras", description="Per camera, by id.")


class CameraStatus(BaseModel):
    """A camera as the maintenance team sees it: state, open fault and ticket, uptime."""

    camera_id: str = Field(title="Camera", description="Camera id.")
    name: str = Field(title="Name", description="Camera name.")
    kind: str = Field(title="Type", description="fixed, anpr, face or bodycam.")
    district: str = Field(title="District", description="District the camera covers.")
    enabled: bool = Field(title="Enabled", description="Whether the camera is analysed.")
    state: str = Field(title="State", description="Current health state; 'unknown' before the first report.")
    detail: str = Field(title="Detail", description="What is wrong, in plain words.")
    since: datetime | None = Field(title="Since", description="When the current state began.")
    open_fault: FaultOut | None = Field(title="Open fault", description="The fault open now, if any.")
    open_tickets: int = Field(title="Open tickets", description="Tickets not yet closed for this camera.")
    uptime_today: float | None = Field(title="Uptime today", description="Share of today online, 0..1.")
    uptime_7d: float | None = Field(title="Uptime 7 days", description="Share of the last 7 days online.")
    online_today_s: float = Field(title="Online today", description="Seconds online today.")
    known_today_s: float = Field(title="Watched today", description="Seconds of today with a known state.")
    online_7d_s: float = Field(title="Online 7 days", description="Seconds online over the last 7 days.")
    known_7d_s: float = Field(
        title="Watched 7 days",
        description="Seconds of the last 7 days with a known state (sum these for a city figure).",
    )


class CameraHistory(BaseModel):
    """A camera's health over a period: spans for the timeline chart, daily uptime, faults."""

    camera_id: str = Field(title="Camera", description="Camera id.")
    name: str = Field(title="Name", description="Camera name.")
    tz: str = Field(title="Time zone", description="Time zone the days are counted in.")
    start: datetime = Field(title="From", description="Start of the first day (UTC).")
    end: datetime = Field(title="To", description="Now (UTC).")
    spans: list[SpanOut] = Field(title="Spans", description="Spans overlapping the period, oldest first.")
    days: list[DayUptime] = Field(title="Days", description="Uptime per day, oldest first.")
    faults: list[FaultOut] = Field(title="Faults", description="Faults that began or lasted in the period.")


class TicketIn(BaseModel):
    """A ticket opened by hand, for a camera or one of its faults."""

    model_config = ConfigDict(extra="forbid")

    camera_id: str | None = Field(
        default=None, max_length=64, title="Camera", description="Camera id; may be left out with a fault id."
    )
    fault_id: str | None = Field(
        default=None, max_length=32, title="Fault", description="The fault this ticket is about, if any."
    )
    description: str = Field(
        min_length=1, max_length=2000, title="Description", description="What is to be done, in plain words."
    )
    assignee: str | None = Field(
        default=None, max_length=100, title="Assignee", description="Team member to assign at once, if any."
    )

    @field_validator("description")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must say what is to be done")
        return value.strip()


class AssignIn(BaseModel):
    """Who is to work a ticket."""

    model_config = ConfigDict(extra="forbid")

    assignee: str = Field(
        min_length=1, max_length=100, title="Assignee", description="User name of a maintenance team member."
    )
    version: int | None = Field(
        default=None,
        ge=1,
        le=MAX_BIGINT,
        title="Version",
        description="The ticket version you saw; a stale one is refused.",
    )


class CloseIn(BaseModel):
    """How a ticket ended."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(
        min_length=1, max_length=2000, title="Note", description="What was found and done (required)."
    )
    version: int | None = Field(
        default=None,
        ge=1,
        le=MAX_BIGINT,
        title="Version",
        description="The ticket version you saw; a stale one is refused.",
    )

    @field_validator("note")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must say what was found and done")
        return value.strip()


class TicketActionOut(BaseModel):
    """One step in a ticket's history."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime = Field(title="At", description="When (UTC).")
    actor: str = Field(title="By", description="User name, or 'system'.")
    action: str = Field(title="Action", description="open, assign, note or close.")
    note: str = Field(title="Note", description="The words written with it.")
    detail: dict[str, Any] = Field(title="Detail", description="Assignee, fault and the like.")


class TicketOut(BaseModel):
    """A maintenance ticket."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(title="Ticket", description="Ticket id.")
    camera_id: str = Field(title="Camera", description="Camera id.")
    fault_id: str | None = Field(title="Fault", description="The fault it is about, if any.")
    description: str = Field(title="Description", description="What is to be done.")
    status: str = Field(title="Status", description="open, assigned or closed.")
    assignee: str | None = Field(title="Assignee", description="Team member working it.")
    opened_by: str = Field(title="Opened by", description="User name, or 'system' for automatic tickets.")
    opened_at: datetime = Field(title="Opened", description="When (UTC).")
    closed_by: str | None = Field(title="Closed by", description="Who closed it.")
    closed_at: datetime | None = Field(title="Closed", description="When (UTC).")
    close_note: str = Field(title="Closing note", description="What was found and done.")
    version: int = Field(title="Version", description="Changes with every step; send it back to act safely.")


class TicketDetail(TicketOut):
    """A ticket with its history of steps."""

    actions: list[TicketActionOut] = Field(title="History", description="Every step, oldest first.")


class Assignee(BaseModel):
    """A user who may work maintenance tickets."""

    username: str = Field(title="User name")
    full_name: str = Field(title="Full name")
    role: str = Field(title="Role")
