"""Watch-list governance: request, approve (a second person), refuse, remove, expire; matches and decisions.

Only an approved entry that has not expired is active, and only active entries are matched. Every
change and every search is written to the audit log. Functions take the caller's session; the
caller stages the change for the workers in the same transaction (`faces.replication.stage_change`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from safecity.alerts import service as alerts
from safecity.alerts.models import Alert
from safecity.audit import service as audit
from safecity.cameras.models import Camera
from safecity.core import images
from safecity.core.clock import format_moment, utcnow
from safecity.core.db import get_or_raise
from safecity.core.errors import Conflict, Forbidden, InvalidInput
from safecity.core.events import FaceMatch
from safecity.core.ids import new_id
from safecity.core.images import ImageLimits
from safecity.core.media import MediaStore
from safecity.evidence import service as media_owners
from safecity.faces.index import ExactIndex
from safecity.faces.models import (
    Candidate,
    Category,
    EntryOut,
    EntryStatus,
    FaceMatchRecord,
    FaceNotification,
    MatchOut,
    MatchStatus,
    Outcome,
    RejectionStat,
    SnapshotHit,
    WatchlistEntry,
    WatchlistPhoto,
    entry_out,
)
from safecity.settings import Settings, load_settings

if TYPE_CHECKING:
    from safecity.vision.faces.encoders import EncoderId

#: Turns one enrolment photo (BGR) into its face's embeddings (rows), or raises InvalidInput saying why not.
#: A callable with an `id` attribute (an `EncoderId`) names its encoder; one without stands for the
#: configured encoder (`face_encoder`), as stand-ins in tests do.
FaceEncoder = Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.float32]]

#: The longest an entry may stay on a list before someone must renew it: authorisations are time-limited.
MAX_VALIDITY = timedelta(days=366)
MAX_PHOTOS = 10
PRIORITY = {Category.wanted: 1, Category.event: 2, Category.missing: 2}
WHO = {
    Category.wanted: "Wanted person",
    Category.missing: "Missing person",
    Category.event: "Watch-listed person",
}
"""How an alert's title names the person a face matched, by the entry's category."""


# --- faces ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NamedEncoder:
    """A photo encoder that says which face encoder made its embeddings (stored with every photo)."""

    encode: FaceEncoder
    id: EncoderId

    def __call__(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        return self.encode(image)


def configured_encoder(settings: Settings | None = None) -> EncoderId:
    """Returns the id of the encoder the settings choose (`face_encoder`), without loading it."""
    from safecity.vision.faces.pipeline import encoder_id

    return encoder_id((settings or load_settings()).face_encoder)


def encoder_of(encoder: FaceEncoder) -> EncoderId:
    """Returns the id of the encoder a photo encoder stands for (see `FaceEncoder`)."""
    from safecity.vision.faces.encoders import EncoderId

    named = getattr(encoder, "id", None)
    return named if isinstance(named, EncoderId) else configured_encoder()


def pipeline_encoder(encoder: str | None = None) -> NamedEncoder:
    """Returns the face pipeline's enrolment encoder: one clear, large, frontal face per photo.

    `encoder` names one of the pipeline's encoders ("mobilefacenet", "dlib", "insightface-mbf"); default:
    the configured one. A plug-in encoder that is not installed raises `ModelUnavailable` saying how.
    """
    from safecity.vision.faces import default_pipeline, enrolment_face

    pipeline = default_pipeline(encoder=encoder)

    def encode(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        return enrolment_face(image, pipeline).embedding[None, :]

    return NamedEncoder(encode, pipeline.encoder_id)


def live_encoder() -> NamedEncoder:
    """Returns an encoder for stored live crops: the whole pipeline (small faces allowed), largest face."""
    from safecity.vision.faces import default_pipeline

    pipeline = default_pipeline()

    def encode(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        faces = pipeline.faces(image)
        if not faces:
            raise InvalidInput("no usable face in the image")
        return faces[0].embedding  # largest first

    return NamedEncoder(encode, pipeline.encoder_id)


def default_threshold(settings: Settings) -> float:
    """Returns the operating threshold: the configured one, else the configured encoder's measured one."""
    if settings.face_threshold is not None:
        return settings.face_threshold
    from safecity.vision.faces.pipeline import THRESHOLDS

    return float(THRESHOLDS[settings.face_encoder])


