"""Bus handlers of the faces domain: matches become alerts, alert decisions reach the matches, lists expire.

The centre checks every match again against the entry as it stands (approved, unexpired, event scope,
the entry's own threshold): a worker with a stale copy cannot put a person in front of an operator
for an entry that no longer allows it, and the crop of such a refused match is deleted.
"""

from __future__ import annotations

import logging
from functools import partial

from sqlalchemy.orm import Session

from safecity.alerts import service as alerts
from safecity.audit import service as audit
from safecity.cameras import service as cameras
from safecity.core.consumers import consume_each, handle_now
from safecity.core.context import Context
from safecity.core.db import after_commit
from safecity.core.errors import NotFound
from safecity.core.events import AlertChanged, Event, FaceMatch
from safecity.faces import replication, service
from safecity.faces.models import WatchlistEntry

log = logging.getLogger(__name__)

#: How often the centre marks entries past their expiry as expired and tells the workers.
EXPIRY_SWEEP_SECONDS = 60.0


MATCHES = "faces-matches"
ALERT_SYNC = "faces-alert-sync"


def handle_match(ctx: Context, event: FaceMatch) -> None:
    """Handles one face match now, exactly once (tests and tools; the bus batches them)."""
    handle_now(ctx, MATCHES, partial(record_match, ctx), [event])


def record_match(ctx: Context, session: Session, event: Event) -> None:
    """Stores an admissible match, raises its alert (notifying a missing person's case officer)."""
    if not isinstance(event, FaceMatch):
        return
    entry = session.get(WatchlistEntry, event.entry_id)
    admissible = entry is not None and _in_scope(session, entry, event)
    result = service.record_match(session, event, scope_ok=admissible)
    if result is None:
        audit.record(
            session,
            actor="system",
            action="faces.match_refused",
            target=event.entry_id,
            detail={"camera": event.camera_id, "reason": "entry not active or out of scope when seen"},
        )
        # Not a match of an active entry: the person is a passer-by, so the images must not be kept.
        refs = [ref for ref in (event.crop_ref, event.frame_ref) if ref]

        def forget() -> None:
            for ref in refs:
                ctx.media.delete(ref)

        after_commit(session, forget)
        log.warning(
            "refused face match %s for entry %s (not active or out of scope)", event.key, event.entry_id
        )
        return
    _match, alert, changed = result
    after_commit(session, lambda: ctx.count("face_matches"))
    if changed:
        alerts.announce(ctx, session, alert)


def handle_alert_change(ctx: Context, event: AlertChanged) -> None:
    """Handles one alert announcement now (tests and tools; the bus batches them)."""
    handle_now(ctx, ALERT_SYNC, sync_alert, [event])


def sync_alert(session: Session, event: Event) -> None:
    """Marks the pending matches of a face alert confirmed or dismissed on the alert queue."""
    if not isinstance(event, AlertChanged):
        return
    if event.kind != "face_match" or event.status not in ("confirmed", "dismissed"):
        return
    service.sync_alert_decision(session, event.alert_id, event.status)


def expire_entries(ctx: Context) -> list[str]:
    """Expires the entries past their date and tells every worker to drop them; returns their ids.

    Then deletes the photos and embeddings of entries closed longer than
    `watchlist_closed_retention_days` (a batch a run; the rest go on the next runs).
    """
    with ctx.db.session() as session:
        expired = service.expire_due(session)
        for entry_id in expired:
            replication.stage_change(session, entry_id)
    with ctx.db.session() as session:
        service.purge_closed(session, keep_days=ctx.settings.watchlist_closed_retention_days)
    return expired


async def register(ctx: Context) -> None:
    """Subscribes the faces handlers and schedules the expiry sweep."""
    await consume_each(ctx, MATCHES, [FaceMatch.type], partial(record_match, ctx))
    await consume_each(ctx, ALERT_SYNC, [AlertChanged.type], sync_alert)
    ctx.jobs.every("faces.expire_entries", EXPIRY_SWEEP_SECONDS, partial(expire_entries, ctx), at_start=True)


def _in_scope(session: Session, entry: WatchlistEntry, event: FaceMatch) -> bool:
    scope = replication.EntryScope.of(entry)
    if not scope.applies(event.camera_id, event.at):
        return False
    camera_threshold = None
    if event.camera_id:
        try:
            camera_threshold = cameras.get(session, event.camera_id).settings.face_threshold
        except NotFound:
            camera_threshold = None  # an unregistered camera still answers to the entry's own threshold
    return event.similarity >= scope.threshold_for(float(camera_threshold or 0.0))
