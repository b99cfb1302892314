"""Recordings: the segment index, retention policies, storage volumes, holds, event clips, recorder states."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import BigInteger, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.clock import utcnow
from safecity.core.db import MAX_BIGINT, Base

DEFAULT_VOLUME = "default"
DEFAULT_CONTINUOUS_DAYS = 30
DEFAULT_EVENT_DAYS = 90


class RecordingSegment(Base):
    """One closed segment file of one camera: a span of remuxed packets, indexed by wall-clock time."""

    __tablename__ = "recording_segments"
    __table_args__ = (Index("ix_recording_segments_camera_start", "camera_id", "start"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    volume: Mapped[str] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(String(500), unique=True)
    start: Mapped[datetime] = mapped_column(index=True)
    end: Mapped[datetime]
    bytes: Mapped[int] = mapped_column(BigInteger)
    codec: Mapped[str] = mapped_column(String(32))
    width: Mapped[int]
    height: Mapped[int]
    packets: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecordingHold(Base):
    """A span of one camera's footage that matters: an event mark (kept for the event retention) or a
    protection (kept until released, e.g. while an alert, challan or incident is open)."""

    __tablename__ = "recording_holds"
    __table_args__ = (
        UniqueConstraint("kind", "ref", "camera_id", name="uq_recording_holds_kind_ref_camera"),
        Index("ix_recording_holds_camera_start", "camera_id", "start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "event" or "protect"
    camera_id: Mapped[str] = mapped_column(String(64))
    start: Mapped[datetime]
    end: Mapped[datetime]
    ref: Mapped[str] = mapped_column(String(200), index=True)
    reason: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_at: Mapped[datetime | None]


class RecordingPolicy(Base):
    """Retention in days for one scope: 'default', 'camera:<id>', 'district:<name>' or 'kind:<type>'."""

    __tablename__ = "recording_policies"

    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    continuous_days: Mapped[int]
    event_days: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RecordingVolume(Base):
    """A disk or mount the recorders write to, with its storage budget."""

    __tablename__ = "recording_volumes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(String(500))
    budget_bytes: Mapped[int | None] = mapped_column(BigInteger)
    reserve_bytes: Mapped[int] = mapped_column(BigInteger, default=1 << 30)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RecordingClip(Base):
    """The clip of one camera around an alert, violation or incident: pending until its footage exists."""

    __tablename__ = "recording_clips"
    __table_args__ = (UniqueConstraint("ref", "camera_id", name="uq_recording_clips_ref_camera"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ref: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    camera_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    start: Mapped[datetime]
    end: Mapped[datetime]
    due_at: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    media_ref: Mapped[str | None] = mapped_column(String(120))
    covered_seconds: Mapped[float] = mapped_column(default=0.0)
    detail: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]


class RecorderStatus(Base):
    """What a camera's recorder is doing now: recording, stopped, disk_full, volume_missing or error."""

    __tablename__ = "recorder_status"

    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(String(500), default="")
    since: Mapped[datetime] = mapped_column(default=utcnow)


# --- schemas -----------------------------------------------------------------------------------------


class SegmentOut(BaseModel):
    """One indexed segment."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(title="Segment", description="Segment id.")
    camera_id: str = Field(title="Camera", description="Camera recorded.")
    volume: str = Field(title="Volume", description="Storage volume holding the file.")
    start: datetime = Field(title="Start", description="Wall-clock time of the first packet.")
    end: datetime = Field(title="End", description="Wall-clock time the last packet ends.")
    bytes: int = Field(title="Size", description="File size in bytes.")
    codec: str = Field(title="Codec", description="Video codec (h264, hevc…).")
    width: int = Field(title="Width", description="Picture width in pixels.")
    height: int = Field(title="Height", description="Picture height in pixels.")


class Span(BaseModel):
    """A time span."""

    start: datetime = Field(title="Start", description="Beginning of the span.")
    end: datetime = Field(title="End", description="End of the span.")


class TimelineEvent(BaseModel):
    """Something that happened on a camera, shown on the playback timeline."""

    start: datetime = Field(title="Start", description="Beginning of the event window.")
    end: datetime = Field(title="End", description="End of the event window.")
    kind: str = Field(title="Kind", description="event (alert, violation, fault) or protect.")
    ref: str = Field(title="Reference", description="What the event is, e.g. alert:<id>.")
    reason: str = Field(title="Reason", description="Plain words for the operator.")


class TimelineOut(BaseModel):
    """A camera's recorded spans, gaps and events between two moments."""

    camera_id: str = Field(title="Camera", description="Camera shown.")
    start: datetime = Field(title="From", description="Start of the window asked for.")
    end: datetime = Field(title="To", description="End of the window asked for.")
    recorded: list[Span] = Field(
        title="Recorded", description="Spans with footage (touching segments merged)."
    )
    gaps: list[Span] = Field(title="Gaps", description="Spans of the window without footage.")
    events: list[TimelineEvent] = Field(
        title="Events", description="Event marks and protections in the window."
    )
    oldest: datetime | None = Field(title="Oldest", description="Oldest footage of this camera still kept.")
    recorder: str | None = Field(title="Recorder", description="The recorder's current state, if known.")


