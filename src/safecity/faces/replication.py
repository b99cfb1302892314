"""The watch list as each worker holds it: a full load at start, then deltas from the bus.

The centre publishes `WatchlistChanged` whenever an entry starts or stops matching (approved,
removed, refused after approval, expired). A worker keeps a `WorkerWatchlist` and calls `.match` for
every voted face; only a face that clears the camera's threshold against an entry in scope comes
back, so a face that matches nothing never leaves the worker's memory.

A worker's copy holds the embeddings of one encoder, the one its face pipeline runs: every change
carries the encoder that made its embeddings, and a change from another encoder is refused with a
warning (the entry then does not match on that worker until its photos are re-encoded).

    watchlist = WorkerWatchlist(default_threshold=0.5, encoder=pipeline.encoder_id)
    await watchlist.follow(ctx.bus)           # subscribe first, so nothing published meanwhile is lost
    with ctx.db.session() as session:
        watchlist.load(session)               # full sync
    hit = watchlist.match(embedding, "cam-7", at)   # (entry_id, similarity) or None
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field
from sqlalchemy.orm import Session

from safecity.core import outbox
from safecity.core.bus import Bus, Subscription
from safecity.core.events import Event, register_event
from safecity.faces import service
from safecity.faces.index import FaceIndex, make_index
from safecity.faces.models import WatchlistEntry
from safecity.vision.faces.encoders import DLIB_ID, EncoderId

log = logging.getLogger(__name__)


class WatchlistChanged(Event):
    """A watch-list entry started or stopped matching; workers update their index without a rebuild."""

    type: ClassVar[str] = "watchlist_changed"
    entry_id: str = Field(title="Entry", description="Watch-list entry id.")
    action: Literal["add", "remove"] = Field(
        title="Action", description="add: now matches; remove: never again."
    )
    entry_version: int = Field(
        title="Entry version", description="Newer versions win; older ones are ignored."
    )
    embeddings: list[list[float]] = Field(
        default_factory=list,
        title="Embeddings",
        description="Every embedding of the entry's photos, street-camera views included (add only).",
    )
    main_embeddings: list[list[float]] = Field(
        default_factory=list,
        title="Full-resolution embeddings",
        description="One per photo, without the street-camera views: for comparing large, sharp faces.",
    )
    encoder: str = Field(
        default=DLIB_ID.name,
        title="Encoder",
        description="Name of the face encoder that made the embeddings (changes from before encoders "
        "were named carry dlib's, the only one there was).",
    )
    encoder_version: str = Field(
        default=DLIB_ID.version, title="Encoder version", description="Its version (weights, preprocessing)."
    )
    category: str = Field(default="", title="Category", description="wanted, missing or event.")
    threshold: float | None = Field(
        default=None, title="Threshold", description="Entry's stricter threshold."
    )
    expires_at: datetime | None = Field(
        default=None, title="Expires", description="Stops matching after this."
    )
    event_cameras: list[str] = Field(
        default_factory=list, title="Event cameras", description="Event lists only."
    )
    event_start: datetime | None = Field(default=None, title="Event start", description="Event lists only.")
    event_end: datetime | None = Field(default=None, title="Event end", description="Event lists only.")


register_event(WatchlistChanged)


@dataclass(frozen=True)
class EntryScope:
    """Where and when an entry may match, and how strictly."""

    category: str
    expires_at: datetime | None
    threshold: float | None = None
    event_cameras: frozenset[str] = frozenset()
    event_start: datetime | None = None
    event_end: datetime | None = None

    @classmethod
    def of(cls, entry: WatchlistEntry) -> EntryScope:
        """Returns the scope of a stored entry."""
        return cls(
            category=entry.category,
            expires_at=entry.expires_at,
            threshold=entry.threshold,
            event_cameras=frozenset(entry.event_cameras or ()),
            event_start=entry.event_start,
            event_end=entry.event_end,
        )

    def applies(self, camera_id: str | None, at: datetime) -> bool:
        """Returns whether the entry may match a face seen by `camera_id` at `at`."""
        if self.expires_at is not None and at >= self.expires_at:
            return False
        if self.category == "event":
            # An event-security list watches only its event's cameras, only during the event.
            if camera_id is None or camera_id not in self.event_cameras:
                return False
            if self.event_start is not None and at < self.event_start:
                return False
            if self.event_end is not None and at >= self.event_end:
                return False
        return True

    def threshold_for(self, camera_threshold: float) -> float:
        """Returns the similarity a face must reach: the camera's, or the entry's if stricter."""
        return max(camera_threshold, self.threshold or 0.0)


def change_event(session: Session, entry_id: str, *, encoder: EncoderId | None = None) -> WatchlistChanged:
    """Returns the event that brings every worker's copy of `entry_id` up to date.

    It carries the embeddings of the photos `encoder` (default: the configured one) made, the
    encoder every worker runs; photos not yet re-encoded to it are left out.
    """
    made_by = encoder or service.configured_encoder()
    entry = service.get_entry(session, entry_id)
    active = service.is_active(entry)
    base = WatchlistChanged(
        key=f"watchlist:{entry.id}:{entry.version}",
        entry_id=entry.id,
        action="add" if active else "remove",
        entry_version=entry.version,
    )
    if not active:
        return base
    scope = EntryScope.of(entry)
    photos = service.photos_encoded_by(session, made_by, [entry.id])
    return base.model_copy(
        update={
            "encoder": made_by.name,
            "encoder_version": made_by.version,
            "embeddings": [row for p in photos for row in p.embeddings],
            "main_embeddings": [p.embeddings[0] for p in photos],
            "category": entry.category,
            "threshold": entry.threshold,
            "expires_at": entry.expires_at,
            "event_cameras": sorted(scope.event_cameras),
            "event_start": entry.event_start,
            "event_end": entry.event_end,
        }
    )


def stage_change(session: Session, entry_id: str, *, encoder: EncoderId | None = None) -> WatchlistChanged:
    """Tells every worker an entry's current state once this transaction commits (the outbox)."""
    event = change_event(session, entry_id, encoder=encoder)
    outbox.stage(session, event)
    return event


