"""Body-worn camera evidence: items (one original recording each), uploads, custody links, shares, cases.

An item is one original file, stored once in the media store under its SHA-256 and never changed. A
derived item (a redacted copy) is a new item whose `derived_from` and `operations` say which
original it was made from and how. Everything done to an item is an entry of the audit chain;
`bodyworn_custody` only indexes those entries by item.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.clock import utcnow
from safecity.core.db import Base
from safecity.recordings.models import Span

ACCESS_CLASSES = ("normal", "restricted", "confidential")
ITEM_STATES = ("active", "deleted", "purged")
CASE_ITEM_KINDS = ("bodyworn", "clip", "plate_read", "face_match", "challan", "violation")
AccessClass = Literal["normal", "restricted", "confidential"]
Big = BigInteger().with_variant(Integer, "sqlite")


class BodyWornItem(Base):
    """One original recording from an officer's camera, as it arrived, with what is known about it."""

    __tablename__ = "bodyworn_items"
    __table_args__ = (Index("ix_bodyworn_items_device_source", "device", "source"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    ref: Mapped[str] = mapped_column(String(120))
    bytes: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(String(300))
    officer: Mapped[str] = mapped_column(String(100), index=True)
    device: Mapped[str] = mapped_column(String(100))
    uploaded_by: Mapped[str] = mapped_column(String(100), index=True)
    # Where it came from: the docking folder's relative path, or "upload:<id>".
    source: Mapped[str] = mapped_column(String(500))
    # The source file's size and modification time, so a re-run of an import skips it without hashing.
    source_size: Mapped[int | None] = mapped_column(BigInteger)
    source_mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime | None] = mapped_column(index=True)
    # Where the start time came from: "container", "gps" or "" (unknown).
    recorded_at_source: Mapped[str] = mapped_column(String(16), default="")
    duration_s: Mapped[float | None]
    width: Mapped[int | None]
    height: Mapped[int | None]
    codec: Mapped[str | None] = mapped_column(String(32))
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    incident_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # The GPS track as [[iso time, lat, lon], ...]; the sidecar's own bytes are kept at `track_ref`.
    track: Mapped[list[list[Any]]] = mapped_column(JSON, default=list)
    track_ref: Mapped[str | None] = mapped_column(String(120))
    track_error: Mapped[str | None] = mapped_column(String(500))
    access_class: Mapped[str] = mapped_column(String(16), default="normal")
    do_not_disclose: Mapped[bool] = mapped_column(default=False)
    # Who may open a confidential item (user names); empty for other classes.
    allowed_users: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Kept at least until then whatever its categories say (a retention change, audited).
    retain_until: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    deleted_at: Mapped[datetime | None]
    deleted_by: Mapped[str | None] = mapped_column(String(100))
    delete_reason: Mapped[str | None] = mapped_column(String(500))
    purge_after: Mapped[datetime | None] = mapped_column(index=True)
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    verified_at: Mapped[datetime | None] = mapped_column(index=True)
    verified_ok: Mapped[bool | None]
    # Provenance of a derived item (a redacted copy): the original and the operations applied, by whom.
    derived_from: Mapped[str | None] = mapped_column(String(32), index=True)
    operations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class BodyWornRedaction(Base):
    """A redaction asked for: what to hide in which item, where its job stands, and the item it made."""

    __tablename__ = "bodyworn_redactions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(32), index=True)
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The request as validated (RedactionIn): faces, plates, boxes, mutes, reason.
    request: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # "queued", "running", "done" (an item made), "failed" (nothing registered; `error` says why).
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    frames_done: Mapped[int] = mapped_column(default=0)
    frames_total: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    result_item_id: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(String(500))


class BodyWornCustody(Base):
    """An index of the audit chain by item: entry `seq` of the audit log concerns item `item_id`."""

    __tablename__ = "bodyworn_custody"

    item_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Big, primary_key=True)


class BodyWornUpload(Base):
    """A resumable upload in progress: its length and metadata; the bytes so far are in a part file."""

    __tablename__ = "bodyworn_uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_by: Mapped[str] = mapped_column(String(100), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    length: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(String(300))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # "open" (taking chunks), "done" (an item), "refused" (not video, digest mismatch), "abandoned".
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    item_id: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(String(500))


