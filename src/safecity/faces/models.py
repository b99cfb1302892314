"""Face watch lists: entries with their photos and legal basis, the matches they raised, and notices.

An entry is requested by one person and approved by another (maker-checker); only an approved entry
that has not expired is ever matched. A match is stored only because it hit an active entry: faces
that match nothing never reach the centre.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.clock import utcnow
from safecity.core.crypto import EncryptedVectors
from safecity.core.db import Base


class Category(StrEnum):
    wanted = "wanted"
    missing = "missing"
    event = "event"


class EntryStatus(StrEnum):
    pending = "pending"  # requested, waiting for a second person to approve
    approved = "approved"  # in the matching index until it expires or is removed
    refused = "refused"  # the checker declined it; it never matched
    removed = "removed"  # taken off the list by a person
    expired = "expired"  # passed its expiry date (it had stopped matching at that moment already)


class MatchStatus(StrEnum):
    pending = "pending"  # waiting for the operator
    confirmed = "confirmed"  # the operator judged it the same person; officers sent
    rejected = "rejected"  # the operator judged it a false match


class Outcome(StrEnum):
    identity_confirmed = "identity_confirmed"  # stopped: the person is the one on the list
    not_the_person = "not_the_person"  # stopped: someone else (a misidentification)
    not_found = "not_found"  # the officer could not find the person


class WatchlistEntry(Base):
    __tablename__ = "watchlist_entries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default=EntryStatus.pending)
    legal_basis: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str] = mapped_column(String(1000), default="")
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_by: Mapped[str | None] = mapped_column(String(100))
    approved_at: Mapped[datetime | None]
    case_officer: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    threshold: Mapped[float | None]
    event_cameras: Mapped[list[str]] = mapped_column(JSON, default=list)
    event_start: Mapped[datetime | None]
    event_end: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(100))
    closed_at: Mapped[datetime | None]
    closed_reason: Mapped[str] = mapped_column(String(500), default="")
    version: Mapped[int] = mapped_column(default=1)
    # When the biometric data of a closed entry (photos, embeddings) was deleted; the entry stays.
    purged_at: Mapped[datetime | None]


class WatchlistPhoto(Base):
    """One enrolment photo of an entry, with the face embeddings the pipeline drew from it.

    A photo may give several embeddings (the face also encoded shrunk, as a street camera sees it).
    `encoder` and `encoder_version` name the encoder that made them: a search compares a face only
    with embeddings of its own encoder, and `safecity faces reencode` brings photos to a new one.
    """

    __tablename__ = "watchlist_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("watchlist_entries.id", ondelete="CASCADE"), index=True)
    media_ref: Mapped[str] = mapped_column(String(100))
    # Sealed under the data key (float32 rows, AES-256-GCM): a face template is biometric data.
    embeddings: Mapped[list[list[float]]] = mapped_column(EncryptedVectors("faces.embeddings"))
    encoder: Mapped[str] = mapped_column(String(64), index=True)
    encoder_version: Mapped[str] = mapped_column(String(32))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class FaceMatchRecord(Base):
    """A live face that matched an active entry, and what people decided about it."""

    __tablename__ = "face_matches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_key: Mapped[str] = mapped_column(String(200), unique=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("watchlist_entries.id"), index=True)
    camera_id: Mapped[str | None] = mapped_column(String(64), index=True)
    similarity: Mapped[float]
    crop_ref: Mapped[str | None] = mapped_column(String(100))
    frame_ref: Mapped[str | None] = mapped_column(String(100))
    track_id: Mapped[int | None]
    seen_at: Mapped[datetime] = mapped_column(index=True)
    alert_id: Mapped[str | None] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default=MatchStatus.pending, index=True)
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str] = mapped_column(String(500), default="")
    outcome: Mapped[str | None] = mapped_column(String(32))
    outcome_by: Mapped[str | None] = mapped_column(String(100))
    outcome_at: Mapped[datetime | None]
    outcome_note: Mapped[str] = mapped_column(String(1000), default="")


class FaceNotification(Base):
    """Outbox of notices to case officers (a missing-person match tells the officer on the case)."""

    __tablename__ = "face_notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    match_id: Mapped[str] = mapped_column(ForeignKey("face_matches.id", ondelete="CASCADE"), index=True)
    entry_id: Mapped[str] = mapped_column(String(32), index=True)
    recipient: Mapped[str] = mapped_column(String(100), index=True)
    message: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    acknowledged_at: Mapped[datetime | None]


# --- schemas -------------------------------------------------------------------------------------


class PhotoOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(title="Photo id", description="Id of the enrolment photo.")
    media_ref: str = Field(title="Photo", description="Media-store ref; load it from /media/<ref>.")
    added_at: datetime = Field(title="Added", description="When the photo was enrolled.")


class EntryOut(BaseModel):
    """A watch-list entry as shown to its makers, checkers and operators."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(title="Entry id", description="Watch-list entry id.")
    name: str = Field(title="Name", description="Name of the person (or a description if unknown).")
    category: Category = Field(title="Category", description="wanted, missing or event.")
    status: EntryStatus = Field(title="Status", description="pending, approved, refused, removed or expired.")
    active: bool = Field(title="Active", description="Approved and not expired: in the matching index now.")
    legal_basis: str = Field(title="Legal basis", description="FIR or warrant number (or event order).")
    notes: str = Field(title="Notes", description="Free text for the operators.")
    requested_by: str = Field(title="Requested by", description="User who asked for the entry (maker).")
    requested_at: datetime = Field(title="Requested", description="When it was requested.")
    approved_by: str | None = Field(title="Approved by", description="User who approved it (checker).")
    approved_at: datetime | None = Field(title="Approved", description="When it was approved.")
    case_officer: str = Field(title="Case officer", description="Who is notified of a missing-person match.")
    expires_at: datetime = Field(title="Expires", description="After this moment the entry never matches.")
    threshold: float | None = Field(title="Threshold", description="Stricter similarity threshold, if any.")
    event_cameras: list[str] = Field(title="Event cameras", description="Cameras an event list is tied to.")
    event_start: datetime | None = Field(title="Event start", description="Start of an event list's window.")
    event_end: datetime | None = Field(title="Event end", description="End of an event list's window.")
    closed_by: str | None = Field(title="Closed by", description="Who refused or removed it.")
    closed_at: datetime | None = Field(title="Closed", description="When it was refused, removed or expired.")
    closed_reason: str = Field(title="Reason", description="Why it was refused or removed.")
    version: int = Field(title="Version", description="Bumped on every change (replication order).")
    purged_at: datetime | None = Field(
        default=None,
        title="Biometric data deleted",
        description="When the photos and embeddings of this closed entry were deleted (the entry, who "
        "asked, approved and closed it, and why, are kept).",
    )
    photos: list[PhotoOut] = Field(title="Photos", description="Enrolment photos.")


