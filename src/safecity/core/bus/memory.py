"""In-process bus for the embedded default: asyncio queues, batched consumer groups, dead letters.

Events travel as their wire form (JSON), exactly as on NATS, so a consumer sees what it would see in
city mode and a malformed or unknown event is dead-lettered the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from safecity.core.bus import (
    BatchHandler,
    Bus,
    Consumer,
    Delivery,
    LiveHandler,
    Subscription,
    TransientHandler,
    call_live,
    subject_matches,
)
from safecity.core.events import Event, EventDecodeError, decode_event

log = logging.getLogger(__name__)


@dataclass
class _Group:
    consumer: Consumer
    queue: asyncio.Queue[tuple[str, bytes]] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None

    def wants(self, subject: str) -> bool:
        return "*" in self.consumer.types or subject.removeprefix("safecity.") in self.consumer.types


@dataclass(eq=False)
class _Live:
    types: frozenset[str]
    handler: LiveHandler
    owner: list[_Live]
    queue: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self in self.owner:
            self.owner.remove(self)
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


@dataclass(eq=False)
class _Listener:
    pattern: str
    handler: TransientHandler
    owner: list[_Listener]
    exact: dict[str, list[_Listener]]
    wildcard: bool = field(init=False)

    def __post_init__(self) -> None:
        self.wildcard = "*" in self.pattern or ">" in self.pattern

    async def close(self) -> None:
        if self in self.owner:
            self.owner.remove(self)
        same = self.exact.get(self.pattern, [])
        if self in same:
            same.remove(self)
            if not same:
                del self.exact[self.pattern]


class MemoryBus(Bus):
    """Delivers events to handlers in this process, with the same retry and dead-letter rules as NATS."""

    def __init__(self, *, retry_delay: float = 0.2) -> None:
        super().__init__()
        self.retry_base = retry_delay
        self._groups: dict[str, _Group] = {}
        self._live: list[_Live] = []
        self._listeners: list[_Listener] = []
        self._exact: dict[str, list[_Listener]] = {}
        self.published = 0

    async def publish(self, event: Event, *, msg_id: str | None = None) -> None:
        self._put(event.subject, json.dumps(event.envelope()).encode(), event)

    async def publish_raw(self, subject: str, data: bytes, *, msg_id: str | None = None) -> None:
        try:
            event: Event | None = decode_event(json.loads(data))
        except (ValueError, EventDecodeError):
            event = None  # the consumer groups dead-letter it; live pages never see it
        self._put(subject, data, event)

    def _put(self, subject: str, data: bytes, event: Event | None) -> None:
        self.published += 1
        for group in self._groups.values():
            if group.wants(subject):
                group.queue.put_nowait((subject, data))
        if event is None:
            return
        for live in self._live:
            if "*" in live.types or event.type in live.types:
                live.queue.put_nowait(event)

    async def subscribe(
        self, types: Sequence[str], handler: LiveHandler, *, shared: str | None = None
    ) -> Subscription:
        # One process: a shared subscription is an ordinary one.
        live = _Live(frozenset(types), handler, self._live)
        live.task = asyncio.create_task(self._run_live(live), name="bus:live")
        self._live.append(live)
        return live

    async def send_transient(self, subject: str, data: bytes) -> None:
        # Handed over on the loop, as NATS's callbacks are; a failing listener is its own problem.
        # Exact subjects by look-up: a video fragment must not be matched against every camera's listener.
        exact = self._exact.get(subject, ())
        wild = [w for w in self._listeners if w.wildcard and subject_matches(w.pattern, subject)]
        for listener in [*exact, *wild]:
            try:
                listener.handler(subject, data)
            except Exception:
                log.exception("transient listener on %s failed", listener.pattern)

    async def listen_transient(self, pattern: str, handler: TransientHandler) -> Subscription:
        listener = _Listener(pattern, handler, self._listeners, self._exact)
        self._listeners.append(listener)
        if not listener.wildcard:
            self._exact.setdefault(pattern, []).append(listener)
        return listener

    async def consume(
        self, types: Sequence[str], durable: str, handler: BatchHandler, *, max_batch: int = 200
    ) -> None:
        if durable in self._groups:
            # In one process a consumer group has one member: the first subscription does the work.
            return
        consumer = Consumer(durable, frozenset(types), handler, max_batch=max_batch)
        group = _Group(consumer)
        group.task = asyncio.create_task(self._run_group(group), name=f"bus:{durable}")
        self._groups[durable] = group
        self.consumers[durable] = consumer

    async def drain(self, timeout: float = 30.0) -> None:
        """Waits until every queued event has been handled (tests and the headless demo)."""
        async with asyncio.timeout(timeout):
            for group in list(self._groups.values()):
                await group.queue.join()
            for live in list(self._live):
                await live.queue.join()

    async def lag(self) -> dict[str, int]:
        return {name: group.queue.qsize() for name, group in self._groups.items()}

    async def close(self) -> None:
        self._stopping.set()
        tasks = [t for t in [*(g.task for g in self._groups.values()), *(x.task for x in self._live)] if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._groups.clear()
        self._live.clear()
        self._listeners.clear()
        self._exact.clear()
        self.consumers.clear()

    async def _run_group(self, group: _Group) -> None:
        queue = group.queue
        while True:
            first = await queue.get()
            batch = [first]
            while len(batch) < group.consumer.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                items = [
                    self._decode(data, subject=subject, deliveries=1, handle=None) for subject, data in batch
                ]
                await self._deliver(group.consumer, items)
            except asyncio.CancelledError:
                raise
            except Exception:  # delivery itself must never stop the group
                log.exception("consumer %s failed on a batch", group.consumer.name)
            finally:
                for _ in batch:
                    queue.task_done()

    async def _run_live(self, live: _Live) -> None:
        while True:
            event = await live.queue.get()
            try:
                await call_live(live.handler, event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a live page's handler failing never stops the others
                log.warning("live handler failed on %s: %s", event.key, exc)
            finally:
                live.queue.task_done()

    async def _ack(self, items: Sequence[Delivery]) -> None:
        return None

    async def _keep(self, items: Sequence[Delivery]) -> None:
        return None

    async def _drop(self, item: Delivery) -> None:
        return None
