"""Serve's side of live video: one subscription per watched camera stream, fanned out to its viewers.

A `Feed` follows one camera stream's subject on the bus while this process has viewers of it (and
`linger_s` after the last leaves, so a tour coming back to a page starts at once), keeps a mirror of
what a joining viewer needs (the init segment and the frames since the last key-frame, or the latest
picture) and asks the worker holding the camera to keep relaying (`protocol.WANT_SUBJECT`). Messages
are forwarded as they came; nothing here parses video.

Each viewer has its own bounded queue. A viewer whose network stalls fills only its own queue: when it
is full, what it has not been sent is dropped and it restarts at the next key-frame; the others and
the camera's recording never wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from safecity.core.bus import Bus, Subscription
from safecity.core.bus.kv import kv_token
from safecity.live import protocol

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Viewer:
    """One socket's queue of messages: bounded, dropping its own backlog rather than holding anyone up."""

    camera_id: str
    variant: str
    max_bytes: int = 8 << 20
    max_messages: int = 150
    queue: deque[bytes] = field(default_factory=deque)
    queued_bytes: int = 0
    need_key: bool = True
    dropped: int = 0
    sent: int = 0
    media_sent: int = 0  # init segments, fragments and pictures: what makes a picture
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    joined: float = field(default_factory=time.monotonic)

    def offer(self, message: bytes) -> None:
        """Queues one message for this viewer (on the loop); never blocks."""
        kind, flags = message[0], message[1]
        if kind == protocol.FRAGMENT:
            key = bool(flags & protocol.KEY)
            if self.need_key and not key:
                self.dropped += 1
                return
            if self.queued_bytes + len(message) > self.max_bytes or len(self.queue) >= self.max_messages:
                self._drop_backlog()
                if not key:
                    return
            self.need_key = False
        elif kind == protocol.INIT:
            self.need_key = True  # a new track: its first fragment is a key-frame
        self.queue.append(message)
        self.queued_bytes += len(message)
        self.wake.set()

    def _drop_backlog(self) -> None:
        """Drops the fragments not yet sent (keeping the init and states) and waits for a key-frame."""
        kept: deque[bytes] = deque()
        for message in self.queue:
            if message[0] == protocol.FRAGMENT:
                self.dropped += 1
            else:
                kept.append(message)
        self.queue = kept
        self.queued_bytes = sum(len(m) for m in kept)
        self.need_key = True

    def take(self) -> bytes | None:
        """Returns the next message to send, or None when the queue is empty."""
        if not self.queue:
            self.wake.clear()
            return None
        message = self.queue.popleft()
        self.queued_bytes -= len(message)
        self.sent += 1
        if message[0] != protocol.STATE:
            self.media_sent += 1
        return message


class Feed:
    """One camera stream followed by this process: its mirror and its viewers."""

    def __init__(self, camera_id: str, variant: str) -> None:
        self.camera_id, self.variant = camera_id, variant
        self.subject = protocol.video_subject(kv_token(camera_id), variant)
        self.viewers: set[Viewer] = set()
        self.init: bytes | None = None
        self.gop: list[bytes] = []
        self.last_seq: int | None = None
        self.picture: bytes | None = None
        self.health: bytes | None = None
        self.notice: bytes | None = None
        self.subscription: Subscription | None = None
        self.left_at = time.monotonic()
        self.received = 0
        self.last_message_at = 0.0
        self.arrived = asyncio.Event()

    def on_message(self, _subject: str, message: bytes) -> None:
        """Takes one message from the bus (on the loop): updates the mirror and forwards it to viewers."""
        try:
            head = protocol.header(message)
        except ValueError:
            return
        self.received += 1
        self.last_message_at = time.monotonic()
        forward = self._mirror(head, message)
        if forward:
            self.arrived.set()
            for viewer in self.viewers:
                viewer.offer(message)

    def _mirror(self, head: protocol.Header, message: bytes) -> bool:
        """Updates the mirror; returns whether viewers should get the message (duplicates are not)."""
        kind = head.kind
        if kind == protocol.INIT:
            if message[protocol.HEADER_SIZE :] == (self.init or b"")[protocol.HEADER_SIZE :]:
                return False  # the same track re-sent for another serve's new viewer
            self.init, self.gop, self.last_seq = message, [], None
            self.notice = None
            return True
        if kind == protocol.FRAGMENT:
            if self.init is None or (self.last_seq is not None and head.seq <= self.last_seq):
                return False
            if head.key:
                self.gop = [message]
            elif self.gop and self.last_seq is not None and head.seq == self.last_seq + 1:
                self.gop.append(message)
            else:
                # Not the next one (lost on the way) or no key-frame yet: undecodable until the next key.
                self.gop = []
                return False
            self.last_seq = head.seq
            return True
        if kind == protocol.PICTURE:
            self.picture = message
            return True
        if kind == protocol.STATE:
            state = protocol.state_of(message)
            if state.get("health"):
                if message == self.health:
                    return False
                self.health = message
            else:
                if message[protocol.HEADER_SIZE :] == (self.notice or b"")[protocol.HEADER_SIZE :]:
                    return False
                self.notice = message
                if state.get("state") == "unplayable":
                    self.init, self.gop, self.last_seq = None, [], None
            return True
        return False

    def join(self, viewer: Viewer) -> None:
        """Adds a viewer and queues what it needs to start: state, init segment and frames since the key."""
        self.viewers.add(viewer)
        for message in (self.health, self.notice):
            if message is not None:
                viewer.offer(message)
        if self.init is not None and self.gop:
            viewer.offer(self.init)
            for message in self.gop:
                viewer.offer(message)
        elif self.picture is not None and self.notice is not None:
            viewer.offer(self.picture)

    def forget_media(self) -> None:
        """Drops the mirror (the worker stopped relaying: what it holds is old)."""
        self.init, self.gop, self.last_seq, self.picture = None, [], None, None


