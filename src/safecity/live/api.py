"""Live video over HTTP: the video socket, the last moments as MP4, snapshots to evidence, wall layouts.

`/ws/video/{camera_id}?variant=sub|main` opens with the session cookie (or a bearer token, for tools)
from SafeCity's own pages only, admits `cameras:read`, audits the watching (the camera's stream followed
meanwhile, `sockets.py`), and sends the camera's live messages (`protocol.py`) as binary frames: the
init segment and one fMP4 fragment per frame, a JPEG now and then for a codec the browser cannot play,
and STATE messages that say why there is no picture. The wall asks for `sub` (the camera's sub-stream
when it has one, else its main stream).
`/ws/video` (no camera) is a page's one socket for all its tiles, a channel per camera
(`sockets.py`): the wall uses it, so a tile switched to another camera starts at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, WebSocket
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.websockets import WebSocketState

from safecity.accounts.api import SESSION_COOKIE, require
from safecity.accounts.permissions import page
from safecity.accounts.service import Principal
from safecity.audit import service as audit
from safecity.cameras import service as cameras
from safecity.core import security
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.errors import NotFound, SafeCityError, Unavailable
from safecity.core.http import Ctx, DbSession
from safecity.live import protocol, service, sockets
from safecity.live.feed import LiveFeeds, Viewer
from safecity.live.models import LayoutIn, LayoutOut
from safecity.recordings.playback import PlaybackStream

log = logging.getLogger(__name__)

router = APIRouter(tags=["live video"])
Watcher = Annotated[Principal, Depends(require("cameras:read"))]
Replayer = Annotated[Principal, Depends(require("recordings:read"))]
LIVE_PAGE = page("/live/{camera_id}", "cameras:read")

RECHECK_S = sockets.RECHECK_S
WAITING_S = sockets.WAITING_S
MAX_REPLAY_S = 300.0


def feeds_of(ctx: Context) -> LiveFeeds:
    """Returns this process's live feeds (made on first use)."""
    if ctx.video is None:
        ctx.video = LiveFeeds(ctx.bus)
    feeds: LiveFeeds = ctx.video
    return feeds


# --- the video socket -----------------------------------------------------------------------------------


async def _admit(websocket: WebSocket, ctx: Context) -> tuple[Principal, str] | None:
    """Returns who opens a video socket and their token; closes the socket (and returns None) if refused."""
    if security.foreign_origin(websocket) is not None:
        await websocket.close(code=4403, reason="live video is for SafeCity's own pages")
        return None
    token = security.bearer_token(websocket) or websocket.cookies.get(SESSION_COOKIE, "")
    if not token:
        await websocket.close(code=4401, reason="sign in first")
        return None
    try:
        principal = await asyncio.to_thread(sockets.watcher, ctx, token)
    except SafeCityError as exc:
        await websocket.close(code=4401, reason=exc.message.encode()[:120].decode(errors="ignore"))
        return None
    if not principal.can("cameras:read"):
        await websocket.close(code=4403, reason="your role may not watch cameras")
        return None
    return principal, token


@router.websocket("/ws/video")
async def video_link(websocket: WebSocket) -> None:
    """A page's one socket for all its tiles: a channel per camera watched (`live/sockets.py`)."""
    ctx: Context = websocket.app.state.ctx
    admitted = await _admit(websocket, ctx)
    if admitted is None:
        return
    await websocket.accept()
    principal, token = admitted
    try:
        await sockets.VideoLink(websocket, ctx, feeds_of(ctx), principal, token).run()
    finally:
        if websocket.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close()


@router.websocket("/ws/video/{camera_id}")
async def video_socket(websocket: WebSocket, camera_id: str, variant: str = "main") -> None:
    """One camera's live video for one tile (see the module's description for what it sends)."""
    ctx: Context = websocket.app.state.ctx
    # Read while the session is looked up: a camera with video is then followed while it is checked.
    known = asyncio.create_task(_known_video(websocket, ctx).get())
    admitted = await _admit(websocket, ctx)
    if admitted is None:
        known.cancel()
        return
    principal, token = admitted
    feeds = feeds_of(ctx)
    try:
        intro, viewer = await sockets.follow_when_admitted(
            ctx, feeds, camera_id, variant, principal.username, await known
        )
    except NotFound as exc:
        await websocket.close(code=4404, reason=exc.message.encode()[:120].decode(errors="ignore"))
        return
    except sockets.NoVideo as exc:
        await websocket.accept()
        await websocket.send_bytes(protocol.state_message("no_stream", exc.reason, **exc.intro))
        await websocket.close(code=1000)
        return
    except sockets.NotAudited as exc:
        log.exception("watching camera %s not audited: refused", camera_id)
        await websocket.accept()
        await websocket.send_bytes(protocol.state_message("connecting", "", **exc.intro))
        await websocket.close(code=1011, reason="the watching could not be audited; try again")
        return
    try:
        await websocket.accept()
        await websocket.send_bytes(protocol.state_message("connecting", "", **intro))
        await sockets.until_one_ends(
            _pump(websocket, viewer), _drain(websocket), _watch(websocket, ctx, token, viewer)
        )
    finally:
        await feeds.leave(viewer)
        if websocket.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close()


def _known_video(websocket: WebSocket, ctx: Context) -> sockets.KnownVideo:
    """Returns this app's list of the cameras with video (made on first use)."""
    state = websocket.app.state
    if getattr(state, "known_video", None) is None:
        state.known_video = sockets.KnownVideo(ctx)
    known: sockets.KnownVideo = state.known_video
    return known


