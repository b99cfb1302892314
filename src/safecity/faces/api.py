"""Face watch lists over HTTP: request and approve entries, decide matches, search, and the /watchlists page.

Every change is audited in the service; a change to what matches is committed first and only then
published to the workers, so a worker never holds an entry the database does not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from safecity.accounts.api import require, require_any
from safecity.accounts.permissions import page
from safecity.accounts.service import Principal
from safecity.alerts import service as alerts
from safecity.alerts.models import Alert, AlertOut
from safecity.audit import service as audit
from safecity.core import outbox
from safecity.core.clock import as_utc
from safecity.core.http import Ctx, DbSession
from safecity.core.images import ImageLimits
from safecity.core.params import RowId
from safecity.faces import footage, replication, service
from safecity.faces.models import (
    Candidate,
    EntryDecisionIn,
    EntryOut,
    MatchDecisionIn,
    MatchOut,
    NotificationOut,
    OutcomeIn,
    RecordingHit,
    RejectionStat,
    SnapshotHit,
)

router = APIRouter(tags=["faces"])

PAGE_PERMISSIONS = page("/watchlists", "watchlist:write", "watchlist:approve", "faces:search", "alerts:act")


WatchlistReader = Annotated[Principal, Depends(require_any("watchlist:write", "watchlist:approve"))]
Maker = Annotated[Principal, Depends(require("watchlist:write"))]
Checker = Annotated[Principal, Depends(require("watchlist:approve"))]
Operator = Annotated[Principal, Depends(require("alerts:act"))]
Viewer = Annotated[Principal, Depends(require("alerts:read"))]
Searcher = Annotated[Principal, Depends(require("faces:search"))]


def _read_upload(upload: UploadFile, limits: ImageLimits) -> bytes:
    """Returns an uploaded photo's bytes, reading one byte past the limit so the decoder refuses it."""
    return upload.file.read(limits.max_bytes + 1)


# --- entries -------------------------------------------------------------------------------------


