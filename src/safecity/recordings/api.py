"""Recordings over HTTP: timelines, playback as fragmented MP4, clips, exports, retention, search, page."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from safecity.accounts.api import require
from safecity.accounts.service import Principal
from safecity.audit import service as audit
from safecity.cameras import service as cameras
from safecity.core.clock import Moment, as_utc
from safecity.core.http import Ctx, DbSession
from safecity.recordings import export, retention, service
from safecity.recordings.models import (
    ClipOut,
    ExportIn,
    ExportManifest,
    PolicyIn,
    PolicyOut,
    ProtectIn,
    RecorderStateOut,
    RetentionReport,
    SearchHit,
    SegmentOut,
    TimelineOut,
    VolumeIn,
    VolumeOut,
)
from safecity.recordings.playback import PlaybackStream
from safecity.web.pages import templates

router = APIRouter(tags=["recordings"])
API = "/api/recordings"

Reader = Annotated[Principal, Depends(require("recordings:read"))]
Exporter = Annotated[Principal, Depends(require("recordings:export"))]
Admin = Annotated[Principal, Depends(require("settings:write"))]
MAX_PLAY = timedelta(hours=1)


@router.get(
    API + "/cameras/{camera_id}/timeline",
    response_model=TimelineOut,
    summary="Recorded spans, gaps and events",
)
def timeline(
    camera_id: str, start: Moment, end: Moment, session: DbSession, principal: Reader
) -> TimelineOut:
    found = service.timeline(session, camera_id=camera_id, start=start, end=end)
    # The events on it name plates and faces seen at that camera.
    audit.record(
        session,
        actor=principal.username,
        action="recordings.timeline",
        target=camera_id,
        detail={"start": start, "end": end},
    )
    return found


@router.get(
    API + "/cameras/{camera_id}/segments", response_model=list[SegmentOut], summary="Indexed segment files"
)
def segments(camera_id: str, start: Moment, end: Moment, session: DbSession, _: Reader) -> list[SegmentOut]:
    start, end = service.check_window(start, end)
    rows = service.segments_between(session, camera_id=camera_id, start=start, end=end)
    return [SegmentOut.model_validate(r) for r in rows]


def _playback(session: DbSession, ctx: Ctx, camera_id: str, at: datetime, seconds: float) -> PlaybackStream:
    at = as_utc(at)
    cameras.get(session, camera_id)
    found = service.segments_between(session, camera_id=camera_id, start=at, end=at + MAX_PLAY)
    stream = PlaybackStream(
        export.pieces(session, found, ctx.settings), at=at, until=at + timedelta(seconds=seconds)
    )
    if stream.run_end is None:
        raise service.no_footage(session, camera_id, at)
    return stream


@router.get(
    API + "/cameras/{camera_id}/locate", summary="Where playback at a moment starts (the key-frame before it)"
)
def locate(camera_id: str, at: Moment, session: DbSession, ctx: Ctx, _: Reader) -> dict[str, object]:
    stream = _playback(session, ctx, camera_id, at, seconds=1)
    stream.start()
    stream.close()
    origin = stream.origin
    return {
        "camera_id": camera_id,
        "at": as_utc(at),
        "origin": origin,
        "offset_seconds": round((as_utc(at) - origin).total_seconds(), 3),
        "run_end": stream.run_end,
        "url": f"{API}/cameras/{camera_id}/play.mp4?at={as_utc(at).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}",
    }


@router.get(
    API + "/cameras/{camera_id}/play.mp4",
    summary="Play footage from a moment (fragmented MP4; video time 0 is the X-Recording-Start header)",
    response_class=StreamingResponse,
)
def play(
    camera_id: str,
    at: Moment,
    session: DbSession,
    ctx: Ctx,
    principal: Reader,
    seconds: Annotated[float, Query(gt=0, le=3600)] = 600,
) -> StreamingResponse:
    stream = _playback(session, ctx, camera_id, at, seconds)
    first = stream.start()
    audit.record(
        session,
        actor=principal.username,
        action="recordings.play",
        target=camera_id,
        detail={"at": as_utc(at), "seconds": seconds},
    )
    headers = {
        "X-Recording-Start": stream.origin.isoformat(),
        "X-Recording-Run-End": stream.run_end.isoformat() if stream.run_end else "",
        "Cache-Control": "no-store",
    }
    return StreamingResponse(stream.chunks(first), media_type="video/mp4", headers=headers)


@router.get(
    API + "/clips", response_model=list[ClipOut], summary="The clips of an alert, violation or incident"
)
def clips(ref: str, session: DbSession, _: Reader) -> list[ClipOut]:
    return [ClipOut.model_validate(c) for c in service.clips_for(session, ref)]


@router.post(
    API + "/exports",
    response_model=ExportManifest,
    status_code=201,
    summary="Export footage to MP4 (audited)",
)
def create_export(body: ExportIn, session: DbSession, ctx: Ctx, principal: Exporter) -> ExportManifest:
    return export.export_to_media(
        ctx,
        session,
        camera_ids=body.cameras,
        start=body.start,
        end=body.end,
        actor=principal.username,
        reason=body.reason,
    )


@router.get(API + "/search", response_model=list[SearchHit], summary="Cameras that recorded a place and time")
def search(
    start: Moment,
    end: Moment,
    session: DbSession,
    principal: Reader,
    district: str | None = None,
    bbox: Annotated[str | None, Query(description="min_lat,min_lon,max_lat,max_lon")] = None,
) -> list[SearchHit]:
    box = service.parse_bbox(bbox) if bbox else None
    hits = service.search(session, start=start, end=end, district=district, bbox=box)
    audit.record(
        session,
        actor=principal.username,
        action="recordings.search",
        target=district or bbox or "",
        detail={"start": start, "end": end, "hits": len(hits)},
    )
    return hits


@router.get(
    API + "/recorders", response_model=list[RecorderStateOut], summary="What each camera's recorder is doing"
)
def recorders(session: DbSession, _: Reader) -> list[RecorderStateOut]:
    return [RecorderStateOut.model_validate(r) for r in service.recorder_states(session)]


@router.post(
    API + "/protections", status_code=201, summary="Keep footage until released (a case, a court order)"
)
def protect(body: ProtectIn, session: DbSession, principal: Exporter) -> dict[str, object]:
    cameras.get(session, body.camera_id)
    hold = service.protect(
        session,
        camera_id=body.camera_id,
        start=body.start,
        end=body.end,
        reason=body.reason,
        ref=body.ref,
        actor=principal.username,
    )
    return {"ref": hold.ref, "camera_id": hold.camera_id, "start": hold.start, "end": hold.end}


@router.delete(API + "/protections/{ref}", summary="Release the footage held under a reference")
def release(ref: str, session: DbSession, principal: Exporter) -> dict[str, int]:
    return {"released": service.release(session, ref=ref, actor=principal.username)}


@router.get(
    API + "/policies", response_model=list[PolicyOut], summary="Retention per camera, district or type"
)
def policies(session: DbSession, _: Reader) -> list[PolicyOut]:
    return [PolicyOut.model_validate(p) for p in service.list_policies(session)]


@router.put(API + "/policies", response_model=PolicyOut, summary="Set the retention of a scope")
def set_policy(body: PolicyIn, session: DbSession, principal: Admin) -> PolicyOut:
    return PolicyOut.model_validate(service.set_policy(session, body, actor=principal.username))


@router.delete(API + "/policies/{scope}", status_code=204, summary="Remove a scope's retention")
def delete_policy(scope: str, session: DbSession, principal: Admin) -> Response:
    service.delete_policy(session, scope, actor=principal.username)
    return Response(status_code=204)


@router.get(API + "/volumes", response_model=list[VolumeOut], summary="Storage volumes, their budget and use")
def volumes(session: DbSession, ctx: Ctx, _: Reader) -> list[VolumeOut]:
    return service.list_volumes(session, ctx.settings)


@router.put(API + "/volumes", response_model=VolumeOut, summary="Add or change a storage volume")
def set_volume(body: VolumeIn, session: DbSession, ctx: Ctx, principal: Admin) -> VolumeOut:
    service.set_volume(session, body, actor=principal.username)
    session.flush()
    return next(v for v in service.list_volumes(session, ctx.settings) if v.name == body.name)


@router.post(API + "/retention/run", response_model=RetentionReport, summary="Apply retention now")
def run_retention(session: DbSession, ctx: Ctx, _: Admin) -> RetentionReport:
    return retention.apply_retention(session, settings=ctx.settings)


@router.get("/recordings", response_class=HTMLResponse, include_in_schema=False)
def recordings_page(request: Request, ctx: Ctx, _: Reader) -> Response:
    return templates.TemplateResponse(request, "recordings_index.html", {"bus": ctx.settings.bus})
