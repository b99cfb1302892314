"""The video sockets' shared steps, and the page's one socket for all its tiles (`/ws/video`).

A wall of 16 tiles used to open 16 sockets, and a tile switched to another camera opened a new one: a
TCP connection, a WebSocket handshake and the session looked up again before the first byte of video.
A page's link is one socket, opened once, over which each tile watches a camera on a channel of its
own: the page sends `{"watch": 3, "camera": "cam-17", "variant": "sub"}` (text) to start channel 3
and `{"leave": 3}` to end it, and receives every message of `protocol.py` behind the 4-byte channel
number it belongs to. Each channel has its own bounded queue (`feed.Viewer`), drained in turn, so a
camera with a large key-frame does not starve the others, and what a slow network cannot take is
dropped per channel, never held up for the camera's other viewers or its recorder.

A command the server cannot act on is answered with a text message `{"error": "…"}`; a camera that
does not exist, has no stream or may not be watched is answered on its channel with a STATE saying
so (`refused`, `no_stream`), and the channel ends.

A switched tile's first picture does not wait for its camera to be checked: the link reads once which
cameras have video (`cameras.watchable`, again with each session re-check), and a channel for one of
them starts following its stream at once, while the camera is looked up and the watching audited (one
transaction, `admit_watching`). Nothing of that stream is sent until the check passes: the channel's
viewer is attached only then, so a camera refused by the check sends no byte, however early its
stream arrived; the check, not the list, decides. The single camera view's socket
(`/ws/video/{camera}`, `api.py`) does the same through the same step (`follow_when_admitted`): it reads
which cameras have video while its session is looked up (one list per process, `KnownVideo`, read
at most every RECHECK_S), and sends nothing of the stream until the check passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket

from safecity.accounts import service as accounts
from safecity.accounts.service import Principal
from safecity.audit import service as audit
from safecity.cameras import service as cameras
from safecity.cameras.models import Camera
from safecity.core.context import Context
from safecity.core.errors import NotFound, SafeCityError
from safecity.live import protocol
from safecity.live.feed import LiveFeeds, Viewer

log = logging.getLogger(__name__)

CHANNEL = struct.Struct(">I")
MAX_CHANNELS = 64  # a page: a 4x4 wall and a few being switched in
RECHECK_S = 30.0
WAITING_S = 5.0


# --- what both sockets do -------------------------------------------------------------------------


def watcher(ctx: Context, token: str) -> Principal:
    """Returns who the session (or bearer token) is; raises SafeCityError when it is not valid."""
    with ctx.db.session() as session:
        return accounts.principal_for_token(session, token)


def _intro(camera: Camera, variant: str) -> dict[str, Any]:
    """Returns what a tile shows before the first picture: the camera's health and streams."""
    has_sub = bool(camera.substream_url)
    return {
        "name": camera.name,
        "enabled": camera.enabled,
        "has_stream": bool(camera.stream_url),
        "variant": _variant(variant, has_sub),
        "substream": has_sub,
        "health_state": camera.health_state,
        "health_detail": camera.health_detail,
        "health_since": camera.health_since.isoformat() if camera.health_since else None,
    }


def _variant(asked: str, has_sub: bool) -> str:
    """The stream a viewer asking for `asked` gets: the sub-stream only where the camera has one."""
    return "sub" if asked == "sub" and has_sub else "main"


class NotAudited(Exception):
    """The watching could not be audited: the camera is not shown (`intro` says what it is)."""

    def __init__(self, message: str, intro: dict[str, Any]) -> None:
        super().__init__(message)
        self.intro = intro


class NoVideo(Exception):
    """The camera has no video to watch: `reason` says why (disabled, no stream), `intro` what it is."""

    def __init__(self, reason: str, intro: dict[str, Any]) -> None:
        super().__init__(reason)
        self.reason, self.intro = reason, intro


