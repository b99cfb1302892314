"""In-process bus for the embedded default: asyncio queues, at-least-once, redelivery on failure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from safecity.core.bus import Bus, Handler, call_handler
from safecity.core.events import Event

log = logging.getLogger(__name__)


@dataclass
class _Subscription:
    types: frozenset[str]
    handler: Handler
    durable: str | None
    queue: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None

    def wants(self, event: Event) -> bool:
        return "*" in self.types or event.type in self.types


class MemoryBus(Bus):
    """Delivers events to handlers in this process; a failing handler gets the event again."""

    def __init__(self, *, max_deliver: int = 5, retry_delay: float = 0.2) -> None:
        super().__init__()
        self._subs: list[_Subscription] = []
        self._groups: dict[str, _Subscription] = {}
        self.max_deliver = max_deliver
        self.retry_delay = retry_delay
        self.dead_letters: list[tuple[str, Event, str]] = []
        self.published = 0

    async def publish(self, event: Event) -> None:
        self.published += 1
        for sub in self._subs:
            if sub.wants(event):
                sub.queue.put_nowait(event)

    async def subscribe(self, types: Sequence[str], handler: Handler, *, durable: str | None = None) -> None:
        if durable is not None and durable in self._groups:
            # In one process a consumer group has one member: the first subscription does the work.
            return
        sub = _Subscription(frozenset(types), handler, durable)
        sub.task = asyncio.create_task(self._run(sub), name=f"bus:{durable or 'live'}")
        self._subs.append(sub)
        if durable is not None:
            self._groups[durable] = sub

    async def drain(self, timeout: float = 30.0) -> None:
        """Waits until every queued event has been handled (tests and the headless demo)."""
        async with asyncio.timeout(timeout):
            for sub in list(self._subs):
                await sub.queue.join()

    async def close(self) -> None:
        for sub in self._subs:
            if sub.task is not None:
                sub.task.cancel()
        await asyncio.gather(*(s.task for s in self._subs if s.task), return_exceptions=True)
        self._subs.clear()
        self._groups.clear()

    async def _run(self, sub: _Subscription) -> None:
        while True:
            event = await sub.queue.get()
            try:
                await self._deliver(sub, event)
            finally:
                sub.queue.task_done()

    async def _deliver(self, sub: _Subscription, event: Event) -> None:
        for attempt in range(1, self.max_deliver + 1):
            try:
                await call_handler(sub.handler, event)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("handler %s failed on %s (try %d): %s", sub.durable, event.key, attempt, exc)
                if attempt == self.max_deliver:
                    self.dead_letters.append((sub.durable or "live", event, repr(exc)))
                    log.error("event %s given up after %d tries: %s", event.key, attempt, exc)
                    return
                await asyncio.sleep(self.retry_delay * attempt)
