"""The live hub: pushes events and alerts to every open command-centre page over WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import WebSocket

from safecity.accounts.service import Principal
from safecity.core.events import Event

log = logging.getLogger(__name__)

# What a browser may be sent, by event type: machine-to-machine events (watch-list replication carries
# face embeddings) never go to a page, and face matches only to those who act on alerts.
NEVER_SENT = frozenset({"watchlist_changed"})
NEEDS_PERMISSION = {"face_match": "alerts:act"}


class LiveHub:
    """Fan-out of live messages to connected browsers; a slow browser drops messages, not the hub."""

    def __init__(self, queue_size: int = 500) -> None:
        self._clients: dict[WebSocket, tuple[asyncio.Queue[str], Principal | None]] = {}
        self.queue_size = queue_size
        self.sent = 0

    @property
    def connected(self) -> int:
        """Returns how many browsers are connected."""
        return len(self._clients)

    async def serve(self, websocket: WebSocket, principal: Principal | None = None) -> None:
        """Sends this socket every live message its principal may see, until it disconnects."""
        queue: asyncio.Queue[str] = asyncio.Queue(self.queue_size)
        self._clients[websocket] = (queue, principal)
        receiver = asyncio.create_task(self._drain_incoming(websocket))
        try:
            while not receiver.done():
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    await websocket.send_text(getter.result())
                else:
                    getter.cancel()
        except Exception as exc:  # a closed socket ends its own loop, never the hub
            log.debug("live socket closed: %s", exc)
        finally:
            self._clients.pop(websocket, None)
            receiver.cancel()
            with contextlib.suppress(BaseException):
                await receiver

    @staticmethod
    async def _drain_incoming(websocket: WebSocket) -> None:
        with contextlib.suppress(Exception):
            while True:
                await websocket.receive_text()

    def push(self, message: dict[str, Any]) -> None:
        """Queues a message for every connected browser allowed to see it (call on the event loop)."""
        kind = str(message.get("type", ""))
        if kind in NEVER_SENT or not self._clients:
            return
        needed = NEEDS_PERMISSION.get(kind)
        text = json.dumps(message, default=str)
        for queue, principal in self._clients.values():
            if needed and principal is not None and not principal.can(needed):
                continue
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