def decode_photo(
    data: bytes, *, label: str = "photo", limits: ImageLimits = ImageLimits()
) -> tuple[npt.NDArray[np.uint8], str]:
    """Returns the BGR image in `data` and the extension to store it under; refuses anything else."""
    image = images.decode_image(data, label=label, limits=limits)
    ext = images.read_header(data, label=label).ext
    return image, ext if ext in {"jpg", "png"} else ""


def encode_photo(
    data: bytes, encoder: FaceEncoder, *, label: str = "photo", limits: ImageLimits = ImageLimits()
) -> npt.NDArray[np.float32]:
    """Returns the embeddings (rows) of the one face in a photo, or raises InvalidInput naming the photo."""
    image, _ = decode_photo(data, label=label, limits=limits)
    try:
        rows = np.asarray(encoder(image), dtype=np.float32)
    except InvalidInput as exc:
        raise InvalidInput(f"{label}: {exc.message}", hint=exc.hint) from None
    return rows[None, :] if rows.ndim == 1 else rows


# --- entries -------------------------------------------------------------------------------------


def enroll(
    session: Session,
    media: MediaStore,
    *,
    name: str,
    category: str,
    legal_basis: str,
    requested_by: str,
    photos: list[bytes],
    expires_at: datetime,
    event_cameras: list[str] | None = None,
    event_start: datetime | None = None,
    event_end: datetime | None = None,
    case_officer: str | None = None,
    threshold: float | None = None,
    notes: str = "",
    encoder: FaceEncoder | None = None,
    limits: ImageLimits = ImageLimits(),
) -> WatchlistEntry:
    """Requests a watch-list entry (pending until a different person approves it)."""
    now = utcnow()
    kind = _category(category)
    name, legal_basis, requested_by = name.strip(), legal_basis.strip(), requested_by.strip()
    if not name:
        raise InvalidInput("the entry needs a name", hint="give the person's name or a description")
    if len(legal_basis) < 3:
        raise InvalidInput(
            "the entry needs a legal basis", hint="give the FIR, warrant or event-order number"
        )
    if not requested_by:
        raise InvalidInput("the entry needs the requester's name", hint="say who asks for it")
    if expires_at <= now:
        raise InvalidInput("the expiry date is in the past", hint="give a future date")
    if expires_at > now + MAX_VALIDITY:
        raise InvalidInput(
            f"an entry may stay on a list at most {MAX_VALIDITY.days} days",
            hint="choose an earlier expiry and renew it",
        )
    if threshold is not None and not 0 < threshold <= 1:
        raise InvalidInput(f"threshold {threshold} is out of range", hint="use a similarity between 0 and 1")
    cameras = sorted({c.strip() for c in event_cameras or [] if c.strip()})
    if kind is Category.event:
        if not cameras:
            raise InvalidInput(
                "an event list needs its event's cameras", hint="name the cameras at the venue"
            )
        if event_start is None or event_end is None or event_end <= event_start:
            raise InvalidInput(
                "an event list needs the event's start and end", hint="end must be after start"
            )
        if event_end <= now:
            raise InvalidInput("the event is already over", hint="check the event dates")
    elif cameras or event_start or event_end:
        raise InvalidInput(
            f"cameras and dates apply to event lists only, not to {kind.value}", hint="use category 'event'"
        )
    if not photos:
        raise InvalidInput("the entry needs at least one photo", hint="attach a clear frontal photo")
    if len(photos) > MAX_PHOTOS:
        raise InvalidInput(f"at most {MAX_PHOTOS} photos per entry", hint="choose the clearest ones")
    encode = encoder or pipeline_encoder()
    made_by = encoder_of(encode)
    # Every photo is checked before anything is written: a refused photo leaves no half-made entry.
    embeddings = [
        encode_photo(data, encode, label=f"photo {i + 1}", limits=limits) for i, data in enumerate(photos)
    ]
    entry = WatchlistEntry(
        id=new_id(),
        name=name,
        category=kind.value,
        status=EntryStatus.pending.value,
        legal_basis=legal_basis,
        notes=notes.strip(),
        requested_by=requested_by,
        requested_at=now,
        case_officer=(case_officer or requested_by).strip(),
        expires_at=expires_at,
        threshold=threshold,
        event_cameras=cameras,
        event_start=event_start,
        event_end=event_end,
        version=1,
    )
    session.add(entry)
    session.flush()
    for data, embedding in zip(photos, embeddings, strict=True):
        image, ext = decode_photo(data, limits=limits)
        # Stored without its EXIF (where and when it was taken, by which phone), encrypted at rest.
        ref = media.put_photo(data, ext, image) if ext else media.put_image(image, quality=95)
        session.add(
            WatchlistPhoto(
                entry_id=entry.id,
                media_ref=ref,
                embeddings=embedding.tolist(),
                encoder=made_by.name,
                encoder_version=made_by.version,
            )
        )
        media_owners.own(session, "watchlist_photo", entry.id, [ref])
    session.flush()
    audit.record(
        session,
        actor=requested_by,
        action="faces.request",
        target=entry.id,
        detail={
            "name": name,
            "category": kind.value,
            "legal_basis": legal_basis,
            "photos": len(photos),
            "expires_at": expires_at,
            "event_cameras": cameras,
        },
    )
    return entry


