"""The officer's phone: who is signed in to which unit for a shift, and the updates it sent.

An officer's account is bound to one unit for a shift; only that officer speaks for the unit from
the field, and only for the incident the unit is assigned to. Updates carry a key made on the phone
so an update queued offline and sent twice (a lost answer, a retry) is applied once.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.clock import utcnow
from safecity.core.db import Base
from safecity.dispatch.models import Outcome

KEY_PATTERN = r"^[A-Za-z0-9_.:-]{8,64}$"


class FieldOutcome(StrEnum):
    """The three answers an officer gives on the scene, in the words of the field."""

    suspect_confirmed = "suspect_confirmed"
    not_found = "not_found"
    false_alarm = "false_alarm"

    @property
    def outcome(self) -> Outcome:
        """The incident outcome it closes with: a confirmed suspect is stopped, i.e. an arrest."""
        return {
            FieldOutcome.suspect_confirmed: Outcome.arrest,
            FieldOutcome.not_found: Outcome.not_found,
            FieldOutcome.false_alarm: Outcome.false_alarm,
        }[self]


class UnitShift(Base):
    """One officer signed in to one unit, from `started_at` until `ended_at` (open while empty)."""

    __tablename__ = "unit_shifts"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id"), index=True)
    username: Mapped[str] = mapped_column(String(100), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(100))
    # The unit and the officer again while the shift is open, empty once it ends: unique columns (many
    # empties allowed) make "one open shift per unit and per officer" the database's rule, so two
    # phones signing in to one unit at once cannot both win.
    open_unit: Mapped[str | None] = mapped_column(String(64), unique=True)
    open_officer: Mapped[str | None] = mapped_column(String(100), unique=True)


class FieldUpdate(Base):
    """An update from a phone, by the key the phone gave it: the record that applies it once."""

    __tablename__ = "field_updates"

    username: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ShiftIn(BaseModel):
    """Sign in to a unit for a shift."""

    model_config = ConfigDict(extra="forbid")

    unit_id: str = Field(min_length=1, max_length=64, title="Unit", description="The unit's id (e.g. PU-2).")


class ShiftOut(BaseModel):
    """An officer's shift on a unit."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    unit_id: str
    started_at: datetime
    ended_at: datetime | None


class FieldUnit(BaseModel):
    """A unit an officer may sign in to, and whether someone already has."""

    id: str
    callsign: str
    kind: str
    status: str
    taken: bool = Field(title="Taken", description="Another officer is signed in to it.")


class FieldRoute(BaseModel):
    """How to get from the unit's last position to the incident: along the roads, else a straight line."""

    points: list[list[float]] = Field(description="[latitude, longitude] from the unit to the incident.")
    distance_m: float = Field(description="Its length in metres.")
    eta_s: float = Field(description="Seconds to drive it: by each road's speed, or the average urban speed.")
    source: Literal["roads", "straight"] = Field(
        description="'roads': along the road file's streets; 'straight': a straight line (see note)."
    )
    note: str = Field(default="", description="Why the line is straight (no road file, off the roads, …).")


class FieldIncident(BaseModel):
    """What an officer needs to act: what, where (and how to get there), how far, and the photos."""

    id: str
    title: str
    priority: int
    status: str
    outcome: str | None
    latitude: float | None
    longitude: float | None
    place: str = Field(title="Place", description="The camera's name and district, else empty.")
    navigate: str | None = Field(
        title="Navigate", description="A geo: URI that opens the phone's navigation app at the place."
    )
    photos: list[str] = Field(description="Media refs of the alerts' crops and frames (/media/{ref}).")
    dispatched_at: datetime
    arrived_at: datetime | None
    distance_m: float | None = Field(
        description="From the unit's last position: along the route's roads, else the straight line."
    )
    eta_s: float | None = Field(
        description="Along the route's roads at their speeds, else at the average urban speed."
    )
    route: FieldRoute | None = Field(
        default=None, description="The way from the unit's last position; none while either is unknown."
    )


class UnitPosition(BaseModel):
    """Where the server last knew the unit to be: what the phone (or the car's tracker) last sent."""

    latitude: float
    longitude: float
    at: datetime | None = Field(description="When that position was taken (or the unit placed at its base).")


class Assignment(BaseModel):
    """The officer's shift, its unit and the incident the unit is sent to (each empty if none)."""

    shift: ShiftOut | None
    unit_id: str | None
    callsign: str | None
    unit_status: str | None
    position: UnitPosition | None = Field(
        default=None, description="The unit's last position: the map's 'you' before this phone has a fix."
    )
    incident: FieldIncident | None


class _Update(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(
        pattern=KEY_PATTERN,
        title="Key",
        description="Made on the phone, once per update: a resend is a no-op.",
    )
    at: datetime = Field(title="Time", description="When it happened on the phone (not when it was sent).")


class PositionUpdate(_Update):
    """A position fix from the phone's GPS."""

    kind: Literal["position"]
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class ArrivedUpdate(_Update):
    """The unit is on the scene of the incident."""

    kind: Literal["arrived"]
    incident_id: str = Field(min_length=1, max_length=32)


class OutcomeUpdate(_Update):
    """How it ended on the scene: it closes the incident."""

    kind: Literal["outcome"]
    incident_id: str = Field(min_length=1, max_length=32)
    outcome: FieldOutcome
    note: str = Field(default="", max_length=2000)


Update = Annotated[PositionUpdate | ArrivedUpdate | OutcomeUpdate, Field(discriminator="kind")]


class UpdatesIn(BaseModel):
    """Updates in the order they happened on the phone (a queue sent when the connection returns)."""

    model_config = ConfigDict(extra="forbid")

    updates: list[Update] = Field(min_length=1, max_length=200)


class UpdateResult(BaseModel):
    """What became of one update: applied, a duplicate of one applied before, ignored (an older fix), or
    rejected (with why: the phone drops it rather than resend what can never apply)."""

    key: str
    status: Literal["applied", "duplicate", "ignored", "rejected"]
    detail: str = ""


class UpdatesOut(BaseModel):
    results: list[UpdateResult]
