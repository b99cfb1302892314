"""Retention of stored media: each kind of claim keeps its object for its class's days, then it goes.

Every claim (`media_owners`) belongs to a retention class named after its kind, with a duration from
`media_retention_days` (or the default below; plate reads follow `plate_read_retention_days`, as
their purge does). The sweep drops claims past their class, then removes each object no live claim
keeps, with an audit entry for every batch it removes. A hold is a claim that never expires, so
evidence under a legal hold, an open appeal or a case stays until the hold is released.

An object nobody claims is removed only after `media_orphan_grace_hours`, counted twice over: its
file must be that old (storing the same bytes again touches it), and an earlier sweep must have seen
it unclaimed that long ago. The file is then set aside, the claims read once more, and only what is
still unclaimed is removed; anything claimed or stored again meanwhile goes back. One sweep runs at a
time in the whole city (a run lease); a second one gets a Conflict naming the first.

    report = sweep(ctx.db, ctx.media, ctx.settings, dry_run=True)   # what would go, nothing changed
    figures = store_report(ctx.db, ctx.media, ctx.settings)           # the store's size by class
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Table, delete, func, select
from sqlalchemy.orm import Session

from safecity.accounts.permissions import MEDIA
from safecity.audit import service as audit
from safecity.core.clock import utcnow
from safecity.core.db import Database, insert_many
from safecity.core.errors import InvalidInput
from safecity.core.jobs import exclusive
from safecity.core.media import MediaStore, StoredObject
from safecity.core.metrics import MEDIA_BYTES, MEDIA_OBJECTS
from safecity.evidence import service
from safecity.evidence.models import (
    ClassFigure,
    MediaHold,
    MediaOwner,
    MediaSweep,
    MediaUnclaimed,
    StoreReport,
    SweepReport,
)
from safecity.settings import Settings

SWEEP = "media.sweep"
BATCH = 1000
UNCLAIMED = "unclaimed"
# Days a claim of each kind keeps its object; 0: as long as the claiming row lives (or the hold lasts).
DEFAULT_DAYS: dict[str, int] = {
    # A violation's pictures prove its challan through payment, appeal and any court hearing.
    "violation": 1095,
    "challan_notice": 1095,
    "watchlist_photo": 0,
    "face_match": 180,
    "alert": 365,
    "camera_fault": 90,
    "clip": 90,
    "evidence_export": 365,
    service.HOLD: 0,
}


def retention_days(settings: Settings) -> dict[str, int]:
    """Returns each retention class's days (0: while its row lives); raises on an unknown class."""
    overrides = settings.media_retention_days
    unknown = sorted(set(overrides) - set(MEDIA))
    if unknown:
        raise InvalidInput(
            f"media_retention_days names {unknown}, which are not kinds of stored media",
            hint=f"use some of {sorted(set(MEDIA) - {service.HOLD, 'plate_read'})}",
        )
    if service.HOLD in overrides:
        raise InvalidInput(
            "a hold keeps its objects until it is released", hint="remove 'hold' from media_retention_days"
        )
    if "plate_read" in overrides:
        raise InvalidInput(
            "plate reads are kept for plate_read_retention_days",
            hint="set that instead of media_retention_days",
        )
    days = {kind: DEFAULT_DAYS.get(kind, 0) for kind in MEDIA}
    days["plate_read"] = settings.plate_read_retention_days
    days.update(overrides)
    return days


def class_of(kinds: Iterable[str], days: dict[str, int]) -> str:
    """Returns the class an object counts under: the claim that keeps it longest (a hold first)."""
    return max(kinds, key=lambda k: (k == service.HOLD, math.inf if days.get(k, 0) == 0 else days[k], k))


