"""ANPR tables and schemas: stored plate reads, hot lists, sensitive areas and their visits, settings."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.clock import utcnow
from safecity.core.db import Base
from safecity.core.patch import Patch

ListName = Literal["stolen", "wanted", "bolo"]
LIST_NAMES: tuple[str, ...] = ("stolen", "wanted", "bolo")
MatchMode = Literal["auto", "exact", "partial", "wildcard"]

_PLATE_RE = re.compile(r"^[A-Z0-9]{2,12}$")


def normalise_plate(text: str) -> str:
    """Returns plate text in the stored form: capitals, no spaces, dashes or dots."""
    return re.sub(r"[\s\-.·_/]+", "", text).upper()


def checked_plate(text: str) -> str:
    """Returns the normalised plate, or raises ValueError when it cannot be a plate."""
    plate = normalise_plate(text)
    if not _PLATE_RE.match(plate):
        raise ValueError(
            f"{text!r} is not a plate: use 2-12 letters and digits (spaces and dashes are dropped)"
        )
    return plate


class PlateReadRow(Base):
    """One plate read by one camera, as stored for search, hot-list checks and clone detection."""

    __tablename__ = "plate_reads"
    __table_args__ = (
        Index("ix_plate_reads_plate_at", "plate", "at"),
        Index("ix_plate_reads_camera_at", "camera_id", "at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_key: Mapped[str] = mapped_column(String(200), unique=True)
    plate: Mapped[str] = mapped_column(String(16))
    region: Mapped[str] = mapped_column(String(8), default="pk")
    confidence: Mapped[float]
    camera_id: Mapped[str | None] = mapped_column(String(64))
    # The camera's position when it read the plate: evidence must not move if the camera later does.
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    at: Mapped[datetime] = mapped_column(index=True)
    crop_ref: Mapped[str | None] = mapped_column(String(200))
    frame_ref: Mapped[str | None] = mapped_column(String(200))
    box: Mapped[list[int] | None] = mapped_column(JSON)
    direction: Mapped[str | None] = mapped_column(String(32))
    track_id: Mapped[int | None]
    speed_kmh: Mapped[float | None]
    vehicle_class: Mapped[str | None] = mapped_column(String(32))
    stored_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlateSeen(Base):
    """Every distinct plate that has stored reads, with its newest sighting: the dictionary of plates.

    A partial search ("4521" anywhere in the plate) cannot use an index on the reads; it scans this far
    smaller table for the plates that match, then takes their reads through the (plate, at) index. A
    plate leaves the dictionary when retention purges its last read.
    """

    __tablename__ = "plates_seen"

    plate: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_at: Mapped[datetime] = mapped_column(index=True)
    reads: Mapped[int] = mapped_column(default=0)


class HotlistEntry(Base):
    """A vehicle the police look for: on the stolen, wanted or BOLO list, with who listed it and why."""

    __tablename__ = "hotlist_entries"
    __table_args__ = (UniqueConstraint("plate", "list_name", name="uq_hotlist_entries_plate_list"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    plate: Mapped[str] = mapped_column(String(16), index=True)
    list_name: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    vehicle: Mapped[str] = mapped_column(String(200), default="")
    reference: Mapped[str] = mapped_column(String(100), default="")
    expires_at: Mapped[datetime | None]
    added_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class HotlistRevision(Base):
    """A token changed by every hot-list change, so each process knows when to rebuild its match index."""

    __tablename__ = "hotlist_revision"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32))


class SensitiveArea(Base):
    """A named group of cameras around a place that must know which vehicles come and go."""

    __tablename__ = "sensitive_areas"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    mode: Mapped[str] = mapped_column(String(8), default="listed")
    camera_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    exit_camera_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    exit_direction: Mapped[str | None] = mapped_column(String(32))
    exit_after_minutes: Mapped[float] = mapped_column(default=30.0)
    plates: Mapped[list[str]] = mapped_column(JSON, default=list)
    alert_on_entry: Mapped[bool] = mapped_column(default=True)
    alert_on_exit: Mapped[bool] = mapped_column(default=False)
    alert_unlisted: Mapped[bool] = mapped_column(default=False)
    alert_priority: Mapped[int] = mapped_column(default=2)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AreaVisit(Base):
    """One vehicle's stay in a sensitive area: when it entered, where it was last read, when it left."""

    __tablename__ = "area_visits"
    __table_args__ = (Index("ix_area_visits_area_plate_open", "area_id", "plate", "exited_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    area_id: Mapped[str] = mapped_column(String(32), index=True)
    plate: Mapped[str] = mapped_column(String(16), index=True)
    listed: Mapped[bool] = mapped_column(default=False)
    lists: Mapped[list[str]] = mapped_column(JSON, default=list)
    entered_at: Mapped[datetime | None]
    entry_camera_id: Mapped[str | None] = mapped_column(String(64))
    entry_read_id: Mapped[str | None] = mapped_column(String(32))
    last_seen_at: Mapped[datetime] = mapped_column(index=True)
    last_camera_id: Mapped[str | None] = mapped_column(String(64))
    exited_at: Mapped[datetime | None]
    exit_reason: Mapped[str | None] = mapped_column(String(16))
    exit_read_id: Mapped[str | None] = mapped_column(String(32))


class AnprConfigRow(Base):
    """The installation's ANPR settings (one row; defaults apply until someone changes them)."""

    __tablename__ = "anpr_config"

    id: Mapped[int] = mapped_column(primary_key=True)
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AnprConfig(BaseModel):
    """How hot-list matching, alert de-duplication and cloned-plate detection behave."""

    model_config = ConfigDict(extra="forbid")

    max_confusions: int = Field(
        default=1,
        ge=0,
        le=3,
        title="OCR confusions",
        description="A read this many look-alike characters (O/0, I/1, B/8, S/5…) away from a listed plate "
        "still matches; 0 matches exact plates only.",
    )
    edit_distance: bool = Field(
        default=False,
        title="Edit distance 1",
        description="Also match a read one character added, dropped or changed away from a listed plate.",
    )
    hotlist_min_confidence: float = Field(
        default=0.5,
        ge=0,
        le=1,
        title="Hot-list confidence",
        description="Reads below this never raise a hot-list alert.",
    )
    hotlist_dedup_minutes: float = Field(
        default=10,
        gt=0,
        title="Hot-list de-duplication",
        description="Reads of one listed vehicle at one camera within this time fold into the open alert.",
    )
    clone_max_speed_kmh: float = Field(
        default=150,
        gt=0,
        title="Cloned-plate speed",
        description="Two reads of one plate implying a faster journey than this raise a cloned-plate alert.",
    )
    clone_min_distance_m: float = Field(
        default=1000,
        ge=0,
        title="Cloned-plate distance",
        description="Cameras closer than this never raise a cloned-plate alert (GPS and clock noise).",
    )
    clone_window_hours: float = Field(
        default=6,
        gt=0,
        le=72,
        title="Cloned-plate window",
        description="How far apart in time reads are compared.",
    )
    clone_min_confidence: float = Field(
        default=0.8,
        ge=0,
        le=1,
        title="Cloned-plate confidence",
        description="Both reads must be at least this confident: a misread must not accuse a citizen.",
    )


class PlateReadOut(BaseModel):
    """A stored plate read."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    plate: str
    region: str
    confidence: float
    camera_id: str | None
    latitude: float | None
    longitude: float | None
    at: datetime
    crop_ref: str | None
    frame_ref: str | None
    box: list[int] | None
    direction: str | None
    speed_kmh: float | None
    vehicle_class: str | None


class SearchQuery(BaseModel):
    """An investigator's plate-history search: what, where, when, and why."""

    model_config = ConfigDict(extra="forbid")

    plate: str = Field(
        default="",
        max_length=20,
        title="Plate",
        description="Plate text; with match 'wildcard', ? stands for one character and * for any run.",
    )
    match: MatchMode = Field(
        default="auto",
        title="Match",
        description="exact, partial (contains), wildcard, or auto (wildcard when ? or * appear, else exact).",
    )
    camera_id: str | None = Field(
        default=None, max_length=64, title="Camera", description="Only this camera."
    )
    since: datetime | None = Field(default=None, title="From", description="Reads at or after this time.")
    until: datetime | None = Field(default=None, title="To", description="Reads before this time.")
    reason: str = Field(
        min_length=3,
        max_length=300,
        title="Reason",
        description="Why you search (case number, request): audited.",
    )
    limit: int = Field(
        default=500, ge=1, le=5000, title="Limit", description="Most reads returned, newest first."
    )

    @field_validator("plate")
    @classmethod
    def _plate_chars(cls, value: str) -> str:
        text = normalise_plate(value)
        if text and not re.fullmatch(r"[A-Z0-9?*]+", text):
            raise ValueError("use letters, digits, ? (one character) and * (any run) only")
        return text


class CameraSighting(BaseModel):
    """Where a search's reads were taken: one camera with its position and how often it read them."""

    camera_id: str | None
    name: str | None
    latitude: float | None
    longitude: float | None
    reads: int
    first_at: datetime
    last_at: datetime


class SearchResult(BaseModel):
    """The reads a search found (newest first), and the cameras that took them, for a map and a timeline."""

    plate: str
    match: str
    truncated: bool = Field(description="True when more reads matched than the limit returned.")
    reads: list[PlateReadOut]
    cameras: list[CameraSighting]


class HotlistEntryIn(BaseModel):
    """A vehicle to put on a hot list."""

    model_config = ConfigDict(extra="forbid")

    plate: str = Field(
        min_length=2, max_length=20, title="Plate", description="Plate; spaces and dashes are dropped."
    )
    list_name: ListName = Field(title="List", description="stolen, wanted or bolo (be on the look-out).")
    reason: str = Field(
        min_length=3, max_length=500, title="Reason", description="Why the vehicle is listed."
    )
    vehicle: str = Field(default="", max_length=200, title="Vehicle", description="Make, model, colour.")
    reference: str = Field(default="", max_length=100, title="Reference", description="FIR or case number.")
    expires_at: datetime | None = Field(
        default=None, title="Expires", description="When the entry lapses, if ever."
    )

    @field_validator("plate")
    @classmethod
    def _plate(cls, value: str) -> str:
        return checked_plate(value)


class HotlistEntryPatch(Patch):
    """Changes to a hot-list entry; fields left out stay, null empties vehicle, reference or expiry.

    `why` is required and audited.
    """

    clearable: ClassVar[frozenset[str]] = frozenset({"vehicle", "reference", "expires_at"})

    why: str = Field(
        min_length=3, max_length=300, title="Why", description="Why the entry changes (audited)."
    )
    list_name: ListName | None = None
    reason: str | None = Field(default=None, min_length=3, max_length=500)
    vehicle: str | None = Field(default=None, max_length=200)
    reference: str | None = Field(default=None, max_length=100)
    expires_at: datetime | None = None


class HotlistEntryOut(BaseModel):
    """A hot-list entry with who listed it and when."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    plate: str
    list_name: str
    reason: str
    vehicle: str
    reference: str
    expires_at: datetime | None
    added_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime


class HotlistMatchOut(BaseModel):
    """A hot-list entry a plate matches, and how closely."""

    entry: HotlistEntryOut
    kind: Literal["exact", "confusion", "edit"] = Field(description="exact, confusion (look-alikes) or edit.")
    distance: int = Field(description="Characters that differ (0 for exact).")


class HotlistImportReport(BaseModel):
    """What a CSV import did; with any error, nothing was written."""

    created: int = 0
    updated: int = 0
    errors: list[str] = Field(default_factory=list)


class AreaIn(BaseModel):
    """A sensitive area: its cameras and which vehicles it logs and alerts on."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, title="Name", description="Unique name, e.g. 'Red Zone'.")
    description: str = Field(default="", max_length=500, title="Description")
    mode: Literal["listed", "all"] = Field(
        default="listed",
        title="Mode",
        description="listed: log hot-listed and area-listed vehicles; all: log every vehicle read.",
    )
    camera_ids: list[str] = Field(
        min_length=1, title="Cameras", description="Cameras whose reads are in the area."
    )
    exit_camera_ids: list[str] = Field(
        default_factory=list,
        title="Exit cameras",
        description="Cameras at the way out: a read there is an exit.",
    )
    exit_direction: str | None = Field(
        default=None, max_length=32, title="Exit direction", description="A read moving this way is an exit."
    )
    exit_after_minutes: float = Field(
        default=30, gt=0, le=1440, title="Exit after", description="A vehicle not read this long has left."
    )
    plates: list[str] = Field(
        default_factory=list, title="Area list", description="Vehicles listed for this area."
    )
    alert_on_entry: bool = Field(
        default=True, title="Alert on entry", description="Alert when a listed one enters."
    )
    alert_on_exit: bool = Field(
        default=False, title="Alert on exit", description="Alert when a listed one leaves."
    )
    alert_unlisted: bool = Field(
        default=False,
        title="Alert on every vehicle",
        description="In 'all' mode, alert on unlisted vehicles too.",
    )
    alert_priority: int = Field(default=2, ge=2, le=3, title="Alert priority", description="2 (high) or 3.")

    @field_validator("plates")
    @classmethod
    def _plates(cls, value: list[str]) -> list[str]:
        return sorted({checked_plate(p) for p in value})


class AreaOut(AreaIn):
    """A sensitive area as stored."""

    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: str
    created_by: str
    created_at: datetime
    updated_at: datetime


class AreaVisitOut(BaseModel):
    """One vehicle's entry into and exit from a sensitive area."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    area_id: str
    plate: str
    listed: bool
    lists: list[str]
    entered_at: datetime | None
    entry_camera_id: str | None
    last_seen_at: datetime
    last_camera_id: str | None
    exited_at: datetime | None
    exit_reason: str | None
