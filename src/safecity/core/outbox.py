"""The transactional outbox: every "commit, then publish" in SafeCity goes through here.

A handler or a request stages the events it wants published (`stage(session, event)`) in the same
transaction as the change they announce: both commit or neither does. The relay in every process
publishes committed rows and deletes them; several relays share the table (`FOR UPDATE SKIP
LOCKED` on PostgreSQL). A relay that dies after publishing but before deleting publishes the same
rows again with the same message id, which the bus de-duplicates and consumers ignore by key. While
the bus is down rows wait in the table; nothing is lost and nobody needs a sweep to catch up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Integer, String, Text, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from safecity.core.clock import utcnow
from safecity.core.db import Base, after_commit, database_of
from safecity.core.events import Event
from safecity.core.metrics import OUTBOX_PENDING

if TYPE_CHECKING:
    from safecity.core.bus import Bus
    from safecity.core.db import Database

log = logging.getLogger(__name__)

BATCH = 500


class OutboxRow(Base):
    """One committed event waiting to be published."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    subject: Mapped[str] = mapped_column(String(100))
    msg_id: Mapped[str] = mapped_column(String(300))
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def stage(session: Session, event: Event, *, msg_id: str | None = None) -> None:
    """Publishes `event` once this session's transaction commits (never if it rolls back)."""
    stage_raw(
        session,
        subject=event.subject,
        data=json.dumps(event.envelope()),
        msg_id=msg_id or f"{event.type}:{event.key}",
    )


def stage_raw(session: Session, *, subject: str, data: str, msg_id: str) -> None:
    """Publishes a wire message as it is once the transaction commits (dead-letter replays)."""
    session.add(OutboxRow(subject=subject, msg_id=msg_id[:300], data=data, created_at=utcnow()))
    db = database_of(session)
    if db is not None and db.outbox_wakeup is not None:
        after_commit(session, db.outbox_wakeup)


def pending(session: Session) -> int:
    """Returns how many committed events wait to be published."""
    return session.scalar(select(func.count()).select_from(OutboxRow)) or 0


class OutboxRelay:
    """Publishes committed outbox rows on the bus, as soon as a transaction stages them."""

    def __init__(self, db: Database, bus: Callable[[], Bus], *, poll_s: float = 1.0) -> None:
        self.db = db
        self.bus_of = bus
        self.poll_s = poll_s
        self.published = 0
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = threading.Lock()

    def notify(self) -> None:
        """Wakes the relay (thread-safe): a transaction that staged events has committed."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        """Starts relaying in the background; registers itself as the database's wake-up."""
        self._loop = asyncio.get_running_loop()
        self.db.outbox_wakeup = self.notify
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stops relaying; rows not yet published stay for the next start or another process."""
        if self.db.outbox_wakeup == self.notify:
            self.db.outbox_wakeup = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        delay = 0.2
        while True:
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
                self._wake.clear()
                while await self.relay_once() == BATCH:
                    pass
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # bus or database away: the rows wait in the table
                log.warning("outbox relay waits: %s", str(exc).splitlines()[0][:200])
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)

    async def relay_once(self) -> int:
        """Publishes one batch of committed rows and deletes them; returns how many."""
        loop = asyncio.get_running_loop()

        def publish(rows: Sequence[OutboxRow]) -> None:
            asyncio.run_coroutine_threadsafe(self._publish(rows), loop).result(60)

        def work() -> int:
            with self._lock:
                if self.db.is_sqlite:
                    # One writer at a time: never hold SQLite's write lock while the bus works. A row
                    # published twice (a crash in between) is dropped by its message id and its key.
                    with self.db.session() as session:
                        rows = list(session.scalars(select(OutboxRow).order_by(OutboxRow.id).limit(BATCH)))
                    if rows:
                        publish(rows)
                        with self.db.session() as session:
                            session.execute(delete(OutboxRow).where(OutboxRow.id.in_([r.id for r in rows])))
                    return len(rows)
                with self.db.session() as session:
                    # Rows locked by another process's relay are skipped: each row goes out once.
                    stmt = (
                        select(OutboxRow)
                        .order_by(OutboxRow.id)
                        .limit(BATCH)
                        .with_for_update(skip_locked=True)
                    )
                    rows = list(session.scalars(stmt))
                    if rows:
                        publish(rows)
                        session.execute(delete(OutboxRow).where(OutboxRow.id.in_([r.id for r in rows])))
                    return len(rows)

        count = await asyncio.to_thread(work)
        self.published += count
        return count

    async def _publish(self, rows: Sequence[OutboxRow]) -> None:
        for start in range(0, len(rows), 256):
            chunk = rows[start : start + 256]
            await asyncio.gather(
                *(self.bus_of().publish_raw(r.subject, r.data.encode(), msg_id=r.msg_id) for r in chunk)
            )

    def export_pending(self) -> int:
        """Sets the outbox gauge; returns how many rows wait."""
        with self.db.session() as session:
            count = pending(session)
        OUTBOX_PENDING.set(count)
        return count