class BodyWornShare(Base):
    """An expiring link to one item for one named recipient (a prosecutor, defence counsel)."""

    __tablename__ = "bodyworn_shares"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(32), index=True)
    recipient: Mapped[str] = mapped_column(String(200))
    recipient_role: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(16))
    # SHA-256 of the link's token and of the access code given to the recipient separately.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    # The browser the link was first opened in (hash of its binding cookie): the only one it opens in.
    bound_to: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(String(500))
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(100))
    opened: Mapped[int] = mapped_column(default=0)
    failed_codes: Mapped[int] = mapped_column(default=0)
    # The recipient's watermarked copy (download shares), made once.
    copy_ref: Mapped[str | None] = mapped_column(String(120))
    copy_sha256: Mapped[str | None] = mapped_column(String(64))


class EvidenceCase(Base):
    """A case: the evidence of one matter (body-worn items, clips, plate reads, …), its officers, its FIR."""

    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    fir_number: Mapped[str | None] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    officers: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(100))
    close_reason: Mapped[str | None] = mapped_column(String(500))


class CaseItem(Base):
    """One piece of evidence in a case, by kind and the id of its row in its own domain."""

    __tablename__ = "case_items"

    case_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    ref_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    added_by: Mapped[str] = mapped_column(String(100))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str] = mapped_column(String(500), default="")


# --- schemas ---------------------------------------------------------------------------------------


class ItemMeta(BaseModel):
    """What the person or dock that brings a recording says about it."""

    model_config = ConfigDict(extra="forbid")

    officer: str = Field(min_length=1, max_length=100, title="Officer", description="Who wore the camera.")
    device: str = Field(min_length=1, max_length=100, title="Device", description="The camera's id.")
    categories: list[str] = Field(
        default_factory=list,
        max_length=10,
        title="Categories",
        description="Retention categories (routine, traffic_stop, arrest, …); none: uncategorised.",
    )
    case: str | None = Field(
        default=None, max_length=100, title="Case", description="A case number to add the item to."
    )
    incident_id: str | None = Field(
        default=None, max_length=64, title="Incident", description="The dispatch incident it belongs to."
    )


class UploadIn(ItemMeta):
    """A resumable upload to open: the file's length and name, the item's metadata, optionally its digest."""

    length: int = Field(gt=0, le=2**40, title="Length", description="The file's size in bytes.")
    filename: str = Field(min_length=1, max_length=300, title="File name")
    sha256: str | None = Field(
        default=None,
        pattern="^[0-9a-fA-F]{64}$",
        title="SHA-256",
        description="The client's digest of the file: the upload is refused if what arrived differs.",
    )


class UploadOut(BaseModel):
    """Where an upload stands."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    length: int
    offset: int
    filename: str
    status: str
    item_id: str | None
    error: str | None
    url: str


class ItemOut(BaseModel):
    """A body-worn item as lists and pages show it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    sha256: str
    bytes: int
    filename: str
    officer: str
    device: str
    uploaded_by: str
    source: str
    recorded_at: datetime | None
    recorded_at_source: str
    duration_s: float | None
    width: int | None
    height: int | None
    codec: str | None
    categories: list[str]
    incident_id: str | None
    track_points: int = 0
    track_error: str | None
    access_class: str
    do_not_disclose: bool
    retain_until: datetime | None
    status: str
    deleted_at: datetime | None
    purge_after: datetime | None
    ingested_at: datetime
    verified_at: datetime | None
    verified_ok: bool | None
    derived_from: str | None
    delete_due: datetime | None = Field(None, description="When retention would delete it (None: never now).")
    cases: list[str] = Field(default_factory=list, description="Numbers of the cases it is in.")


class ItemDetail(ItemOut):
    """One item with its track, holds and shares."""

    track: list[list[Any]] = Field(default_factory=list)
    allowed_users: list[str] = Field(default_factory=list)
    operations: list[dict[str, Any]] = Field(default_factory=list)
    derived: list[dict[str, Any]] = Field(
        default_factory=list, description="Items made from this one (redacted copies): id, digest, when, by."
    )
    holds: list[dict[str, Any]] = Field(default_factory=list)
    shares: list[ShareOut] = Field(default_factory=list)