class EntryDecisionIn(BaseModel):
    """A reason for refusing, removing or otherwise closing an entry."""

    reason: str = Field(min_length=3, max_length=500, title="Reason", description="Why, for the audit log.")


class MatchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(title="Match id", description="Id of the match.")
    entry_id: str = Field(title="Entry", description="Watch-list entry matched.")
    camera_id: str | None = Field(title="Camera", description="Camera that saw the face.")
    similarity: float = Field(title="Similarity", description="Similarity 0..1 to the entry's best photo.")
    crop_ref: str | None = Field(title="Crop", description="Live face crop.")
    frame_ref: str | None = Field(title="Frame", description="Frame the face was seen in.")
    seen_at: datetime = Field(title="Seen", description="When the face was seen.")
    alert_id: str | None = Field(title="Alert", description="Alert the match raised or joined.")
    status: MatchStatus = Field(title="Status", description="pending, confirmed or rejected.")
    decided_by: str | None = Field(title="Decided by", description="Operator who confirmed or rejected.")
    decided_at: datetime | None = Field(title="Decided", description="When.")
    decision_reason: str = Field(title="Reason", description="Why it was rejected or confirmed.")
    outcome: Outcome | None = Field(title="Outcome", description="What the officer on the scene found.")
    outcome_by: str | None = Field(title="Reported by", description="Officer who reported the outcome.")
    outcome_at: datetime | None = Field(title="Reported", description="When.")
    outcome_note: str = Field(title="Note", description="The officer's note.")
    entry_name: str = Field(default="", title="Name", description="Name on the entry matched.")
    category: str = Field(default="", title="Category", description="wanted, missing or event.")
    legal_basis: str = Field(default="", title="Legal basis", description="The entry's FIR or warrant.")
    case_officer: str = Field(
        default="", title="Case officer", description="Notified of missing-person matches."
    )
    photo_refs: list[str] = Field(default_factory=list, title="Photos", description="The entry's photos.")


