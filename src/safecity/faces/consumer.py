"""Bus handlers of the faces domain: matches become alerts, alert decisions reach the matches, lists expire.

The centre checks every match again against the entry as it stands (approved, unexpired, event scope,
the entry's own threshold): a worker with a stale copy cannot put a person in front of an operator
for an entry that no longer allows it, and the crop of such a refused match is deleted.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.orm import Session

from safecity.alerts import service as alerts
from safecity.audit import service as audit
from safecity.cameras import service as cameras
from safecity.core.context import Context
from safecity.core.db import claim_event
from safecity.core.errors import NotFound
from safecity.core.events import AlertChanged, Event, FaceMatch
from safecity.faces import replication, service
from safecity.faces.models import WatchlistEntry

log = logging.getLogger(__name__)

#: How often the centre marks entries past their expiry as expired and tells the workers.
EXPIRY_SWEEP_SECONDS = 60.0


def handle_match(ctx: Context, event: FaceMatch) -> None:
    """Stores an admissible match, raises its alert (notifying a missing person's case officer)."""
    with ctx.db.session() as session:
        if not claim_event(session, "faces-matches", event.key):
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
    if result is None:
        # Not a match of an active entry: the person is a passer-by, so the images must not be kept.
        for ref in (event.crop_ref, event.frame_ref):
            if ref:
                ctx.media.delete(ref)
        log.warning(
            "refused face match %s for entry %s (not active or out of scope)", event.key, event.entry_id
        )
        return
    _match, alert, changed = result
    ctx.count("face_matches")
    if changed:
        alerts.announce(ctx, alert)


def handle_alert_change(ctx: Context, event: AlertChanged) -> None:
    """Marks the pending matches of a face alert confirmed or dismissed on the alert queue."""
    if event.kind != "face_match" or event.status not in ("confirmed", "dismissed"):
        return
    with ctx.db.session() as session:
        if not claim_event(session, "faces-alert-sync", event.key):
            return
        service.sync_alert_decision(session, event.alert_id, event.status)


async def sweep_expired(ctx: Context) -> list[str]:
    """Expires the entries past their date and tells every worker to drop them; returns their ids."""

    def expire() -> list[str]:
        with ctx.db.session() as session:
            return service.expire_due(session)

    expired = await asyncio.to_thread(expire)
    for entry_id in expired:
        await replication.publish_change(ctx, entry_id)
    return expired


async def register(ctx: Context) -> None:
    """Subscribes the faces handlers and starts the expiry sweep."""

    def on_match(event: Event) -> None:
        if isinstance(event, FaceMatch):
            handle_match(ctx, event)

    def on_alert(event: Event) -> None:
        if isinstance(event, AlertChanged):
            handle_alert_change(ctx, event)

    await ctx.bus.subscribe([FaceMatch.type], on_match, durable="faces-matches")
    await ctx.bus.subscribe([AlertChanged.type], on_alert, durable="faces-alert-sync")

    async def sweep_forever() -> None:
        while True:
            try:
                await sweep_expired(ctx)
            except Exception:  # a failed sweep is retried next time; matching already stopped at expiry
                log.exception("watch-list expiry sweep failed")
            await asyncio.sleep(EXPIRY_SWEEP_SECONDS)

    task = asyncio.create_task(sweep_forever(), name="faces:expiry-sweep")
    _sweeps.add(task)  # keeps a reference, so the loop does not lose the task
    task.add_done_callback(_sweeps.discard)


_sweeps: set[asyncio.Task[None]] = set()


def _in_scope(session: Session, entry: WatchlistEntry, event: FaceMatch) -> bool:
    scope = replication.EntryScope.of(entry)
    if not scope.applies(event.camera_id, event.at):
        return False
    camera_threshold = None
    if event.camera_id:
        try:
            camera_threshold = (cameras.get(session, event.camera_id).analysis or {}).get("face_threshold")
        except NotFound:
            camera_threshold = None  # an unregistered camera still answers to the entry's own threshold
    return event.similarity >= scope.threshold_for(float(camera_threshold or 0.0))