class _Figures:
    """The store's objects and bytes by class, added up during one walk."""

    def __init__(self, days: dict[str, int]) -> None:
        self.days = days
        self.classes: dict[str, ClassFigure] = {
            kind: ClassFigure(name=kind, retention_days=d or None) for kind, d in days.items()
        }
        self.unclaimed = ClassFigure(name=UNCLAIMED, retention_days=None)

    def add(self, obj: StoredObject, kinds: set[str] | None) -> None:
        figure = self.classes[class_of(kinds, self.days)] if kinds else self.unclaimed
        figure.objects += 1
        figure.bytes += obj.bytes

    def report(self, at: datetime, open_holds: int) -> StoreReport:
        classes = sorted(self.classes.values(), key=lambda f: (-f.bytes, f.name))
        objects = sum(f.objects for f in classes) + self.unclaimed.objects
        size = sum(f.bytes for f in classes) + self.unclaimed.bytes
        for figure in [*classes, self.unclaimed]:
            MEDIA_BYTES.labels(figure.name).set(figure.bytes)
            MEDIA_OBJECTS.labels(figure.name).set(figure.objects)
        return StoreReport(
            at=at,
            objects=objects,
            bytes=size,
            classes=classes,
            unclaimed_objects=self.unclaimed.objects,
            unclaimed_bytes=self.unclaimed.bytes,
            open_holds=open_holds,
        )


def _batches(objects: Iterator[StoredObject], size: int) -> Iterator[list[StoredObject]]:
    while chunk := list(itertools.islice(objects, size)):
        yield chunk


def _open_holds(session: Session) -> int:
    return int(
        session.scalar(select(func.count()).select_from(MediaHold).where(MediaHold.released_at.is_(None)))
        or 0
    )


def store_report(db: Database, store: MediaStore, settings: Settings) -> StoreReport:
    """Walks the store and returns its objects and bytes by retention class, changing nothing."""
    figures = _Figures(retention_days(settings))
    for chunk in _batches(store.scan(), BATCH):
        with db.session() as session:
            kinds = service.claimed(session, [o.ref for o in chunk])
        for obj in chunk:
            figures.add(obj, kinds.get(obj.ref))
    with db.session() as session:
        return figures.report(utcnow(), _open_holds(session))


def expire_claims(session: Session, days: dict[str, int], *, now: datetime, dry_run: bool) -> dict[str, int]:
    """Drops (dry: counts) the claims past their class's retention; returns how many, by class."""
    expired: dict[str, int] = {}
    for kind, keep in sorted(days.items()):
        if keep <= 0 or kind == service.HOLD:
            continue
        cutoff = now - timedelta(days=keep)
        if dry_run:
            count = int(
                session.scalar(
                    select(func.count())
                    .select_from(MediaOwner)
                    .where(MediaOwner.kind == kind, MediaOwner.at < cutoff)
                )
                or 0
            )
        else:
            count = service.forget(session, kind, before=cutoff)
        if count:
            expired[kind] = count
    return expired


def sweep(
    db: Database,
    store: MediaStore,
    settings: Settings,
    *,
    dry_run: bool = False,
    actor: str = "retention",
    now: datetime | None = None,
) -> SweepReport:
    """Drops expired claims and removes unclaimed objects past the grace (audited); one sweep at a time."""
    now = now or utcnow()
    started = time.perf_counter()
    days = retention_days(settings)
    report = SweepReport(dry_run=dry_run, started_at=now)
    with exclusive(db, SWEEP) as lease:
        with db.session() as session:
            report.claims_expired = expire_claims(session, days, now=now, dry_run=dry_run)
            if report.claims_expired and not dry_run:
                audit.record(
                    session,
                    actor=actor,
                    action="media.claims_expired",
                    detail={
                        "by_class": report.claims_expired,
                        "days": {k: days[k] for k in report.claims_expired},
                    },
                )
        grace = timedelta(hours=settings.media_orphan_grace_hours)
        figures = _Figures(days)
        # A sweep that died between setting files aside and removing them left them aside: judged again.
        for chunk in _batches(store.scan(restore_aside=not dry_run), BATCH):
            lease.renew()
            _sweep_batch(
                db,
                store,
                chunk,
                now=now,
                grace=grace,
                dry_run=dry_run,
                actor=actor,
                report=report,
                figures=figures,
            )
        with db.session() as session:
            report.store = figures.report(utcnow(), _open_holds(session))
            report.seconds = round(time.perf_counter() - started, 3)
            if not dry_run:
                session.add(
                    MediaSweep(
                        started_at=now,
                        finished_at=utcnow(),
                        actor=actor,
                        dry_run=False,
                        report=report.model_dump(mode="json"),
                    )
                )
    return report