class LiveFeeds:
    """The live video feeds of this serve process, by camera stream.

    feeds = LiveFeeds(ctx.bus)
    viewer = await feeds.watch("cam-17", "sub")
    while (message := viewer.take()) is not None: ...
    await feeds.leave(viewer)
    """

    def __init__(
        self,
        bus: Bus,
        *,
        want_every_s: float = 2.0,
        linger_s: float = 10.0,
        viewer_max_bytes: int = 8 << 20,
        viewer_max_messages: int = 150,
    ) -> None:
        self.bus = bus
        self.want_every_s = want_every_s
        self.linger_s = linger_s
        self.viewer_max_bytes = viewer_max_bytes
        self.viewer_max_messages = viewer_max_messages
        self.feeds: dict[tuple[str, str], Feed] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def viewers(self) -> int:
        """Returns how many viewers are connected to this process."""
        return sum(len(feed.viewers) for feed in self.feeds.values())

    async def watch(
        self, camera_id: str, variant: str = "main", *, wake: asyncio.Event | None = None
    ) -> Viewer:
        """Adds a viewer of a camera stream; follows it (and asks the worker for it) if nobody did.

        `wake` is set whenever the viewer has a message to send (one event for all the channels of a
        page's link); without it the viewer has its own.
        """
        viewer = Viewer(camera_id, variant, self.viewer_max_bytes, self.viewer_max_messages)
        if wake is not None:
            viewer.wake = wake
        async with self._lock:
            feed = self.feeds.get((camera_id, variant))
            if feed is None:
                feed = Feed(camera_id, variant)
                self.feeds[(camera_id, variant)] = feed
            if feed.subscription is None:
                feed.subscription = await self.bus.listen_transient(feed.subject, feed.on_message)
            fresh = feed.init is None and feed.picture is None
            feed.join(viewer)
        # A new viewer: the worker re-sends its init and key-frame (flagged replay) for it at once.
        await self._want(feed, start=fresh)
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick_loop(), name="live-feeds:want")
        return viewer

    async def leave(self, viewer: Viewer) -> None:
        """Removes a viewer; its feed lingers a while before this process stops following it."""
        feed = self.feeds.get((viewer.camera_id, viewer.variant))
        if feed is not None and viewer in feed.viewers:
            feed.viewers.discard(viewer)
            if not feed.viewers:
                feed.left_at = time.monotonic()

    async def grab(self, camera_id: str, variant: str = "main", timeout_s: float = 4.0) -> Feed:
        """Returns the camera stream's feed once it holds a picture (a key-frame or a JPEG), or as it is."""
        viewer = await self.watch(camera_id, variant)
        feed = self.feeds[(camera_id, variant)]
        try:
            async with asyncio.timeout(timeout_s):
                while not ((feed.init is not None and feed.gop) or feed.picture is not None):
                    feed.arrived.clear()
                    await feed.arrived.wait()
        except TimeoutError:
            pass
        finally:
            await self.leave(viewer)
        return feed

    async def close(self) -> None:
        """Stops asking for streams and unsubscribes (the app is stopping)."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(BaseException):
                await self._ticker
        for feed in list(self.feeds.values()):
            await self._unfollow(feed)
        self.feeds.clear()

    async def _want(self, feed: Feed, *, start: bool) -> None:
        want = {"camera": feed.camera_id, "variant": feed.variant, "start": start}
        try:
            await self.bus.send_transient(protocol.WANT_SUBJECT, json.dumps(want).encode())
        except Exception as exc:  # the bus is away: viewers see no picture and the tile says so
            log.warning("live want for %s not sent: %s", feed.camera_id, exc)

    async def _unfollow(self, feed: Feed) -> None:
        subscription, feed.subscription = feed.subscription, None
        feed.forget_media()
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.close()

    async def _tick_loop(self) -> None:
        while self.feeds:
            await asyncio.sleep(self.want_every_s)
            now = time.monotonic()
            async with self._lock:
                for key, feed in list(self.feeds.items()):
                    if feed.viewers or now - feed.left_at < self.linger_s:
                        await self._want(feed, start=False)
                    else:
                        await self._unfollow(feed)
                        del self.feeds[key]