class CustodyEntry(BaseModel):
    """One thing done to an item: the audit chain's entry, as the custody log shows it."""

    seq: int
    at: datetime
    actor: str
    action: str
    reason: str
    detail: dict[str, Any]
    hash: str


class ImportResult(BaseModel):
    """What one file of an import became."""

    path: str
    outcome: Literal["ingested", "skipped", "duplicate", "refused", "failed"]
    item_id: str | None = None
    sha256: str | None = None
    bytes: int = 0
    message: str = ""


class ImportReport(BaseModel):
    """What an import of a docking folder did."""

    files: int = 0
    ingested: int = 0
    skipped: int = 0
    duplicates: int = 0
    refused: int = 0
    failed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    warnings: list[str] = Field(default_factory=list)
    results: list[ImportResult] = Field(default_factory=list)


class ReasonIn(BaseModel):
    """Why something is done (custody log)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500, title="Reason", description="Why (custody log).")


class ClassifyIn(ReasonIn):
    """New categories, access class, do-not-disclose flag or minimum retention of an item."""

    categories: list[str] | None = Field(default=None, max_length=10)
    access_class: AccessClass | None = None
    allowed_users: list[str] | None = Field(default=None, max_length=50)
    do_not_disclose: bool | None = None
    retain_until: datetime | None = None


class HoldItemIn(ReasonIn):
    """A legal hold on one item."""

    reference: str = Field(min_length=3, max_length=100, description="Court order or request number.")


class RedactBox(BaseModel):
    """A box a person drew over something to hide, from T0 to T1, following its object by default."""

    model_config = ConfigDict(extra="forbid")

    t0: float = Field(ge=0, title="From (s)", description="Seconds from the recording's start.")
    t1: float = Field(ge=0, title="To (s)", description="Seconds from the recording's start; not before t0.")
    x: float = Field(ge=0, title="Left", description="Pixels from the frame's left edge at t0.")
    y: float = Field(ge=0, title="Top", description="Pixels from the frame's top edge at t0.")
    w: float = Field(gt=0, title="Width", description="Pixels.")
    h: float = Field(gt=0, title="Height", description="Pixels.")
    follow: bool = Field(
        default=True,
        title="Follow",
        description="Carry the box with its object (a tracker), or keep it still.",
    )
    shown: bool = Field(
        default=False,
        title="As shown",
        description="x, y, w and h are pixels of the picture as a player shows it (turned or mirrored by "
        "the recording's display matrix), as the editor draws them; otherwise of the picture as stored.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> RedactBox:
        if self.t1 < self.t0:
            raise ValueError(f"a box ends (t1={self.t1:g} s) before it starts (t0={self.t0:g} s): swap them")
        return self


class MuteRange(BaseModel):
    """A stretch of the sound to replace with silence."""

    model_config = ConfigDict(extra="forbid")

    t0: float = Field(ge=0, title="From (s)", description="Seconds from the recording's start.")
    t1: float = Field(ge=0, title="To (s)", description="Seconds from the recording's start; after t0.")

    @model_validator(mode="after")
    def _ordered(self) -> MuteRange:
        if self.t1 <= self.t0:
            raise ValueError(f"a mute range ends (t1={self.t1:g} s) before it starts (t0={self.t0:g} s)")
        return self


class RedactionIn(ReasonIn):
    """What to hide in a recording: every face, every plate, boxes a person drew, stretches of sound."""

    faces: bool = Field(
        default=False, title="Faces", description="Pixelate every face (detected and tracked)."
    )
    plates: bool = Field(default=False, title="Plates", description="Pixelate every number plate.")
    boxes: list[RedactBox] = Field(default_factory=list, max_length=50, title="Boxes")
    mutes: list[MuteRange] = Field(default_factory=list, max_length=50, title="Mute ranges")

    @model_validator(mode="after")
    def _something(self) -> RedactionIn:
        if not (self.faces or self.plates or self.boxes or self.mutes):
            raise ValueError("nothing to redact: ask for faces, plates, a box or a mute range")
        return self


class RedactionOut(BaseModel):
    """A redaction and where its job stands."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    item_id: str
    requested_by: str
    requested_at: datetime
    request: dict[str, Any]
    status: str
    frames_done: int
    frames_total: int
    updated_at: datetime
    finished_at: datetime | None
    result_item_id: str | None
    error: str | None