def _sweep_batch(
    db: Database,
    store: MediaStore,
    chunk: Sequence[StoredObject],
    *,
    now: datetime,
    grace: timedelta,
    dry_run: bool,
    actor: str,
    report: SweepReport,
    figures: _Figures,
) -> None:
    stale_before = now - grace
    report.examined += len(chunk)
    report.examined_bytes += sum(o.bytes for o in chunk)
    refs = [o.ref for o in chunk]
    due: list[StoredObject] = []
    with db.session() as session:
        kinds = service.claimed(session, refs)
        seen: dict[str, datetime] = {
            ref: at
            for ref, at in session.execute(
                select(MediaUnclaimed.ref, MediaUnclaimed.seen_at).where(MediaUnclaimed.ref.in_(refs))
            )
        }
        sightings: list[dict[str, object]] = []
        for obj in chunk:
            if obj.ref in kinds:
                figures.add(obj, kinds[obj.ref])
                continue
            first = seen.get(obj.ref)
            if obj.mtime < stale_before.timestamp() and (first or now) <= stale_before:
                due.append(obj)
                continue
            report.waiting += 1
            figures.add(obj, None)
            if first is None:
                sightings.append({"ref": obj.ref, "seen_at": now})
        if not dry_run:
            reclaimed = [ref for ref in seen if ref in kinds]
            if reclaimed:
                session.execute(delete(MediaUnclaimed).where(MediaUnclaimed.ref.in_(reclaimed)))
            if sightings:
                table = MediaUnclaimed.__table__
                assert isinstance(table, Table)
                insert_many(session, table, sightings, skip_conflicts_on=["ref"])
    if dry_run:
        report.removed += len(due)
        report.removed_bytes += sum(o.bytes for o in due)
        return
    _remove(
        db, store, due, stale_before=stale_before, grace=grace, actor=actor, report=report, figures=figures
    )


def _remove(
    db: Database,
    store: MediaStore,
    due: Sequence[StoredObject],
    *,
    stale_before: datetime,
    grace: timedelta,
    actor: str,
    report: SweepReport,
    figures: _Figures,
) -> None:
    """Sets files aside, reads their claims once more, audits and removes what is still unclaimed."""
    aside: dict[str, int] = {}
    for obj in due:
        size = store.set_aside(obj.ref, stale_before=stale_before.timestamp())
        if size is None:
            report.kept_reclaimed += 1  # stored again since the look (or gone already)
        else:
            aside[obj.ref] = size
    if not aside:
        return
    try:
        with db.session() as session:
            kinds = service.claimed(session, list(aside))
            gone = {ref: size for ref, size in aside.items() if ref not in kinds}
            if gone:
                session.execute(delete(MediaUnclaimed).where(MediaUnclaimed.ref.in_(list(gone))))
                # Written before the files go: a crash after it leaves files that the next sweep removes
                # again, never a removal without its entry.
                audit.record(
                    session,
                    actor=actor,
                    action="media.delete",
                    target=f"{len(gone)} objects",
                    detail={
                        "reason": "no row claims them",
                        "grace_hours": grace.total_seconds() / 3600,
                        "objects": len(gone),
                        "bytes": sum(gone.values()),
                        "refs": sorted(gone),
                    },
                )
    except BaseException:
        for ref in aside:
            store.put_back(ref)
        raise
    for ref, size in aside.items():
        if ref in gone:
            store.discard_aside(ref)
            report.removed += 1
            report.removed_bytes += size
        else:
            store.put_back(ref)
            report.kept_reclaimed += 1
            figures.add(StoredObject(ref, size, 0.0), kinds[ref])


def last_sweep(session: Session) -> MediaSweep | None:
    """Returns the newest sweep that changed the store (dry runs are not kept)."""
    return session.scalars(select(MediaSweep).order_by(MediaSweep.id.desc()).limit(1)).first()


def media_summary(db: Database) -> dict[str, object] | None:
    """Returns the store's size and the last sweep's outcome, for the dashboard (None before any sweep)."""
    with db.session() as session:
        last = last_sweep(session)
        if last is None:
            return None
        store = last.report.get("store") or {}
        return {
            "swept_at": last.finished_at,
            "objects": store.get("objects", 0),
            "bytes": store.get("bytes", 0),
            "unclaimed_objects": store.get("unclaimed_objects", 0),
            "removed": last.report.get("removed", 0),
            "removed_bytes": last.report.get("removed_bytes", 0),
            "open_holds": _open_holds(session),
        }
