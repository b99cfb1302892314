"""The live hub: pushes events and alerts to open command-centre pages over WebSocket.

Each message goes only to the sockets whose role may see it (`LIVE_PERMISSIONS`); a type not listed
there is never sent. Every socket re-checks its session every `recheck_s` seconds and closes when the
session ended, the user was disabled or the role changed; `close_for` and `close_session` close
sockets at once (sign-out, an admin disabling a user), from any thread. The hub follows the bus only
while a browser is connected: in a city every serve would otherwise decode every event for nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket
from starlette.websockets import WebSocketState

from safecity.accounts.service import Principal
from safecity.core.bus import Bus, Subscription
from safecity.core.errors import SafeCityError
from safecity.core.events import Event

log = logging.getLogger(__name__)

# What a page may be sent, by message type, and the permission that admits it. Plate reads and
# violations name vehicles (only those who may search plates or review violations); face matches go
# to those who act on alerts. Machine-to-machine events (watch-list replication carries face
# embeddings) are never sent, and neither is any type not named here.
LIVE_PERMISSIONS: dict[str, str] = {
    "alert": "alerts:read",
    "camera_health": "cameras:read",
    "signal_phase": "cameras:read",
    "analytics": "events:read",
    "unit": "map:read",
    "plate_read": "plates:search",
    "violation_candidate": "challans:review",
    "violation_approved": "challans:review",
    "face_match": "alerts:act",
}
# Replication to workers, not news for people: watch-list embeddings, calibration points.
NEVER_SENT = frozenset({"watchlist_changed", "calibration_changed"})

SIGNED_OUT = 4401
FORBIDDEN = 4403

Recheck = Callable[[], Awaitable[Principal]]


@dataclass(frozen=True)
class Close:
    """Tells a socket's loop to close with this code and reason."""

    code: int
    reason: str


@dataclass(eq=False)
class LiveClient:
    """One open socket: who it is, the session (token id) it opened with, what it may be sent."""

    websocket: WebSocket
    principal: Principal
    session: int | None
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[str | Close]
    types: frozenset[str] = field(init=False)
    closing: bool = False

    def __post_init__(self) -> None:
        self.types = types_for(self.principal)


def types_for(principal: Principal) -> frozenset[str]:
    """Returns the message types `principal` may be sent."""
    return frozenset(kind for kind, permission in LIVE_PERMISSIONS.items() if principal.can(permission))