class ShareIn(ReasonIn):
    """A link for one recipient."""

    recipient: str = Field(min_length=3, max_length=200, description="The recipient's name, as burnt in.")
    recipient_role: Literal["prosecutor", "defence", "court", "other"] = "prosecutor"
    mode: Literal["view", "download"] = "view"
    days: float = Field(default=7, gt=0, le=90, description="Days the link lives.")


class ShareOut(BaseModel):
    """A share as its maker sees it (the token and code only once, when made)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    item_id: str
    recipient: str
    recipient_role: str
    mode: str
    expires_at: datetime
    created_by: str
    created_at: datetime
    reason: str
    revoked_at: datetime | None
    opened: int
    bound: bool = False
    url: str | None = None
    code: str | None = None


class CaseIn(BaseModel):
    """A case to open."""

    model_config = ConfigDict(extra="forbid")

    number: str = Field(min_length=3, max_length=100, description="The case number.")
    title: str = Field(min_length=3, max_length=300)
    fir_number: str | None = Field(default=None, max_length=100, description="The FIR it answers.")
    officers: list[str] = Field(default_factory=list, max_length=50)


class CaseItemIn(BaseModel):
    """Evidence to add to a case."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["bodyworn", "clip", "plate_read", "face_match", "challan", "violation"]
    ref_id: str = Field(min_length=1, max_length=64)
    note: str = Field(default="", max_length=500)


class CaseItemOut(BaseModel):
    """One piece of evidence in a case."""

    model_config = ConfigDict(from_attributes=True)

    kind: str
    ref_id: str
    added_by: str
    added_at: datetime
    note: str


class CaseOut(BaseModel):
    """A case with its evidence."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    number: str
    title: str
    fir_number: str | None
    status: str
    officers: list[str]
    created_by: str
    created_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    close_reason: str | None
    items: list[CaseItemOut] = Field(default_factory=list)
    hold_id: str | None = None


class VerifyOut(BaseModel):
    """The outcome of hashing stored originals again."""

    checked: int = 0
    ok: int = 0
    mismatched: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0


class RetentionOut(BaseModel):
    """What one retention pass did."""

    deleted: list[str] = Field(default_factory=list, description="Items moved to the recovery window.")
    purged: list[str] = Field(default_factory=list, description="Items whose files were released.")
    kept_in_case: int = 0
    kept_on_hold: int = 0


class NearbyCamera(BaseModel):
    """A fixed camera the officer passed near while recording, with its footage of the clip's time."""

    camera_id: str = Field(title="Camera", description="Camera id.")
    name: str = Field(title="Name", description="Camera name.")
    district: str = Field(title="District", description="District.")
    kind: str = Field(title="Kind", description="fixed, anpr or face.")
    latitude: float = Field(title="Latitude", description="WGS84 latitude of the camera.")
    longitude: float = Field(title="Longitude", description="WGS84 longitude of the camera.")
    distance_m: float = Field(title="Closest", description="The officer's closest approach, in metres.")
    closest_at: datetime = Field(title="Closest at", description="When the officer was closest.")
    near: list[Span] = Field(
        title="Near", description="When, during the clip, the officer was within the distance asked."
    )
    recorded: list[Span] = Field(
        title="Recorded", description="The camera's recorded footage within the clip's time span."
    )
    recorded_near_seconds: float = Field(
        title="Recorded while near", description="Seconds of footage while the officer was near."
    )


class NearbyOut(BaseModel):
    """The fixed cameras that saw the place of a body-worn clip at its time."""

    item_id: str = Field(title="Item", description="The body-worn item.")
    start: datetime | None = Field(title="Start", description="When the clip starts (None: unknown).")
    end: datetime | None = Field(title="End", description="When the clip ends (None: unknown).")
    within_m: float = Field(title="Distance", description="How close to the track a camera had to be.")
    cameras: list[NearbyCamera] = Field(default_factory=list, title="Cameras", description="Nearest first.")
    note: str = Field(
        default="", title="Note", description="Why no camera could be looked for, when none could."
    )


ItemDetail.model_rebuild()