def admit_watching(ctx: Context, camera_id: str, variant: str, actor: str) -> dict[str, Any]:
    """Returns the camera's intro (what a tile shows before the first picture) and, when it has video
    to watch, audits that `actor` watches it, in one transaction; NotFound, or NotAudited when the
    audit failed."""
    intro: dict[str, Any] | None = None
    try:
        with ctx.db.session() as session:
            camera = cameras.get(session, camera_id)
            intro = _intro(camera, variant)
            if no_stream_reason(intro) is None:
                audit.record_viewing(session, actor=actor, action="camera.watch", target=camera_id)
    except NotFound:
        raise
    except Exception as exc:
        if intro is not None and no_stream_reason(intro) is None:
            raise NotAudited(f"watching camera {camera_id} not audited", intro) from exc
        raise
    return intro


async def follow_when_admitted(
    ctx: Context,
    feeds: LiveFeeds,
    camera_id: str,
    variant: str,
    actor: str,
    known: dict[str, bool],
    *,
    wake: asyncio.Event | None = None,
) -> tuple[dict[str, Any], Viewer]:
    """Checks the camera and audits that `actor` watches it (`admit_watching`) while following its
    stream, when `known` (`watchable`) lists it; returns its intro and the viewer of its stream, nothing
    of which has been sent. Raises NotFound, NoVideo or NotAudited (having left the stream) when refused.
    """
    checked = asyncio.create_task(asyncio.to_thread(admit_watching, ctx, camera_id, variant, actor))
    early: Viewer | None = None
    try:
        if camera_id in known:
            early = await feeds.watch(camera_id, _variant(variant, known[camera_id]), wake=wake)
        intro = await checked
        why = no_stream_reason(intro)
        if why is not None:
            raise NoVideo(why, intro)
        if early is not None and early.variant == intro["variant"]:
            viewer, early = early, None
            return intro, viewer
        # Not known to have video when the list was read, or its sub-stream came or went since.
        return intro, await feeds.watch(camera_id, intro["variant"], wake=wake)
    finally:
        if not checked.done():  # the early watch failed: the check's thread finishes alone, unheard
            checked.add_done_callback(lambda task: task.cancelled() or task.exception())
            checked.cancel()
        if early is not None:
            await feeds.leave(early)  # refused, failed or the wrong stream: none of it sent


def watchable(ctx: Context) -> dict[str, bool]:
    """Returns the cameras with live video now, by id: whether each has a sub-stream."""
    with ctx.db.session() as session:
        return cameras.watchable(session)


class KnownVideo:
    """Which cameras have video (`watchable`), one list for a process's single-camera sockets.

    Read at most every RECHECK_S: a socket that opens meanwhile gets the list as last read while a new
    one is read, and waits only for the first. A stale list costs nothing in safety (the camera's own
    check decides what is sent): a camera it lacks is followed after its check, not during it.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.cameras: dict[str, bool] = {}
        self.read_at: float | None = None
        self._reading: asyncio.Task[None] | None = None

    async def get(self) -> dict[str, bool]:
        """Returns the list (reading it first if it was never read; a failed read gives none)."""
        if self.read_at is None or time.monotonic() - self.read_at >= RECHECK_S:
            if self._reading is None or self._reading.done():
                self._reading = asyncio.create_task(self._read())
            if self.read_at is None:
                await asyncio.shield(self._reading)
        return self.cameras

    async def _read(self) -> None:
        try:
            self.cameras = await asyncio.to_thread(watchable, self.ctx)
            self.read_at = time.monotonic()
        except Exception:  # the database is away: each camera's check decides alone, and says why
            log.warning("video sockets: cameras with video not read")


def camera_health(ctx: Context, camera_id: str) -> dict[str, Any]:
    """Returns the camera's health as the centre last heard it."""
    with ctx.db.session() as session:
        camera = cameras.get(session, camera_id)
        return {
            "health_state": camera.health_state,
            "health_detail": camera.health_detail,
            "health_since": camera.health_since.isoformat() if camera.health_since else None,
        }


def no_stream_reason(intro: dict[str, Any]) -> str | None:
    """Returns why a camera has no video to watch (disabled, no stream), or None when it has."""
    if not intro["enabled"]:
        return "the camera is disabled"
    if not intro["has_stream"]:
        return "the camera has no stream configured"
    return None


# --- the page's link -------------------------------------------------------------------------------