@dataclass
class WorkerWatchlist:
    """A worker's copy of the active watch list: 1:N index plus each entry's scope and threshold.

    `encoder` is the encoder of the faces it will be asked to match (default: the configured one);
    only embeddings that encoder made are held.
    """

    default_threshold: float
    camera_thresholds: dict[str, float] = field(default_factory=dict)
    n_expected: int = 1000
    encoder: EncoderId | None = None
    _index: FaceIndex | None = None  # every view of every photo, for street-camera faces
    _sharp: FaceIndex | None = None  # one full-resolution embedding per photo, for large faces
    _scopes: dict[str, EntryScope] = field(default_factory=dict)
    _versions: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.encoder is None:
            self.encoder = service.configured_encoder()

    def load(self, session: Session) -> int:
        """Replaces the copy with every active entry and each face camera's threshold; returns entries.

        Photos another encoder made are left out (and counted in the log): they match again once
        `safecity faces reencode` has brought them to this worker's encoder.
        """
        from safecity.cameras import service as cameras

        assert self.encoder is not None
        rows = service.active_entries(session)
        index: FaceIndex | None = None
        sharp: FaceIndex | None = None
        scopes: dict[str, EntryScope] = {}
        versions = dict(self._versions)
        stale = 0
        for entry in rows:
            photos = service.photos_encoded_by(session, self.encoder, [entry.id])
            stale += len(service.photos_of(session, entry.id)) - len(photos)
            if not photos:
                continue
            vectors = np.asarray([row for p in photos for row in p.embeddings], dtype=np.float32)
            if index is None or sharp is None:
                index = make_index(
                    max(self.n_expected, len(rows)), dim=vectors.shape[1], encoder=self.encoder
                )
                sharp = make_index(
                    max(self.n_expected, len(rows)), dim=vectors.shape[1], encoder=self.encoder
                )
            index.add(entry.id, vectors, encoder=self.encoder)
            sharp.add(entry.id, np.asarray([p.embeddings[0] for p in photos], dtype=np.float32))
            scopes[entry.id] = EntryScope.of(entry)
            versions[entry.id] = max(versions.get(entry.id, 0), entry.version)
        thresholds = {
            camera.id: threshold
            for camera in cameras.list_cameras(session)
            if (threshold := camera.settings.face_threshold) is not None
        }
        with self._lock:
            self._index, self._sharp, self._scopes, self._versions = index, sharp, scopes, versions
            self.camera_thresholds.update(thresholds)
        if stale:
            log.warning(
                "watch list: %d photo(s) were encoded by another encoder than this worker's (%s) and "
                "cannot be matched; run `safecity faces reencode`",
                stale,
                self.encoder,
            )
        return len(scopes)

    def apply(self, event: WatchlistChanged) -> bool:
        """Applies one change; returns False when it is older than what the copy holds (a repeat).

        A change whose embeddings another encoder made takes the entry off this copy (its old
        embeddings are out of date) and logs why, rather than mixing two encoders' embeddings.
        """
        made_by = EncoderId(event.encoder, event.encoder_version)
        with self._lock:
            if event.entry_version <= self._versions.get(event.entry_id, 0):
                return False
            self._versions[event.entry_id] = event.entry_version
            for held in (self._index, self._sharp):
                if held is not None and event.entry_id in held:
                    held.remove(event.entry_id)
            self._scopes.pop(event.entry_id, None)
            if event.action == "add" and event.embeddings and made_by != self.encoder:
                log.warning(
                    "watch list entry %s (v%d) ignored: its embeddings were made by encoder %s, this "
                    "worker encodes faces with %s; run `safecity faces reencode`",
                    event.entry_id,
                    event.entry_version,
                    made_by,
                    self.encoder,
                )
            elif event.action == "add" and event.embeddings:
                vectors = np.asarray(event.embeddings, dtype=np.float32)
                if self._index is None or self._sharp is None:
                    self._index = make_index(self.n_expected, dim=vectors.shape[1], encoder=self.encoder)
                    self._sharp = make_index(self.n_expected, dim=vectors.shape[1], encoder=self.encoder)
                self._index.add(event.entry_id, vectors, encoder=made_by)
                self._sharp.add(
                    event.entry_id,
                    np.asarray(event.main_embeddings or event.embeddings, np.float32),
                    encoder=made_by,
                )
                self._scopes[event.entry_id] = EntryScope(
                    category=event.category,
                    expires_at=event.expires_at,
                    threshold=event.threshold,
                    event_cameras=frozenset(event.event_cameras),
                    event_start=event.event_start,
                    event_end=event.event_end,
                )
            return True

    def match(
        self, embedding: npt.ArrayLike, camera_id: str | None, at: datetime, *, large_face: bool = False
    ) -> tuple[str, float] | None:
        """Returns (entry_id, similarity) of the best entry in scope above threshold, or None.

        Pass `large_face=True` for a face big and sharp enough to compare at full resolution (eyes at
        least `safecity.vision.faces.pipeline.LOW_RES_EYE_PX` apart): the street-camera views of the
        enrolment photos are then left out, since shrunk faces of different people look more alike.
        """
        with self._lock:
            index = self._sharp if large_face else self._index
            if index is None or not self._scopes:
                return None
            camera_threshold = self.camera_thresholds.get(camera_id or "", self.default_threshold)
            # Look past the nearest few: an entry out of scope here (another event's list, expired)
            # must not hide one that is in scope.
            for entry_id, similarity in index.search(embedding, k=min(len(self._scopes), 16)):
                scope = self._scopes.get(entry_id)
                if scope is None or not scope.applies(camera_id, at):
                    continue
                # An entry may set a stricter threshold: a nearer one failing its own does not end the search.
                if similarity >= scope.threshold_for(camera_threshold):
                    return entry_id, similarity
            return None

    def set_camera_threshold(self, camera_id: str, threshold: float | None) -> None:
        """Sets (or, with None, clears) one camera's threshold override."""
        with self._lock:
            if threshold is None:
                self.camera_thresholds.pop(camera_id, None)
            else:
                self.camera_thresholds[camera_id] = threshold

    def __len__(self) -> int:
        return len(self._scopes)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._scopes

    async def follow(self, bus: Bus) -> Subscription:
        """Subscribes this copy to every watch-list change (each worker sees all of them) until closed."""

        def on_change(event: Event) -> None:
            if isinstance(event, WatchlistChanged) and self.apply(event):
                log.info("watch list %s %s (v%d)", event.action, event.entry_id, event.entry_version)

        return await bus.subscribe([WatchlistChanged.type], on_change)