class PolicyIn(BaseModel):
    """Retention for a scope."""

    model_config = ConfigDict(extra="forbid")

    scope: str = Field(
        max_length=200,
        pattern=r"^(default|camera:.+|district:.+|kind:.+)$",
        title="Scope",
        description="'default', 'camera:<id>', 'district:<name>' (a camera group) or 'kind:<camera type>'.",
    )
    continuous_days: int = Field(
        ge=1, le=3650, title="Continuous days", description="Days continuous footage is kept."
    )
    event_days: int = Field(
        ge=1, le=3650, title="Event days", description="Days footage around events is kept."
    )


class PolicyOut(PolicyIn):
    """A stored retention policy."""

    model_config = ConfigDict(from_attributes=True)


class VolumeIn(BaseModel):
    """A storage volume and its budget."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", title="Name", description="Volume name."
    )
    path: str = Field(
        min_length=1, max_length=500, title="Path", description="Folder the recorders write to."
    )
    budget_bytes: int | None = Field(
        default=None,
        gt=0,
        le=MAX_BIGINT,
        title="Budget",
        description="Most bytes of footage kept here; empty: the disk's size.",
    )
    reserve_bytes: int = Field(
        default=1 << 30,
        ge=0,
        le=MAX_BIGINT,
        title="Reserve",
        description="Free space kept on the disk; below it, oldest footage goes.",
    )

    @field_validator("path")
    @classmethod
    def _a_path_the_disk_accepts(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("a path cannot hold a NUL character")
        longest = max(len(part.encode()) for part in value.split("/"))
        if longest > 255:
            raise ValueError(f"a folder name in the path is {longest} bytes; a disk allows at most 255")
        return value


class VolumeOut(VolumeIn):
    """A volume with its current use."""

    used_bytes: int = Field(title="Used", description="Bytes of indexed footage on this volume.")
    free_bytes: int | None = Field(
        title="Free", description="Free bytes on the disk; empty when it is missing."
    )
    state: str = Field(title="State", description="ok, near_full or missing.")

    @field_validator("path")
    @classmethod
    def _a_path_the_disk_accepts(cls, value: str) -> str:
        return value  # a volume stored before paths were checked is shown as it is (and as missing)


class ClipOut(BaseModel):
    """An event clip."""

    model_config = ConfigDict(from_attributes=True)

    ref: str = Field(
        title="Reference", description="What the clip is evidence of (alert id, violation key…)."
    )
    kind: str = Field(title="Kind", description="alert, violation or incident.")
    camera_id: str = Field(title="Camera", description="Camera the clip is from.")
    at: datetime = Field(title="Moment", description="When the event happened.")
    start: datetime = Field(title="Start", description="Clip start.")
    end: datetime = Field(title="End", description="Clip end.")
    status: str = Field(
        title="Status",
        description="pending, done, no_footage, not_recorded (the camera does not record) or failed.",
    )
    media_ref: str | None = Field(
        title="Media", description="Media-store ref of the MP4 (load /media/<ref>)."
    )
    covered_seconds: float = Field(title="Covered", description="Seconds of the window that had footage.")
    detail: str = Field(title="Detail", description="Why a clip is missing or partial.")


class ExportIn(BaseModel):
    """A request to export footage."""

    model_config = ConfigDict(extra="forbid")

    cameras: list[str] = Field(
        min_length=1, max_length=32, title="Cameras", description="Camera ids to export."
    )
    start: datetime = Field(title="From", description="Start of the range (ISO 8601, with zone).")
    end: datetime = Field(title="To", description="End of the range.")
    reason: str = Field(
        min_length=3, max_length=500, title="Reason", description="Why: case number, request…"
    )

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2024-05-01T21:40:00+05:00 or …Z")
        return value


class ExportFile(BaseModel):
    """One file of an export."""

    name: str = Field(title="File", description="File name in the export folder.")
    camera_id: str = Field(title="Camera", description="Camera recorded.")
    start: datetime = Field(title="Start", description="Wall-clock time of the first frame.")
    end: datetime = Field(title="End", description="Wall-clock time the last frame ends.")
    bytes: int = Field(title="Size", description="Bytes.")
    sha256: str = Field(title="SHA-256", description="Hash of the file.")
    media_ref: str | None = Field(default=None, title="Media", description="Media-store ref (API exports).")


class ExportManifest(BaseModel):
    """What an export holds, who made it and why: the record a court checks the files against."""

    id: str = Field(title="Export", description="Export id.")
    exported_by: str = Field(title="Exported by", description="User who exported.")
    reason: str = Field(title="Reason", description="Why it was exported.")
    exported_at: datetime = Field(title="Exported at", description="When.")
    start: datetime = Field(title="From", description="Start of the range asked for.")
    end: datetime = Field(title="To", description="End of the range asked for.")
    cameras: list[str] = Field(title="Cameras", description="Cameras asked for.")
    files: list[ExportFile] = Field(title="Files", description="Every file with its hash.")
    gaps: dict[str, list[Span]] = Field(
        title="Gaps", description="Per camera, spans of the range without footage."
    )
    software: str = Field(title="Software", description="SafeCity version that wrote the export.")
    manifest_ref: str | None = Field(
        default=None, title="Manifest", description="Media ref of manifest.json."
    )


class SearchHit(BaseModel):
    """A camera that has footage in the place and time searched."""

    camera_id: str = Field(title="Camera", description="Camera id.")
    name: str = Field(title="Name", description="Camera name.")
    district: str = Field(title="District", description="District.")
    latitude: float = Field(title="Latitude", description="WGS84 latitude.")
    longitude: float = Field(title="Longitude", description="WGS84 longitude.")
    recorded: list[Span] = Field(title="Recorded", description="Recorded spans within the window.")
    recorded_seconds: float = Field(title="Seconds", description="Seconds of footage in the window.")


class RecorderStateOut(BaseModel):
    """A recorder's state."""

    model_config = ConfigDict(from_attributes=True)

    camera_id: str = Field(title="Camera", description="Camera.")
    state: str = Field(title="State", description="recording, stopped, disk_full, volume_missing or error.")
    detail: str = Field(title="Detail", description="What is wrong, in plain words.")
    since: datetime = Field(title="Since", description="When this state began.")


class RetentionReport(BaseModel):
    """What one retention pass deleted, and why."""

    deleted_segments: int = Field(default=0, title="Deleted", description="Segments deleted.")
    deleted_bytes: int = Field(default=0, title="Bytes freed", description="Bytes freed.")
    by_reason: dict[str, int] = Field(
        default_factory=dict, title="By reason", description="Segments per reason."
    )
    protected_kept: int = Field(
        default=0, title="Protected", description="Segments past retention kept by a hold."
    )
    volumes: dict[str, str] = Field(
        default_factory=dict, title="Volumes", description="State of each volume."
    )


class ProtectIn(BaseModel):
    """Protect a camera's footage until released."""

    model_config = ConfigDict(extra="forbid")

    camera_id: str = Field(min_length=1, max_length=64, title="Camera", description="Camera id.")
    start: datetime = Field(title="From", description="Start of the span.")
    end: datetime = Field(title="To", description="End of the span.")
    reason: str = Field(min_length=3, max_length=300, title="Reason", description="Why it must be kept.")
    ref: str = Field(
        min_length=1, max_length=200, title="Reference", description="What holds it (case:<n>…)."
    )
