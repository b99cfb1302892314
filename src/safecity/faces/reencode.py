"""Re-encoding the watch list's enrolment photos when the face encoder changes.

Embeddings of two encoders are never compared, so after `face_encoder` changes an entry matches only
once its photos are encoded again by the new encoder. Each open entry (pending or approved) is done
in its own transaction: its photos are read back from the media store and run through the enrolment
rules again; the entry's version goes up and the change is staged for the workers. A photo in which
the new pipeline finds no usable face keeps its old embeddings (which the new encoder never
compares) and is reported, so that someone replaces it.

    for entry_id in stale_entries(session, encoder.id):
        result = reencode_entry(session, media, entry_id, encoder=encoder, actor="cli:admin")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from safecity.audit import service as audit
from safecity.core.errors import InvalidInput, SafeCityError
from safecity.core.images import ImageLimits
from safecity.core.media import MediaStore
from safecity.faces import replication, service
from safecity.faces.models import EntryStatus, WatchlistEntry, WatchlistPhoto
from safecity.vision.faces.encoders import EncoderId

OPEN = (EntryStatus.pending.value, EntryStatus.approved.value)
"""Entries that match now or may after approval: the ones worth re-encoding."""


@dataclass(frozen=True)
class RefusedPhoto:
    """A photo the new encoder's pipeline could not use, and why."""

    entry_id: str
    name: str
    photo_id: int
    reason: str


@dataclass
class EntryResult:
    """What re-encoding one entry did."""

    entry_id: str
    name: str
    reencoded: int = 0
    refused: list[RefusedPhoto] = field(default_factory=list)
    usable: int = 0
    """Photos of the entry the new encoder can compare after this (re-encoded or already current)."""


def _stale(encoder: EncoderId) -> ColumnElement[bool]:
    return or_(WatchlistPhoto.encoder != encoder.name, WatchlistPhoto.encoder_version != encoder.version)


def stale_entries(session: Session, encoder: EncoderId) -> list[str]:
    """Returns the open entries with at least one photo another encoder made, oldest request first."""
    return list(
        session.scalars(
            select(WatchlistEntry.id)
            .where(WatchlistEntry.status.in_(OPEN))
            .where(WatchlistEntry.id.in_(select(WatchlistPhoto.entry_id).where(_stale(encoder))))
            .order_by(WatchlistEntry.requested_at, WatchlistEntry.id)
        ).all()
    )


def stale_photo_count(session: Session, encoder: EncoderId) -> int:
    """Returns how many photos of open entries another encoder made (0: nothing to re-encode)."""
    photos: Sequence[WatchlistPhoto] = session.scalars(
        select(WatchlistPhoto)
        .join(WatchlistEntry, WatchlistEntry.id == WatchlistPhoto.entry_id)
        .where(WatchlistEntry.status.in_(OPEN), _stale(encoder))
    ).all()
    return len(photos)


def reencode_entry(
    session: Session,
    media: MediaStore,
    entry_id: str,
    *,
    encoder: service.FaceEncoder,
    actor: str,
    limits: ImageLimits = ImageLimits(),
) -> EntryResult:
    """Encodes an entry's photos again with `encoder`, bumps its version and tells the workers."""
    target = service.encoder_of(encoder)
    entry = service.get_entry(session, entry_id)
    result = EntryResult(entry.id, entry.name)
    for photo in service.photos_of(session, entry.id):
        if (photo.encoder, photo.encoder_version) == (target.name, target.version):
            result.usable += 1
            continue
        label = f"photo {photo.id} of entry {entry.id} ({entry.name})"
        try:
            rows = service.encode_photo(media.get(photo.media_ref), encoder, label=label, limits=limits)
        except InvalidInput as exc:
            result.refused.append(RefusedPhoto(entry.id, entry.name, photo.id, exc.message))
            continue
        except (SafeCityError, OSError) as exc:  # the stored photo itself is gone or unreadable
            result.refused.append(RefusedPhoto(entry.id, entry.name, photo.id, f"{label}: {exc}"))
            continue
        photo.embeddings = rows.tolist()
        photo.encoder, photo.encoder_version = target.name, target.version
        result.reencoded += 1
        result.usable += 1
    if result.reencoded:
        entry.version += 1
        session.flush()
        replication.stage_change(session, entry.id, encoder=target)
    audit.record(
        session,
        actor=actor,
        action="faces.reencode",
        target=entry.id,
        detail={
            "encoder": str(target),
            "reencoded": result.reencoded,
            "refused": [r.photo_id for r in result.refused],
        },
    )
    return result