class LiveHub:
    """Fan-out of live messages to connected browsers; a slow browser drops messages, not the hub."""

    def __init__(self, queue_size: int = 500, recheck_s: float = 30.0) -> None:
        self._clients: dict[WebSocket, LiveClient] = {}
        self._lock = threading.Lock()  # close_for may run in a request's thread
        self.queue_size = queue_size
        self.recheck_s = recheck_s
        self.sent = 0
        self._bus: Bus | None = None
        self._following: Subscription | None = None
        self._follow_lock = asyncio.Lock()
        self._letting_go: set[asyncio.Task[None]] = set()

    def attach(self, bus: Bus) -> None:
        """Names the bus to follow while browsers are connected."""
        self._bus = bus

    async def _follow(self) -> None:
        """Follows the bus while a browser is connected, and lets go when the last one leaves."""
        async with self._follow_lock:
            wanted = bool(self._clients) and self._bus is not None
            if wanted and self._following is None:
                assert self._bus is not None
                self._following = await self._bus.subscribe(["*"], self.on_event)
            elif not wanted and self._following is not None:
                following, self._following = self._following, None
                with contextlib.suppress(Exception):  # the bus is closing: the subscription goes with it
                    await following.close()

    def _let_go_later(self) -> None:
        # A task of its own: the socket's task may be cancelled (the browser left), and every await
        # in a cancelled task is cancelled too, which would leave the hub following for nobody.
        task = asyncio.get_running_loop().create_task(self._follow())
        self._letting_go.add(task)
        task.add_done_callback(self._letting_go.discard)

    @property
    def following(self) -> bool:
        """Returns whether the hub follows the bus now (only while a browser is connected)."""
        return self._following is not None

    @property
    def connected(self) -> int:
        """Returns how many browsers are connected."""
        return len(self._clients)

    async def serve(
        self,
        websocket: WebSocket,
        principal: Principal,
        *,
        session: int | None = None,
        recheck: Recheck | None = None,
    ) -> None:
        """Sends this socket what its principal may see, until it disconnects or its session ends."""
        client = LiveClient(
            websocket, principal, session, asyncio.get_running_loop(), asyncio.Queue(self.queue_size)
        )
        with self._lock:
            self._clients[websocket] = client
        try:
            await self._follow()
            # Accepted once the bus is followed, so nothing published after the page connected is missed.
            if websocket.client_state == WebSocketState.CONNECTING:
                await websocket.accept()
        except BaseException:
            with self._lock:
                self._clients.pop(websocket, None)
            self._let_go_later()
            raise
        receiver = asyncio.create_task(self._drain_incoming(websocket))
        background = [receiver]
        if recheck is not None:
            background.append(asyncio.create_task(self._watch(client, recheck)))
        try:
            while not receiver.done():
                getter = asyncio.ensure_future(client.queue.get())
                done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                item = getter.result()
                if isinstance(item, Close):
                    await websocket.close(code=item.code, reason=item.reason)
                    break
                await websocket.send_text(item)
        except Exception as exc:  # a closed socket ends its own loop, never the hub
            log.debug("live socket closed: %s", exc)
        finally:
            with self._lock:
                self._clients.pop(websocket, None)
            for task in background:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            self._let_go_later()

    @staticmethod
    async def _drain_incoming(websocket: WebSocket) -> None:
        with contextlib.suppress(Exception):
            while True:
                await websocket.receive_text()

    async def _watch(self, client: LiveClient, recheck: Recheck) -> None:
        """Re-checks the socket's session every `recheck_s`: ended, disabled or another role closes it."""
        while True:
            await asyncio.sleep(self.recheck_s)
            try:
                now = await recheck()
            except SafeCityError as exc:
                self._kick(client, Close(SIGNED_OUT, f"signed out: {exc.message}"[:120]))
                return
            except Exception:  # the database is away: the session was good a moment ago, look again
                log.warning("live socket of %s: re-check failed", client.principal.username, exc_info=True)
                continue
            if now.role != client.principal.role:
                self._kick(client, Close(FORBIDDEN, "your role changed: reload the page"))
                return

    def _kick(self, client: LiveClient, close: Close) -> None:
        """Empties the socket's queue and queues `close` (on the hub's loop)."""
        client.closing = True
        while not client.queue.empty():
            client.queue.get_nowait()
        client.queue.put_nowait(close)

    def _close_where(self, match: Callable[[LiveClient], bool], close: Close) -> int:
        with self._lock:
            targets = [client for client in self._clients.values() if match(client)]
        for client in targets:
            client.loop.call_soon_threadsafe(self._kick, client, close)
        return len(targets)

    def close_for(self, username: str, reason: str = "signed out") -> int:
        """Closes every socket of `username` (disabled, signed out everywhere), from any thread; how many."""
        return self._close_where(lambda c: c.principal.username == username, Close(SIGNED_OUT, reason))

    def close_session(self, token_id: int, reason: str = "signed out") -> int:
        """Closes the sockets opened with one session or token (sign-out, revocation); any thread."""
        return self._close_where(lambda c: c.session == token_id, Close(SIGNED_OUT, reason))

    def push(self, message: dict[str, Any]) -> None:
        """Queues a message for every connected browser allowed to see it (call on the event loop)."""
        kind = str(message.get("type", ""))
        if kind in NEVER_SENT or kind not in LIVE_PERMISSIONS or not self._clients:
            return
        text: str | None = None
        for client in self._clients.values():
            if kind not in client.types or client.closing:
                continue
            text = text or json.dumps(message, default=str)
            queue = client.queue
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(text)
            self.sent += 1

    async def on_event(self, event: Event) -> None:
        """Bus handler: every event goes to the live pages (crops by ref, never raw frames)."""
        if not self._clients:
            return  # nobody watching: at a thousand events a second, not even the JSON is built
        self.push({"channel": "alert" if event.type == "alert" else "event", **event.envelope()})