@router.get("/api/faces/entries", response_model=list[EntryOut], summary="Watch-list entries, newest first")
def list_entries(
    session: DbSession,
    principal: WatchlistReader,
    status: str | None = None,
    category: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[EntryOut]:
    rows = service.list_entries(session, status=status, category=category, limit=limit)
    audit.record(
        session,
        actor=principal.username,
        action="faces.list",
        target="watchlist",
        detail={"status": status, "category": category, "shown": len(rows)},
    )
    return [service.view(session, entry) for entry in rows]


@router.get("/api/faces/entries/{entry_id}", response_model=EntryOut, summary="One watch-list entry")
def get_entry(entry_id: str, session: DbSession, principal: WatchlistReader) -> EntryOut:
    entry = service.get_entry(session, entry_id)
    audit.record(session, actor=principal.username, action="faces.view", target=entry.id, detail={})
    return service.view(session, entry)


@router.post(
    "/api/faces/entries",
    response_model=EntryOut,
    status_code=201,
    summary="Request a watch-list entry (a different person must approve it)",
)
def request_entry(
    session: DbSession,
    ctx: Ctx,
    principal: Maker,
    name: Annotated[str, Form(description="Name of the person, or a description.")],
    category: Annotated[str, Form(description="wanted, missing or event.")],
    legal_basis: Annotated[str, Form(description="FIR or warrant number (event order for event lists).")],
    expires_at: Annotated[
        datetime, Form(description="ISO date-time after which the entry never matches (UTC).")
    ],
    photos: Annotated[list[UploadFile], File(description="One or more clear photos, one face each.")],
    case_officer: Annotated[str, Form(description="Who to notify of a missing-person match.")] = "",
    notes: Annotated[str, Form(max_length=1000, description="Notes for the operators.")] = "",
    threshold: Annotated[
        float | None, Form(description="Stricter similarity threshold for this entry.")
    ] = None,
    event_cameras: Annotated[str, Form(description="Event lists: camera ids, comma-separated.")] = "",
    event_start: Annotated[
        datetime | None, Form(description="Event lists: start of the event (UTC).")
    ] = None,
    event_end: Annotated[datetime | None, Form(description="Event lists: end of the event (UTC).")] = None,
) -> EntryOut:
    limits = ImageLimits.from_settings(ctx.settings)
    entry = service.enroll(
        session,
        ctx.media,
        name=name,
        category=category,
        legal_basis=legal_basis,
        requested_by=principal.username,
        photos=[_read_upload(photo, limits) for i, photo in enumerate(photos)],
        # A form's naive date-time is taken to be UTC.
        expires_at=as_utc(expires_at),
        event_cameras=[c for c in event_cameras.split(",") if c.strip()],
        event_start=as_utc(event_start) if event_start else None,
        event_end=as_utc(event_end) if event_end else None,
        case_officer=case_officer.strip() or None,
        threshold=threshold,
        notes=notes,
        limits=limits,
    )
    return service.view(session, entry)


@router.post("/api/faces/entries/{entry_id}/approve", response_model=EntryOut, summary="Approve (checker)")
def approve_entry(entry_id: str, session: DbSession, ctx: Ctx, principal: Checker) -> EntryOut:
    service.approve(session, entry_id, principal.username)
    replication.stage_change(session, entry_id)
    return service.view(session, service.get_entry(session, entry_id))


@router.post(
    "/api/faces/entries/{entry_id}/refuse", response_model=EntryOut, summary="Refuse a pending entry"
)
def refuse_entry(entry_id: str, body: EntryDecisionIn, session: DbSession, principal: Checker) -> EntryOut:
    entry = service.refuse(session, entry_id, actor=principal.username, reason=body.reason)
    return service.view(session, entry)


@router.post(
    "/api/faces/entries/{entry_id}/remove", response_model=EntryOut, summary="Take an entry off the list"
)
def remove_entry(
    entry_id: str, body: EntryDecisionIn, session: DbSession, ctx: Ctx, principal: WatchlistReader
) -> EntryOut:
    service.remove(session, entry_id, actor=principal.username, reason=body.reason)
    replication.stage_change(session, entry_id)
    return service.view(session, service.get_entry(session, entry_id))


# --- matches -------------------------------------------------------------------------------------


@router.get("/api/faces/matches", response_model=list[MatchOut], summary="Watch-list matches, newest first")
def list_matches(
    session: DbSession,
    principal: Viewer,
    entry_id: str | None = None,
    status: Annotated[str | None, Query(pattern="^(pending|confirmed|rejected)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[MatchOut]:
    rows = service.list_matches(session, entry_id=entry_id, status=status, limit=limit)
    # The watch-list page polls the matches: one row per viewer and filter for each stretch of watching.
    audit.record_viewing(
        session,
        actor=principal.username,
        action="faces.matches",
        target=f"entry={entry_id or ''} status={status or ''}",
    )
    return [service.match_view(session, m) for m in rows]


@router.post(
    "/api/faces/matches/{match_id}/decision", response_model=MatchOut, summary="Operator: confirm or reject"
)
def decide_match(
    match_id: str, body: MatchDecisionIn, session: DbSession, ctx: Ctx, principal: Operator
) -> MatchOut:
    match, alert = service.decide(
        session, match_id, decision=body.decision, actor=principal.username, reason=body.reason
    )
    return _announce(session, service.match_view(session, match), alert)


@router.post(
    "/api/faces/matches/{match_id}/outcome",
    response_model=MatchOut,
    summary="Officer on scene: report the outcome",
)
def report_outcome(
    match_id: str, body: OutcomeIn, session: DbSession, ctx: Ctx, principal: Operator
) -> MatchOut:
    match, alert = service.report_outcome(
        session, match_id, outcome=body.outcome.value, actor=principal.username, note=body.note
    )
    return _announce(session, service.match_view(session, match), alert)


@router.get(
    "/api/faces/stats/rejections",
    response_model=list[RejectionStat],
    summary="Rejected matches per entry and camera: where thresholds are wrong",
)
def rejection_stats(session: DbSession, _: Viewer) -> list[RejectionStat]:
    return service.rejection_stats(session)


@router.get(
    "/api/faces/notifications", response_model=list[NotificationOut], summary="Notices to case officers"
)
def notifications(
    session: DbSession, principal: Viewer, recipient: str | None = None, unacknowledged: bool = False
) -> list[NotificationOut]:
    rows = service.list_notifications(session, recipient=recipient, unacknowledged=unacknowledged)
    audit.record_viewing(
        session, actor=principal.username, action="faces.notifications", target=f"recipient={recipient or ''}"
    )
    return [NotificationOut.model_validate(n) for n in rows]


@router.post(
    "/api/faces/notifications/{notification_id}/ack",
    response_model=NotificationOut,
    summary="Mark a notice read",
)
def acknowledge(notification_id: RowId, session: DbSession, principal: Operator) -> NotificationOut:
    notice = service.acknowledge_notification(session, notification_id, actor=principal.username)
    return NotificationOut.model_validate(notice)


# --- searches ------------------------------------------------------------------------------------


@router.post(
    "/api/faces/search", response_model=list[Candidate], summary="Search the watch list by photo (audited)"
)
def search_watchlist(
    session: DbSession,
    ctx: Ctx,
    principal: Searcher,
    photo: Annotated[UploadFile, File(description="A photo with one face.")],
    reason: Annotated[str, Form(description="Why you search, for the audit log.")],
    case_reference: Annotated[str, Form(description="FIR or case number, if any.")] = "",
    k: Annotated[int, Form(ge=1, le=50, description="How many candidates.")] = 5,
) -> list[Candidate]:
    limits = ImageLimits.from_settings(ctx.settings)
    return service.search_watchlist(
        session,
        _read_upload(photo, limits),
        actor=principal.username,
        reason=reason,
        case_reference=case_reference,
        threshold=service.default_threshold(ctx.settings),
        k=k,
        limits=limits,
    )


@router.post(
    "/api/faces/footage-search",
    response_model=list[SnapshotHit],
    summary="Search stored match snapshots for a face (investigators; case reference and reason; audited)",
)
def search_footage(
    session: DbSession,
    ctx: Ctx,
    principal: Searcher,
    photo: Annotated[UploadFile, File(description="A photo with one face.")],
    case_reference: Annotated[str, Form(description="FIR or case number.")],
    reason: Annotated[str, Form(description="Why you search, for the audit log.")],
) -> list[SnapshotHit]:
    limits = ImageLimits.from_settings(ctx.settings)
    return service.search_snapshots(
        session,
        ctx.media,
        _read_upload(photo, limits),
        actor=principal.username,
        case_reference=case_reference,
        reason=reason,
        min_similarity=service.default_threshold(ctx.settings),
        limits=limits,
    )


@router.post(
    "/api/faces/recordings-search",
    response_model=list[RecordingHit],
    summary="Search recorded footage for a face (investigators; case reference and reason; audited)",
)
def search_recorded_footage(
    session: DbSession,
    ctx: Ctx,
    principal: Searcher,
    photo: Annotated[UploadFile, File(description="A photo with one face.")],
    case_reference: Annotated[str, Form(description="FIR or case number.")],
    reason: Annotated[str, Form(description="Why you search, for the audit log.")],
    cameras: Annotated[str, Form(description="Camera ids, comma-separated.")],
    start: Annotated[datetime, Form(description="Start of the window (ISO 8601).")],
    end: Annotated[datetime, Form(description="End of the window (ISO 8601).")],
) -> list[RecordingHit]:
    return footage.search_recordings(
        session,
        ctx.settings,
        ctx.media,
        _read_upload(photo, ImageLimits.from_settings(ctx.settings)),
        actor=principal.username,
        case_reference=case_reference,
        reason=reason,
        camera_ids=[c.strip() for c in cameras.split(",") if c.strip()],
        start=start,
        end=end,
        threshold=service.default_threshold(ctx.settings),
    )


def _announce(session: Session, out: MatchOut, alert: Alert | None) -> MatchOut:
    """Tells the live pages the alert changed, once the decision commits (they must read it committed)."""
    if alert is not None:
        outbox.stage(session, alerts.changed_event(AlertOut.model_validate(alert)))
    return out


# --- page ----------------------------------------------------------------------------------------


@router.get("/watchlists", response_class=HTMLResponse, include_in_schema=False)
def watchlists_page(request: Request, ctx: Ctx) -> Response:
    """The watch-list page: entries with photos, requests, approvals, matches, rejection stats, search."""
    from safecity.web.pages import render_page

    return render_page(request, ctx, "faces_watchlists.html", PAGE_PERMISSIONS)