def approve(session: Session, entry_id: str, approver: str) -> WatchlistEntry:
    """Approves a pending entry; the requester may not approve their own request."""
    entry = get_entry(session, entry_id)
    if entry.status != EntryStatus.pending:
        raise Conflict(
            f"entry is {entry.status}; only a pending entry can be approved", hint="reload the entry"
        )
    if approver.strip().casefold() == entry.requested_by.casefold():
        raise Forbidden(
            "you requested this entry, so you may not approve it (maker-checker)",
            hint="another officer with approval rights must approve it",
        )
    now = utcnow()
    if entry.expires_at <= now:
        raise Conflict("the entry expired before it was approved", hint="request it again with a new expiry")
    entry.status, entry.approved_by, entry.approved_at = EntryStatus.approved.value, approver, now
    entry.version += 1
    audit.record(
        session, actor=approver, action="faces.approve", target=entry.id, detail={"name": entry.name}
    )
    session.flush()
    return entry


def refuse(session: Session, entry_id: str, *, actor: str, reason: str) -> WatchlistEntry:
    """Refuses (or, by its requester, withdraws) a pending entry."""
    entry = get_entry(session, entry_id)
    if entry.status != EntryStatus.pending:
        raise Conflict(
            f"entry is {entry.status}; only a pending entry can be refused", hint="remove it instead"
        )
    _close(entry, EntryStatus.refused, actor=actor, reason=_reason(reason))
    audit.record(session, actor=actor, action="faces.refuse", target=entry.id, detail={"reason": reason})
    return entry


def remove(session: Session, entry_id: str, *, actor: str, reason: str) -> WatchlistEntry:
    """Takes an entry off the list: it stops matching at once on every worker."""
    entry = get_entry(session, entry_id)
    if entry.status not in (EntryStatus.pending, EntryStatus.approved):
        raise Conflict(f"entry is already {entry.status}", hint="nothing to remove")
    _close(entry, EntryStatus.removed, actor=actor, reason=_reason(reason))
    audit.record(session, actor=actor, action="faces.remove", target=entry.id, detail={"reason": reason})
    return entry