async def until_one_ends(*loops: Coroutine[Any, Any, None]) -> None:
    """Runs a socket's loops together until one of them ends (the peer left, a send failed), then
    stops the others and waits for them to be gone."""
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


class BadCommand(ValueError):
    """A text message from the page that is not a command this socket knows."""


@dataclass(frozen=True)
class Command:
    """One command of the page: watch a camera on a channel, or leave the channel."""

    channel: int
    camera_id: str | None = None  # None: leave
    variant: str = "sub"


def parse_command(text: str) -> Command:
    """Returns the command a text message says; raises BadCommand saying what is wrong with it."""
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise BadCommand(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadCommand('expected an object such as {"watch": 1, "camera": "cam-17"}')
    if "leave" in body:
        return Command(_channel(body["leave"]))
    if "watch" not in body:
        raise BadCommand('expected "watch" (with "camera") or "leave"')
    camera_id = body.get("camera")
    if not isinstance(camera_id, str) or not camera_id or len(camera_id) > 200:
        raise BadCommand('"watch" needs "camera": the camera id')
    variant = body.get("variant", "sub")
    if variant not in ("sub", "main"):
        raise BadCommand(f'"variant" is "sub" or "main", not {variant!r}')
    return Command(_channel(body["watch"]), camera_id, variant)


def _channel(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise BadCommand(f"a channel is a number from 0 to 2**32-1, not {value!r}")
    return value


@dataclass(eq=False)
class _Channel:
    number: int
    camera_id: str
    prefix: bytes
    viewer: Viewer | None = None
    opened: float = field(default_factory=time.monotonic)
    told_waiting: bool = False


class VideoLink:
    """One page's socket: its channels, the messages each has waiting, and the one loop sending them."""

    def __init__(
        self, websocket: WebSocket, ctx: Context, feeds: LiveFeeds, principal: Principal, token: str
    ) -> None:
        self.websocket, self.ctx, self.feeds = websocket, ctx, feeds
        self.principal, self.token = principal, token
        self.channels: dict[int, _Channel] = {}
        self.wake = asyncio.Event()  # shared by every channel's viewer: something is waiting to be sent
        # The link's own messages, sent before any video: states on a channel, errors as text.
        self.own: deque[bytes | str] = deque()
        self.starting: set[asyncio.Task[None]] = set()  # channels being started (held while they run)
        # Which cameras had video when last read (id: has a sub-stream): whose stream a channel may
        # follow before its camera is checked. Empty until read: a channel then waits for the check.
        self.watchable: dict[str, bool] = {}

    async def run(self) -> None:
        """Serves the page until it goes (or its session ends); leaves every channel on the way out."""
        try:
            await until_one_ends(
                self._send_loop(), self._receive_loop(), self._tick_loop(), self._read_watchable()
            )
        finally:
            for number in list(self.channels):
                await self.leave(number)
            # A channel still starting finds itself left and leaves its feed when it has one.
            await asyncio.gather(*self.starting, return_exceptions=True)

    # -- commands ---------------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self._error("send commands as text, not binary")
                continue
            try:
                command = parse_command(text)
            except BadCommand as exc:
                self._error(str(exc))
                continue
            if command.camera_id is None:
                await self.leave(command.channel)
            else:
                await self.watch(command)

    async def watch(self, command: Command) -> None:
        """Starts a channel (ending the one of the same number first)."""
        assert command.camera_id is not None
        await self.leave(command.channel)
        if len(self.channels) >= MAX_CHANNELS:
            self._error(f"at most {MAX_CHANNELS} cameras at once on one page")
            return
        channel = _Channel(command.channel, command.camera_id, CHANNEL.pack(command.channel))
        self.channels[command.channel] = channel
        task = asyncio.create_task(self._start(channel, command.variant))
        self.starting.add(task)
        task.add_done_callback(self.starting.discard)

    async def _start(self, channel: _Channel, variant: str) -> None:
        """Starts a channel once its camera is checked and audited, its stream followed meanwhile
        (`follow_when_admitted`); the channel sends nothing of the stream before."""
        ctx, camera_id = self.ctx, channel.camera_id
        try:
            intro, viewer = await follow_when_admitted(
                ctx, self.feeds, camera_id, variant, self.principal.username, self.watchable, wake=self.wake
            )
        except NotFound as exc:
            self._end(channel, protocol.state_message("refused", exc.message))
            return
        except NoVideo as exc:
            self._end(channel, protocol.state_message("no_stream", exc.reason, **exc.intro))
            return
        except NotAudited:
            log.exception("watching camera %s not audited: refused", camera_id)
            self._end(
                channel, protocol.state_message("refused", "the watching could not be audited; try again")
            )
            return
        except Exception as exc:  # the database is away: this tile says so, the others play on
            log.exception("camera %s could not be watched", camera_id)
            self._end(channel, protocol.state_message("error", f"the camera could not be opened: {exc}"))
            return
        self._say(channel, protocol.state_message("connecting", "", **intro))
        if self.channels.get(channel.number) is not channel:
            await self.feeds.leave(viewer)  # the page left the channel meanwhile
            return
        channel.viewer = viewer
        self.wake.set()

    async def leave(self, number: int) -> None:
        """Ends a channel: its camera's feed loses a viewer (one still starting leaves when it started)."""
        channel = self.channels.pop(number, None)
        if channel is not None and channel.viewer is not None:
            await self.feeds.leave(channel.viewer)

    def _say(self, channel: _Channel, message: bytes) -> None:
        """Queues a message of the link's own (a state) on a channel, ahead of any video."""
        if self.channels.get(channel.number) is channel:
            self.own.append(channel.prefix + message)
            self.wake.set()

    def _end(self, channel: _Channel, message: bytes) -> None:
        """Says why a channel cannot play, and ends it."""
        self._say(channel, message)
        if self.channels.get(channel.number) is channel:
            del self.channels[channel.number]

    def _error(self, text: str) -> None:
        """Tells the page a command was not understood (one sender: never two sends at once)."""
        self.own.append(json.dumps({"error": text}))
        self.wake.set()

    # -- sending ----------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        """Sends what each channel has waiting, one message per channel in turn."""
        while True:
            await self.wake.wait()
            self.wake.clear()
            sent = True
            while sent:  # until a whole round finds nothing: no wake-up can be missed in between
                sent = False
                while self.own:
                    own = self.own.popleft()
                    if isinstance(own, str):
                        await self.websocket.send_text(own)
                    else:
                        await self.websocket.send_bytes(own)
                    sent = True
                for channel in list(self.channels.values()):
                    viewer = channel.viewer
                    if viewer is None or self.channels.get(channel.number) is not channel:
                        continue
                    message = viewer.take()
                    if message is not None:
                        await self.websocket.send_bytes(channel.prefix + message)
                        sent = True

    async def _read_watchable(self) -> None:
        """Reads which cameras have video, at the start and with each session re-check (never ends)."""
        while True:
            try:
                self.watchable = await asyncio.to_thread(watchable, self.ctx)
            except Exception:  # the database is away: channels wait for their check meanwhile
                log.warning("video link of %s: cameras with video not read", self.principal.username)
            await asyncio.sleep(RECHECK_S)

    async def _tick_loop(self) -> None:
        """Says why when a channel gets no picture, and closes the socket when its session ends."""
        checked = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for channel in list(self.channels.values()):
                viewer = channel.viewer
                if (
                    viewer is None
                    or channel.told_waiting
                    or viewer.media_sent
                    or now - channel.opened < WAITING_S
                ):
                    continue
                channel.told_waiting = True
                health = await asyncio.to_thread(camera_health, self.ctx, channel.camera_id)
                detail = f"no picture from the camera for {WAITING_S:.0f} s"
                viewer.offer(protocol.state_message("waiting", detail, **health))
            if now - checked >= RECHECK_S:
                checked = now
                try:
                    await asyncio.to_thread(watcher, self.ctx, self.token)
                except SafeCityError as exc:
                    await self.websocket.close(code=4401, reason=f"signed out: {exc.message}"[:120])
                    return
                except Exception:  # the database is away: the session was good a moment ago, look again
                    log.warning("video link of %s: session re-check failed", self.principal.username)