class MatchDecisionIn(BaseModel):
    """The operator's judgement of a match."""

    decision: str = Field(pattern="^(confirm|reject)$", title="Decision", description="confirm or reject.")
    reason: str = Field(default="", max_length=500, title="Reason", description="Why (required to reject).")


class OutcomeIn(BaseModel):
    """What the officer sent to the scene found."""

    outcome: Outcome = Field(title="Outcome", description="identity_confirmed, not_the_person or not_found.")
    note: str = Field(default="", max_length=1000, title="Note", description="What happened, in plain words.")


class RejectionStat(BaseModel):
    """How often the matches of one entry on one camera were rejected: where thresholds are wrong."""

    entry_id: str = Field(title="Entry", description="Watch-list entry.")
    entry_name: str = Field(title="Name", description="Name on the entry.")
    camera_id: str | None = Field(title="Camera", description="Camera.")
    matches: int = Field(title="Matches", description="Matches raised.")
    rejected: int = Field(title="Rejected", description="Matches the operator rejected.")
    confirmed: int = Field(title="Confirmed", description="Matches the operator confirmed.")
    misidentified: int = Field(
        title="Misidentified", description="Confirmed, but the officer found someone else."
    )
    rejection_rate: float = Field(title="Rejection rate", description="(rejected + misidentified) / decided.")


class Candidate(BaseModel):
    """A watch-list entry near a searched face."""

    entry_id: str = Field(title="Entry", description="Watch-list entry.")
    name: str = Field(title="Name", description="Name on the entry.")
    category: Category = Field(title="Category", description="wanted, missing or event.")
    similarity: float = Field(title="Similarity", description="Similarity 0..1 to the entry's best photo.")
    match: bool = Field(title="Match", description="At or above the default operating threshold.")
    photo_refs: list[str] = Field(title="Photos", description="The entry's enrolment photos.")


class SnapshotHit(BaseModel):
    """A stored match snapshot whose face resembles the searched face."""

    match_id: str = Field(title="Match", description="Stored match the snapshot belongs to.")
    entry_id: str = Field(title="Entry", description="Entry that match was raised for.")
    camera_id: str | None = Field(title="Camera", description="Camera that took it.")
    seen_at: datetime = Field(title="Seen", description="When.")
    crop_ref: str = Field(title="Crop", description="The stored crop.")
    similarity: float = Field(title="Similarity", description="Similarity 0..1 to the searched face.")


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(title="Id", description="Notice id.")
    match_id: str = Field(title="Match", description="Match the notice is about.")
    entry_id: str = Field(title="Entry", description="Entry matched.")
    recipient: str = Field(title="To", description="Case officer to notify.")
    message: str = Field(title="Message", description="What the notice says.")
    created_at: datetime = Field(title="Created", description="When it was queued.")
    acknowledged_by: str | None = Field(title="Acknowledged by", description="Who read it.")
    acknowledged_at: datetime | None = Field(title="Acknowledged", description="When.")


def entry_out(entry: WatchlistEntry, photos: list[WatchlistPhoto], *, active: bool) -> EntryOut:
    """Returns the schema of an entry with its photos."""
    data: dict[str, Any] = {c.name: getattr(entry, c.name) for c in WatchlistEntry.__table__.columns}
    return EntryOut(**data, active=active, photos=[PhotoOut.model_validate(p) for p in photos])


class RecordingHit(BaseModel):
    """A moment of recorded footage whose face resembles the searched face."""

    camera_id: str = Field(title="Camera", description="Camera whose recording shows the face.")
    at: datetime = Field(title="Time", description="When, from the recording's own time line.")
    similarity: float = Field(title="Similarity", description="Similarity 0..1 to the searched face.")
    crop_ref: str = Field(title="Crop", description="The face as recorded (kept as the search's evidence).")
    play_url: str = Field(title="Playback", description="The recordings page at that moment.")