async def _pump(websocket: WebSocket, viewer: Viewer) -> None:
    """Sends the viewer's messages; a stalled network blocks this socket only (its queue drops its own)."""
    with contextlib.suppress(Exception):
        while True:
            await viewer.wake.wait()
            while (message := viewer.take()) is not None:
                await websocket.send_bytes(message)


async def _drain(websocket: WebSocket) -> None:
    with contextlib.suppress(Exception):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


async def _watch(websocket: WebSocket, ctx: Context, token: str, viewer: Viewer) -> None:
    """Says why when no picture comes, and closes the socket when its session ends."""
    started = checked = time.monotonic()
    told = False
    while True:
        await asyncio.sleep(1.0)
        now = time.monotonic()
        if not told and viewer.media_sent == 0 and now - started >= WAITING_S:
            told = True
            health = await asyncio.to_thread(sockets.camera_health, ctx, viewer.camera_id)
            detail = f"no picture from the camera for {WAITING_S:.0f} s"
            viewer.offer(protocol.state_message("waiting", detail, **health))
        if now - checked >= RECHECK_S:
            checked = now
            try:
                await asyncio.to_thread(sockets.watcher, ctx, token)
            except SafeCityError as exc:
                await websocket.close(code=4401, reason=f"signed out: {exc.message}"[:120])
                return
            except Exception:  # the database is away: the session was good a moment ago, look again
                log.warning("video socket of camera %s: session re-check failed", viewer.camera_id)


# --- the single camera view -----------------------------------------------------------------------------


@router.get("/live/{camera_id}", response_class=HTMLResponse, include_in_schema=False)
def live_page(request: Request, ctx: Ctx, camera_id: str) -> Response:
    """One camera: live main stream, instant replay, the recording at any time, snapshot to evidence."""
    from safecity.web.pages import render_page

    return render_page(request, ctx, "live.html", LIVE_PAGE)


@router.get(
    "/api/live/cameras/{camera_id}/replay.mp4",
    summary="The camera's last moments, up to now (fragmented MP4; video time 0 is X-Recording-Start)",
    response_class=StreamingResponse,
)
def replay(
    camera_id: str,
    session: DbSession,
    ctx: Ctx,
    principal: Replayer,
    seconds: Annotated[float, Query(gt=0, le=MAX_REPLAY_S)] = 30,
) -> StreamingResponse:
    """Instant replay: the recorded segments and the one still being written, from `seconds` ago."""
    camera = cameras.get(session, camera_id)
    now = utcnow()
    at = now - timedelta(seconds=seconds)
    pieces = service.recent_pieces(session, camera, ctx.settings, since=at)
    stream = PlaybackStream(pieces, at=max(at, pieces[0].start) if pieces else at, until=now)
    if stream.run_end is None:
        raise NotFound(
            f"camera {camera_id} recorded nothing in the last {seconds:g} s",
            hint="is its recording on? the recordings page shows what each recorder is doing",
        )
    first = stream.start()
    audit.record(
        session,
        actor=principal.username,
        action="recordings.play",
        target=camera_id,
        detail={"at": stream.origin, "seconds": seconds, "replay": True},
    )
    headers = {"X-Recording-Start": stream.origin.isoformat(), "Cache-Control": "no-store"}
    return StreamingResponse(stream.chunks(first), media_type="video/mp4", headers=headers)


@router.post(
    "/api/live/cameras/{camera_id}/snapshots",
    status_code=201,
    summary="Keep the camera's live picture now as evidence (stored, owned, audited)",
)
async def snapshot(camera_id: str, request: Request, principal: Replayer) -> dict[str, object]:
    """Stores the newest frame of the camera's main stream; 503 when no picture comes within a few seconds."""
    ctx: Context = request.app.state.ctx

    def camera_exists() -> None:
        with ctx.db.session() as session:
            cameras.get(session, camera_id)

    await asyncio.to_thread(camera_exists)
    feed = await feeds_of(ctx).grab(camera_id, "main")
    found = await asyncio.to_thread(service.latest_frame, feed)
    if found is None:
        raise Unavailable(
            f"no picture from camera {camera_id} to keep",
            hint="the camera is offline or not held by any worker; its health on the wall says why",
        )
    picture, ext, frame_ms = found

    def keep() -> dict[str, object]:
        with ctx.db.session() as session:
            camera = cameras.get(session, camera_id)
            return service.take_snapshot(
                session,
                ctx.media,
                camera=camera,
                picture=picture,
                ext=ext,
                frame_ms=frame_ms,
                actor=principal.username,
            )

    return await asyncio.to_thread(keep)


# --- wall layouts ----------------------------------------------------------------------------------------


@router.get(
    "/api/wall/layouts", response_model=list[LayoutOut], summary="Your wall layouts and the shared ones"
)
def layouts(session: DbSession, principal: Watcher, room: str | None = None) -> list[LayoutOut]:
    rows = service.layouts_for(session, principal.username, room=room)
    return [LayoutOut.model_validate(r) for r in rows]


@router.put("/api/wall/layouts/{name}", response_model=LayoutOut, summary="Save one of your wall layouts")
def save_layout(name: str, body: LayoutIn, session: DbSession, principal: Watcher) -> LayoutOut:
    row = service.save_layout(session, owner=principal.username, name=name, data=body)
    return LayoutOut.model_validate(row)


@router.delete("/api/wall/layouts/{name}", status_code=204, summary="Remove one of your wall layouts")
def delete_layout(name: str, session: DbSession, principal: Watcher) -> Response:
    service.delete_layout(session, owner=principal.username, name=name)
    return Response(status_code=204)
