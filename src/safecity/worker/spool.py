"""The worker's local spool: events the bus did not take wait on disk and are re-sent in order.

A worker keeps analysing when the bus is down. `SpoolingPublisher.publish` sends an event straight
to the bus while nothing is waiting; when the bus refuses or does not answer, the event goes to a
SQLite file in the data folder (`worker-spool.db`), and so does every event after it until the spool
is empty again, so each camera's events reach the centre in the order they were seen. A background
sender re-sends the spool oldest first once the bus answers, each event unchanged: the same id and
key, so the same `Nats-Msg-Id`, and JetStream stores a re-send inside its duplicate window once (the
centre's handlers are idempotent by key beyond it). The file survives a crash or a restart; it is
bounded (`worker_spool_max_events`), and when full new events are dropped, counted and logged.

    spool = Spool(settings.data_dir / "worker-spool.db", max_events=200_000)
    publisher = SpoolingPublisher(ctx.bus, spool)
    publisher.start()
    publisher.publish(event)      # from any thread; never raises because the bus is down
    publisher.stop()
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path

from nats.errors import MaxPayloadError

from safecity.core.bus import Bus
from safecity.core.events import Event, decode_event
from safecity.core.metrics import SPOOL_DEPTH, SPOOL_DROPPED

log = logging.getLogger(__name__)

# Failures that are the event's own fault: re-sending cannot help, and it must not block the rest.
_UNSENDABLE = (MaxPayloadError, ValueError, TypeError)


class Spool:
    """A bounded first-in, first-out queue of events in a SQLite file; safe from many threads."""

    def __init__(self, path: Path, *, max_events: int = 200_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_events = max_events
        self._lock = threading.Lock()
        # WAL with synchronous=NORMAL: a committed event survives the process being killed.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS spool ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, envelope TEXT NOT NULL,"
            " spooled_at REAL NOT NULL)"
        )
        self._depth = self._count()
        self._full = False
        SPOOL_DEPTH.set(self._depth)

    def _count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM spool").fetchone()[0])

    @property
    def depth(self) -> int:
        """Returns how many events are waiting (as last counted by this process)."""
        return self._depth

    def put(self, event: Event) -> bool:
        """Appends an event; returns False (and drops it) when the spool is full."""
        envelope = json.dumps(event.envelope())
        with self._lock:
            if self._depth >= self.max_events:
                self._depth = int(self._db.execute("SELECT count(*) FROM spool").fetchone()[0])
            if self._depth >= self.max_events:
                if not self._full:
                    self._full = True
                    log.error(
                        "worker spool full (%d events wait for the bus in %s): new events are dropped "
                        "until the bus takes the waiting ones; fix the bus or raise "
                        "SAFECITY_WORKER_SPOOL_MAX_EVENTS",
                        self._depth,
                        self.path,
                    )
                SPOOL_DROPPED.inc()
                return False
            self._db.execute(
                "INSERT INTO spool (key, envelope, spooled_at) VALUES (?, ?, ?)",
                (event.key, envelope, time.time()),
            )
            self._depth += 1
        SPOOL_DEPTH.set(self._depth)
        return True

    def oldest(self, n: int) -> list[tuple[int, str]]:
        """Returns up to `n` waiting events, oldest first, as (sequence number, wire envelope)."""
        with self._lock:
            rows = self._db.execute("SELECT seq, envelope FROM spool ORDER BY seq LIMIT ?", (n,)).fetchall()
        return [(int(seq), str(envelope)) for seq, envelope in rows]

    def remove(self, seq: int) -> None:
        """Removes one event once the bus has taken it."""
        with self._lock:
            removed = self._db.execute("DELETE FROM spool WHERE seq = ?", (seq,)).rowcount
            self._depth = max(0, self._depth - removed)
            if self._depth < self.max_events:
                self._full = False
        SPOOL_DEPTH.set(self._depth)

    def recount(self) -> int:
        """Counts the waiting events again (another worker on this host may share the file)."""
        self._depth = self._count()
        SPOOL_DEPTH.set(self._depth)
        return self._depth

    def close(self) -> None:
        """Closes the file; what is waiting stays for the next start."""
        with self._lock:
            self._db.close()


class SpoolingPublisher:
    """Publishes events from any thread; what the bus does not take is spooled and re-sent in order."""

    def __init__(self, bus: Bus, spool: Spool, *, timeout_s: float = 5.0, batch: int = 200) -> None:
        self.bus = bus
        self.spool = spool
        self.timeout_s = timeout_s
        self.batch = batch
        self.published = 0
        self.spooled = 0
        self.resent = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage_since: float | None = None

    def start(self) -> None:
        """Starts the background sender (it first re-sends what an earlier run left in the spool)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._send_loop, name="spool-sender", daemon=True)
            self._thread.start()
            if self.spool.depth:
                log.warning("%d events wait in the spool from an earlier run; re-sending", self.spool.depth)
                self._wake.set()

    def stop(self, wait_s: float = 10.0) -> None:
        """Stops the sender; events still waiting stay in the file for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(wait_s)
            self._thread = None

    def publish(self, event: Event) -> None:
        """Sends `event` now if nothing waits before it and the bus takes it; else spools it."""
        if self.spool.depth == 0:
            try:
                self._send(event)
                self.published += 1
                return
            except _UNSENDABLE as exc:
                log.error("event %s %s cannot be sent and is dropped: %s", event.type, event.key, exc)
                return
            except Exception as exc:
                self._outage(exc)
        if self.spool.put(event):
            self.spooled += 1
        self._wake.set()

    def _send(self, event: Event) -> None:
        loop = self.bus.loop
        if loop is None or loop.is_closed():
            raise ConnectionError("the bus is not running")
        future = asyncio.run_coroutine_threadsafe(self.bus.publish(event), loop)
        try:
            future.result(self.timeout_s)
        except BaseException:
            future.cancel()
            raise

    def _outage(self, exc: BaseException) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.error(
                "the bus did not take an event (%s: %s); spooling events in %s until it does",
                type(exc).__name__,
                exc,
                self.spool.path,
            )

    def _send_loop(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            if self._stop.is_set():
                return
            if self.spool.depth == 0 and self.spool.recount() == 0:
                delay = 2.0
                continue
            if self._resend_batch():
                delay = 0.0 if self.spool.depth else 0.5
            else:
                delay = min(10.0, max(0.5, delay * 2))

    def _resend_batch(self) -> bool:
        """Re-sends the oldest waiting events in order; returns False when the bus is still down."""
        for seq, envelope in self.spool.oldest(self.batch):
            if self._stop.is_set():
                return True
            try:
                event = decode_event(json.loads(envelope))
            except Exception as exc:
                log.error("spooled event %d cannot be read (%s); dropping it", seq, exc)
                self.spool.remove(seq)
                continue
            try:
                self._send(event)
            except _UNSENDABLE as exc:
                log.error("spooled event %s %s cannot be sent and is dropped: %s", event.type, event.key, exc)
            except Exception as exc:
                self._outage(exc)
                return False
            self.spool.remove(seq)
            self.resent += 1
        if self.spool.depth == 0 and self._outage_since is not None:
            log.warning(
                "the bus is back: spool emptied after %.0f s (%d events re-sent so far)",
                time.monotonic() - self._outage_since,
                self.resent,
            )
            self._outage_since = None
        return True