def expire_due(session: Session, *, now: datetime | None = None) -> list[str]:
    """Marks approved or pending entries past their expiry as expired; returns the ids this call expired.

    A compare-and-set, not a read-then-update: entries another process is expiring are skipped, and
    only entries still open change, so sweeps running at once expire and audit each entry once.
    """
    moment = now or utcnow()
    still_open = (
        WatchlistEntry.status.in_([EntryStatus.approved.value, EntryStatus.pending.value]),
        WatchlistEntry.expires_at <= moment,
    )
    due = (
        select(WatchlistEntry.id)
        .where(*still_open)
        .with_for_update(skip_locked=True)
        .cte("due")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    rows = session.execute(
        update(WatchlistEntry)
        .where(WatchlistEntry.id.in_(select(due.c.id)), *still_open)
        .values(
            status=EntryStatus.expired.value,
            closed_by="system",
            closed_at=WatchlistEntry.expires_at,
            closed_reason="passed its expiry date",
            version=WatchlistEntry.version + 1,
        )
        .returning(WatchlistEntry.id, WatchlistEntry.expires_at)
        .execution_options(synchronize_session="fetch")
    ).all()
    expired = sorted((expires_at, entry_id) for entry_id, expires_at in rows)
    for expires_at, entry_id in expired:
        audit.record(
            session, actor="system", action="faces.expire", target=entry_id, detail={"at": expires_at}
        )
    return [entry_id for _, entry_id in expired]


#: Closed entries whose biometric data a purge takes at once (the rest wait for the next run).
PURGE_BATCH = 500


def purge_closed(
    session: Session, *, keep_days: int, now: datetime | None = None, dry_run: bool = False
) -> list[str]:
    """Deletes the photos and embeddings of entries closed more than `keep_days` ago; returns their ids.

    A refused, removed or expired entry never matches again, so the face of a person no longer sought
    is kept only as long as a complaint or an audit of the decision may need it. The entry itself
    (who asked, who approved, who closed it and why) and its matches stay; an entry a live hold names
    (``watchlist_photo:ENTRY``, e.g. a case) keeps its photos until the hold is released. The photos'
    claims go, so the media sweep removes the images no other row claims. A compare-and-set like
    `expire_due`: runs in several processes purge and audit each entry once.
    """
    moment = now or utcnow()
    closed = (
        WatchlistEntry.status.in_(
            [EntryStatus.refused.value, EntryStatus.removed.value, EntryStatus.expired.value]
        ),
        WatchlistEntry.closed_at < moment - timedelta(days=keep_days),
        WatchlistEntry.purged_at.is_(None),
    )
    held = media_owners.held_rows(session, "watchlist_photo")
    query = select(WatchlistEntry.id).where(*closed).order_by(WatchlistEntry.closed_at)
    if held:
        query = query.where(WatchlistEntry.id.not_in(sorted(held)))
    if dry_run:
        return list(session.scalars(query.limit(PURGE_BATCH)))
    due = (
        query.limit(PURGE_BATCH)
        .with_for_update(skip_locked=True)
        .cte("due")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    purged = list(
        session.scalars(
            update(WatchlistEntry)
            .where(WatchlistEntry.id.in_(select(due.c.id)), *closed)
            .values(purged_at=moment, version=WatchlistEntry.version + 1)
            .returning(WatchlistEntry.id)
            .execution_options(synchronize_session="fetch")
        )
    )
    if not purged:
        return []
    photos = session.execute(
        delete(WatchlistPhoto).where(WatchlistPhoto.entry_id.in_(purged)).returning(WatchlistPhoto.id)
    ).all()
    media_owners.forget(session, "watchlist_photo", owners=purged)
    audit.record(
        session,
        actor="system",
        action="faces.purge",
        target=f"{len(purged)} closed entries",
        detail={"entries": sorted(purged), "photos": len(photos), "closed_more_than_days": keep_days},
    )
    return sorted(purged)


def get_entry(session: Session, entry_id: str) -> WatchlistEntry:
    """Returns an entry, or raises NotFound."""
    return get_or_raise(session, WatchlistEntry, entry_id, what="watch-list entry")


def photos_of(session: Session, entry_id: str) -> Sequence[WatchlistPhoto]:
    """Returns an entry's photos, oldest first."""
    return session.scalars(
        select(WatchlistPhoto).where(WatchlistPhoto.entry_id == entry_id).order_by(WatchlistPhoto.id)
    ).all()


def is_active(entry: WatchlistEntry, at: datetime | None = None) -> bool:
    """Returns whether the entry is approved and not expired at `at` (now by default)."""
    return entry.status == EntryStatus.approved and (at or utcnow()) < entry.expires_at


def list_entries(
    session: Session, *, status: str | None = None, category: str | None = None, limit: int = 500
) -> Sequence[WatchlistEntry]:
    """Returns entries, newest request first."""
    query = select(WatchlistEntry).order_by(WatchlistEntry.requested_at.desc()).limit(limit)
    if status:
        if status not in EntryStatus.__members__:
            raise InvalidInput(
                f"unknown status {status!r}", hint=f"use one of {[s.value for s in EntryStatus]}"
            )
        query = query.where(WatchlistEntry.status == status)
    if category:
        query = query.where(WatchlistEntry.category == _category(category).value)
    return session.scalars(query).all()


def active_entries(session: Session, *, at: datetime | None = None) -> Sequence[WatchlistEntry]:
    """Returns every entry that matches now: approved and not expired."""
    return session.scalars(
        select(WatchlistEntry).where(
            WatchlistEntry.status == EntryStatus.approved.value, WatchlistEntry.expires_at > (at or utcnow())
        )
    ).all()


def view(session: Session, entry: WatchlistEntry) -> EntryOut:
    """Returns an entry as shown to people, with its photos."""
    return entry_out(entry, list(photos_of(session, entry.id)), active=is_active(entry))


# --- searching -----------------------------------------------------------------------------------


def photos_encoded_by(
    session: Session, encoder: EncoderId, entry_ids: Sequence[str]
) -> Sequence[WatchlistPhoto]:
    """Returns the photos of these entries whose embeddings `encoder` made (others cannot be compared)."""
    return session.scalars(
        select(WatchlistPhoto)
        .where(
            WatchlistPhoto.entry_id.in_(entry_ids),
            WatchlistPhoto.encoder == encoder.name,
            WatchlistPhoto.encoder_version == encoder.version,
        )
        .order_by(WatchlistPhoto.id)
    ).all()


def search(
    session: Session,
    embedding: npt.ArrayLike,
    *,
    threshold: float,
    k: int = 5,
    large_face: bool = True,
    encoder: EncoderId | None = None,
) -> list[Candidate]:
    """Returns the active entries nearest to a face, best first (an exact search: it is a person's query).

    Only photos encoded by the face's own `encoder` (default: the configured one) are compared: a
    similarity between two encoders' embeddings means nothing. A large face is compared with each
    photo at full resolution only: the photos' street-camera views would make different people look
    alike. A small face is compared with every view.
    """
    entries = {entry.id: entry for entry in active_entries(session)}
    photos = photos_encoded_by(session, encoder or configured_encoder(), list(entries))
    if not photos:
        return []
    index = ExactIndex(dim=len(photos[0].embeddings[0]), encoder=encoder or configured_encoder())
    refs: dict[str, list[str]] = {}
    for photo in photos:
        rows = photo.embeddings[:1] if large_face else photo.embeddings
        index.add(photo.entry_id, np.asarray(rows, dtype=np.float32))
        refs.setdefault(photo.entry_id, []).append(photo.media_ref)
    return [
        Candidate(
            entry_id=entry_id,
            name=entries[entry_id].name,
            category=Category(entries[entry_id].category),
            similarity=round(similarity, 4),
            match=similarity >= threshold,
            photo_refs=refs[entry_id],
        )
        for entry_id, similarity in index.search(embedding, k=k)
    ]


def search_watchlist(
    session: Session,
    photo: bytes,
    *,
    actor: str,
    reason: str,
    threshold: float,
    k: int = 5,
    case_reference: str = "",
    encoder: FaceEncoder | None = None,
    limits: ImageLimits = ImageLimits(),
) -> list[Candidate]:
    """Searches the active watch list with the face in a photo; the search is audited."""
    reason = _reason(reason)
    encode = encoder or pipeline_encoder()
    embedding = encode_photo(photo, encode, limits=limits)
    # Search photos pass the enrolment rules (a face of at least 80 px), so they are large faces.
    candidates = search(
        session, embedding[0], threshold=threshold, k=k, large_face=True, encoder=encoder_of(encode)
    )
    audit.record(
        session,
        actor=actor,
        action="faces.search",
        target="watchlist",
        detail={
            "reason": reason,
            "case_reference": case_reference,
            "candidates": [(c.entry_id, c.similarity) for c in candidates],
        },
    )
    return candidates


def search_snapshots(
    session: Session,
    media: MediaStore,
    photo: bytes,
    *,
    actor: str,
    case_reference: str,
    reason: str,
    encoder: FaceEncoder | None = None,
    crop_encoder: FaceEncoder | None = None,
    min_similarity: float = 0.0,
    limit: int = 500,
    limits: ImageLimits = ImageLimits(),
) -> list[SnapshotHit]:
    """Searches the stored match snapshots for a face: investigators only, with a case and a reason."""
    if len(case_reference.strip()) < 3:
        raise InvalidInput(
            "a stored-footage search needs a case reference", hint="give the FIR or case number"
        )
    reason = _reason(reason)
    query = encode_photo(photo, encoder or pipeline_encoder(), limits=limits)[0]
    query = query / np.linalg.norm(query)
    # Stored crops are live faces, often small: the full pipeline reads them, not the enrolment rules.
    read_crop = crop_encoder or live_encoder()
    hits: list[SnapshotHit] = []
    rows = session.scalars(
        select(FaceMatchRecord)
        .where(FaceMatchRecord.crop_ref.is_not(None))
        .order_by(FaceMatchRecord.seen_at.desc())
        .limit(limit)
    ).all()
    for row in rows:
        assert row.crop_ref is not None
        try:
            vector = encode_photo(media.get(row.crop_ref), read_crop, limits=limits)[0]
        except (InvalidInput, ValueError):
            continue  # a crop with no usable face (or one gone with its retention) cannot be compared
        similarity = float(np.clip(query @ (vector / np.linalg.norm(vector)), 0.0, 1.0))
        if similarity >= min_similarity:
            hits.append(
                SnapshotHit(
                    match_id=row.id,
                    entry_id=row.entry_id,
                    camera_id=row.camera_id,
                    seen_at=row.seen_at,
                    crop_ref=row.crop_ref,
                    similarity=round(similarity, 4),
                )
            )
    hits.sort(key=lambda hit: hit.similarity, reverse=True)
    audit.record(
        session,
        actor=actor,
        action="faces.footage_search",
        target=case_reference.strip(),
        detail={"reason": reason, "searched": len(rows), "hits": [h.match_id for h in hits[:20]]},
    )
    return hits


# --- matches -------------------------------------------------------------------------------------


def record_match(
    session: Session, event: FaceMatch, *, scope_ok: bool = True
) -> tuple[FaceMatchRecord, Alert, bool] | None:
    """Stores a match of an active entry and raises (or joins) its alert; returns None if the entry
    is not active at the moment seen or out of scope (such a match is refused, never stored).

    Returns the match, its alert and whether the alert is new or changed.
    """
    entry = session.get(WatchlistEntry, event.entry_id)
    if entry is None or not is_active(entry, event.at) or not scope_ok:
        return None
    existing = session.scalars(select(FaceMatchRecord).where(FaceMatchRecord.event_key == event.key)).first()
    if existing is not None:
        alert = get_or_raise(session, Alert, existing.alert_id, what="alert")
        return existing, alert, False
    kind = Category(entry.category)
    photo_refs = [p.media_ref for p in photos_of(session, entry.id)]
    match = FaceMatchRecord(
        id=new_id(),
        event_key=event.key,
        entry_id=entry.id,
        camera_id=event.camera_id,
        similarity=event.similarity,
        crop_ref=event.crop_ref,
        frame_ref=event.frame_ref,
        track_id=event.track_id,
        seen_at=event.at,
        status=MatchStatus.pending.value,
    )
    workflow = {
        Category.wanted: "wanted",
        Category.missing: "missing_person",
        Category.event: "event_security",
    }[kind]
    where = _place_name(session, event.camera_id)
    alert, _new = alerts.raise_alert(
        session,
        kind="face_match",
        priority=PRIORITY[kind],
        title=f"{WHO[kind]} {entry.name} at {where} ({event.similarity:.0%} alike)",
        source_key=event.key,
        dedup_key=f"face:{entry.id}:{event.camera_id}",
        camera_id=event.camera_id,
        evidence={
            "crop_ref": event.crop_ref,
            "frame_ref": event.frame_ref,
            "watchlist_photo_refs": photo_refs,
            "entry_id": entry.id,
            "similarity": event.similarity,
            "category": kind.value,
        },
        detail={
            "match_id": match.id,
            "name": entry.name,
            "legal_basis": entry.legal_basis,
            "workflow": workflow,
            "case_officer": entry.case_officer,
        },
    )
    match.alert_id = alert.id
    session.add(match)
    session.flush()
    media_owners.own(session, "face_match", match.id, [match.crop_ref, match.frame_ref])
    if kind is Category.missing:
        session.add(
            FaceNotification(
                match_id=match.id,
                entry_id=entry.id,
                recipient=entry.case_officer,
                message=(
                    f"Missing person {entry.name} ({entry.legal_basis}) was seen at {where} "
                    f"on {format_moment(event.at)}, similarity {event.similarity:.0%}. "
                    f"Alert {alert.id} awaits an operator's confirmation."
                ),
            )
        )
    audit.record(
        session,
        actor="system",
        action="faces.match",
        target=entry.id,
        detail={
            "match": match.id,
            "camera": event.camera_id,
            "similarity": event.similarity,
            "alert": alert.id,
        },
    )
    return match, alert, True


def get_match(session: Session, match_id: str) -> FaceMatchRecord:
    """Returns a match, or raises NotFound."""
    return get_or_raise(session, FaceMatchRecord, match_id, what="face match")


def list_matches(
    session: Session, *, entry_id: str | None = None, status: str | None = None, limit: int = 200
) -> Sequence[FaceMatchRecord]:
    """Returns matches, newest first."""
    query = select(FaceMatchRecord).order_by(FaceMatchRecord.seen_at.desc()).limit(limit)
    if entry_id:
        query = query.where(FaceMatchRecord.entry_id == entry_id)
    if status:
        if status not in MatchStatus.__members__:
            raise InvalidInput(
                f"unknown status {status!r}", hint=f"use one of {[s.value for s in MatchStatus]}"
            )
        query = query.where(FaceMatchRecord.status == status)
    return session.scalars(query).all()


def match_view(session: Session, match: FaceMatchRecord) -> MatchOut:
    """Returns a match with what the operator needs beside the crop: the entry's name and photos."""
    entry = get_entry(session, match.entry_id)
    return MatchOut.model_validate(match).model_copy(
        update={
            "entry_name": entry.name,
            "category": entry.category,
            "legal_basis": entry.legal_basis,
            "case_officer": entry.case_officer,
            "photo_refs": [p.media_ref for p in photos_of(session, entry.id)],
        }
    )


def decide(
    session: Session, match_id: str, *, decision: str, actor: str, reason: str = ""
) -> tuple[FaceMatchRecord, Alert | None]:
    """Confirms or rejects a match (and its alert); rejections feed the per-camera threshold stats."""
    if decision not in ("confirm", "reject"):
        raise InvalidInput(f"unknown decision {decision!r}", hint="use confirm or reject")
    if decision == "reject" and not reason.strip():
        raise InvalidInput("a rejection needs a reason", hint="say why it is not the person")
    match = get_match(session, match_id)
    if match.status != MatchStatus.pending:
        raise Conflict(f"match is already {match.status}", hint="reload the match")
    match.status = MatchStatus.confirmed.value if decision == "confirm" else MatchStatus.rejected.value
    match.decided_by, match.decided_at, match.decision_reason = actor, utcnow(), reason.strip()
    audit.record(
        session, actor=actor, action=f"faces.match_{match.status}", target=match.id, detail={"reason": reason}
    )
    alert = session.get(Alert, match.alert_id) if match.alert_id else None
    action = "confirm" if decision == "confirm" else "dismiss"
    if alert is not None and alert.status in alerts.TRANSITIONS[action][0]:
        alert = alerts.act(
            session,
            alert.id,
            action=action,
            actor=actor,
            reason=reason or "face match confirmed",
            reason_code="false_match" if action == "dismiss" else None,
        )
    return match, alert


def sync_alert_decision(session: Session, alert_id: str, status: str) -> int:
    """Applies an alert confirmed or dismissed elsewhere to its pending matches; returns how many."""
    target = {"confirmed": MatchStatus.confirmed, "dismissed": MatchStatus.rejected}.get(status)
    if target is None:
        return 0
    last = alerts.history(session, alert_id)
    actor, reason = (last[-1].actor, last[-1].reason) if last else ("system", "")
    pending = session.scalars(
        select(FaceMatchRecord).where(
            FaceMatchRecord.alert_id == alert_id, FaceMatchRecord.status == MatchStatus.pending.value
        )
    ).all()
    for match in pending:
        match.status, match.decided_by, match.decided_at = target.value, actor, utcnow()
        match.decision_reason = reason
        audit.record(
            session,
            actor=actor,
            action=f"faces.match_{target.value}",
            target=match.id,
            detail={"via": alert_id},
        )
    return len(pending)


def report_outcome(
    session: Session, match_id: str, *, outcome: str, actor: str, note: str = ""
) -> tuple[FaceMatchRecord, Alert | None]:
    """Records what the officer on the scene found, and closes the alert."""
    result = Outcome(outcome) if outcome in Outcome.__members__ else None
    if result is None:
        raise InvalidInput(f"unknown outcome {outcome!r}", hint=f"use one of {[o.value for o in Outcome]}")
    match = get_match(session, match_id)
    if match.status != MatchStatus.confirmed:
        raise Conflict(
            f"match is {match.status}; an outcome is reported for a confirmed match",
            hint="confirm the match first",
        )
    if match.outcome is not None:
        raise Conflict(f"the outcome was already reported ({match.outcome})", hint="reload the match")
    match.outcome, match.outcome_by, match.outcome_at, match.outcome_note = (
        result.value,
        actor,
        utcnow(),
        note.strip(),
    )
    audit.record(
        session, actor=actor, action="faces.outcome", target=match.id, detail={"outcome": result.value}
    )
    alert = session.get(Alert, match.alert_id) if match.alert_id else None
    if alert is not None and alert.status in alerts.TRANSITIONS["close"][0]:
        alert = alerts.act(session, alert.id, action="close", actor=actor, reason=f"outcome: {result.value}")
    return match, alert


def rejection_stats(session: Session) -> list[RejectionStat]:
    """Returns, per entry and camera, how many matches were raised, rejected and confirmed."""
    rows = session.execute(
        select(
            FaceMatchRecord.entry_id,
            FaceMatchRecord.camera_id,
            func.count(),
            func.sum(_when(FaceMatchRecord.status == MatchStatus.rejected.value)),
            func.sum(_when(FaceMatchRecord.status == MatchStatus.confirmed.value)),
            func.sum(_when(FaceMatchRecord.outcome == Outcome.not_the_person.value)),
        ).group_by(FaceMatchRecord.entry_id, FaceMatchRecord.camera_id)
    ).all()
    names = dict(session.execute(select(WatchlistEntry.id, WatchlistEntry.name)).tuples().all())
    stats = []
    for entry_id, camera_id, total, rejected, confirmed, misidentified in rows:
        rejected, confirmed, misidentified = int(rejected or 0), int(confirmed or 0), int(misidentified or 0)
        decided = rejected + confirmed
        stats.append(
            RejectionStat(
                entry_id=entry_id,
                entry_name=names.get(entry_id, ""),
                camera_id=camera_id,
                matches=int(total),
                rejected=rejected,
                confirmed=confirmed,
                misidentified=misidentified,
                rejection_rate=round((rejected + misidentified) / decided, 4) if decided else 0.0,
            )
        )
    stats.sort(key=lambda s: (s.rejection_rate, s.rejected), reverse=True)
    return stats


# --- notices to case officers --------------------------------------------------------------------


def list_notifications(
    session: Session, *, recipient: str | None = None, unacknowledged: bool = False, limit: int = 200
) -> Sequence[FaceNotification]:
    """Returns notices to case officers, newest first."""
    query = select(FaceNotification).order_by(FaceNotification.id.desc()).limit(limit)
    if recipient:
        query = query.where(FaceNotification.recipient == recipient)
    if unacknowledged:
        query = query.where(FaceNotification.acknowledged_at.is_(None))
    return session.scalars(query).all()


def acknowledge_notification(session: Session, notification_id: int, *, actor: str) -> FaceNotification:
    """Marks a notice as read by `actor`."""
    notice = get_or_raise(session, FaceNotification, notification_id, what="notification")
    if notice.acknowledged_at is None:
        notice.acknowledged_by, notice.acknowledged_at = actor, utcnow()
        audit.record(session, actor=actor, action="faces.notice_ack", target=str(notice.id), detail={})
    return notice


# --- helpers -------------------------------------------------------------------------------------


def _place_name(session: Session, camera_id: str | None) -> str:
    """Where a face was seen, as people say it: the camera's name and district, not its id."""
    camera = session.get(Camera, camera_id) if camera_id else None
    if camera is None:
        return f"camera {camera_id}" if camera_id else "an unknown camera"
    return f"{camera.name}, {camera.district}"


def _category(value: str) -> Category:
    try:
        return Category(value)
    except ValueError:
        raise InvalidInput(
            f"unknown category {value!r}", hint=f"use one of {[c.value for c in Category]}"
        ) from None


def _reason(reason: str) -> str:
    reason = reason.strip()
    if len(reason) < 3:
        raise InvalidInput("a reason is required", hint="say why, for the audit log")
    return reason


def _close(entry: WatchlistEntry, status: EntryStatus, *, actor: str, reason: str) -> None:
    entry.status, entry.closed_by, entry.closed_at, entry.closed_reason = (
        status.value,
        actor,
        utcnow(),
        reason,
    )
    entry.version += 1


def _when(condition: Any) -> Any:
    return case((condition, 1), else_=0)
