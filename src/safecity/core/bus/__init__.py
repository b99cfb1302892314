"""The event bus: in-process for one process (embedded), NATS JetStream for a city.

Nothing outside this package knows which one runs. Publishing returns once the bus has accepted the
event (for JetStream: stored durably). Two kinds of subscription:

- `consume(types, durable, handler)`: a consumer group. Every event reaches one member of the group
  at least once, in batches; the handler gets a list of events and runs in a worker thread. A batch
  is acknowledged only after the handler returned. When the infrastructure fails (database or bus
  down, disk full: `core.faults.is_transient`) the same batch is retried with back-off for as long as
  it takes, and nothing is acknowledged meanwhile. When the handler fails for any other reason the
  batch is split and each event tried alone, so one poison event cannot hold up the others; an event
  that still fails goes to the dead letters with its error (`Bus.dead_letter_sink`), as does a
  message that cannot be decoded or comes in a version this process does not know.
- `subscribe(types, handler)`: every process sees every new event (live pages, watch-list copies).

Beside events, a transient channel carries what is worth something only now and to whoever listens
now (live video fragments, a viewer's "I am still watching"): `send_transient(subject, data)` and
`listen_transient(pattern, handler)`, at most once, stored nowhere (on NATS: core subjects outside the
durable stream), with NATS's `*` and `>` wildcards in both implementations.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from safecity.core.events import Event, EventDecodeError, decode_event
from safecity.core.faults import is_transient
from safecity.core.metrics import (
    BUS_BATCH_SECONDS,
    BUS_BATCH_SIZE,
    BUS_DEAD_LETTERS,
    BUS_EVENT_LATENCY,
    BUS_HANDLED,
    BUS_INFRA_RETRIES,
)

if TYPE_CHECKING:
    from safecity.settings import Settings

log = logging.getLogger(__name__)

LiveHandler = Callable[[Event], None] | Callable[[Event], Awaitable[None]]
BatchHandler = Callable[[list[Event]], None]
# Called on the bus's loop with the subject (as sent) and the bytes; it must not block.
TransientHandler = Callable[[str, bytes], None]


@dataclass
class Delivery:
    """One message handed to a consumer: the event, or why it could not be decoded."""

    data: bytes
    event: Event | None
    problem: str | None = None
    deliveries: int = 1
    subject: str = ""
    handle: Any = None


@dataclass(frozen=True)
class DeadLetter:
    """An event a consumer gave up on, with the reason: kept for an operator to inspect and replay."""

    consumer: str
    subject: str
    event_type: str | None
    key: str | None
    data: str
    error: str
    deliveries: int


DeadLetterSink = Callable[[DeadLetter], None]


class Subscription(Protocol):
    """A live subscription of this process; closing it stops its handler (a camera that moved away)."""

    async def close(self) -> None: ...


@dataclass
class Consumer:
    """One consumer group's handler in this process and how it is delivered."""

    name: str
    types: frozenset[str]
    handler: BatchHandler
    max_batch: int = 200
    poison_tries: int = 3
    max_redeliveries: int = 25
    handled: int = 0
    dead: int = 0
    last_batch_at: float = field(default=0.0)


class Bus(ABC):
    """Publishes typed events, runs consumer groups in batches and fans live events out."""

    retry_base = 0.2
    retry_max = 10.0

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.consumers: dict[str, Consumer] = {}
        self.dead_letters: list[DeadLetter] = []
        self.dead_letter_sink: DeadLetterSink = self.dead_letters.append
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        """Connects and remembers the running loop (for publishing from threads)."""
        self.loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()

    @abstractmethod
    async def publish(self, event: Event, *, msg_id: str | None = None) -> None:
        """Publishes `event`; returns once the bus accepted it (`msg_id` replaces the de-duplication id)."""

    @abstractmethod
    async def publish_raw(self, subject: str, data: bytes, *, msg_id: str | None = None) -> None:
        """Publishes a wire message as it is (the outbox relay, dead-letter replays, tests of bad input)."""

    async def publish_many(self, events: Sequence[Event]) -> None:
        """Publishes several events; returns once the bus has accepted all of them."""
        for event in events:
            await self.publish(event)

    @abstractmethod
    async def subscribe(
        self, types: Sequence[str], handler: LiveHandler, *, shared: str | None = None
    ) -> Subscription:
        """Runs `handler` in this process for every new event of `types` ('*' for all) until closed.

        With `shared`, the processes subscribed under that name share the events: each goes to one of
        them, so work such as counting costs the city once, not once per serve.
        """

    @abstractmethod
    async def consume(
        self, types: Sequence[str], durable: str, handler: BatchHandler, *, max_batch: int = 200
    ) -> None:
        """Runs `handler` on batches of the events of `types` for the consumer group `durable`."""

    @abstractmethod
    async def close(self) -> None:
        """Stops delivery and disconnects; unacknowledged events stay for the next start."""

    async def lag(self) -> dict[str, int]:
        """Returns, per consumer group of this process, how many events wait to be handled."""
        return {}

    @abstractmethod
    async def send_transient(self, subject: str, data: bytes) -> None:
        """Sends `data` to whoever listens on `subject` now; nothing is stored, nothing is retried.

        Returns at once (the bytes are queued for the network); raises `Unavailable` when the bus
        cannot take them now (disconnected with its buffer full), and the caller drops them.
        """

    @abstractmethod
    async def listen_transient(self, pattern: str, handler: TransientHandler) -> Subscription:
        """Calls `handler(subject, data)` on the bus's loop for each transient message matching `pattern`."""

    def publish_threadsafe(self, event: Event, timeout: float = 10.0) -> None:
        """Publishes from a worker thread; blocks until the bus accepted the event (or raises)."""
        if self.loop is None:
            raise RuntimeError("the bus is not started")
        future = asyncio.run_coroutine_threadsafe(self.publish(event), self.loop)
        try:
            future.result(timeout)
        except BaseException:
            future.cancel()  # a publish that timed out must not go on in the background
            raise

    # --- delivery to consumer groups, the same for every bus -------------------------------------

    @abstractmethod
    async def _ack(self, items: Sequence[Delivery]) -> None:
        """Acknowledges handled messages."""

    @abstractmethod
    async def _keep(self, items: Sequence[Delivery]) -> None:
        """Tells the bus the messages are still being worked on (no redelivery yet)."""

    @abstractmethod
    async def _drop(self, item: Delivery) -> None:
        """Removes a dead-lettered message from the consumer for good."""

    def _decode(self, data: bytes, *, subject: str, deliveries: int, handle: Any) -> Delivery:
        try:
            event = decode_event(json.loads(data))
        except (ValueError, EventDecodeError) as exc:
            return Delivery(data, None, str(exc), deliveries, subject, handle)
        return Delivery(data, event, None, deliveries, subject, handle)

    async def _deliver(self, consumer: Consumer, items: list[Delivery]) -> None:
        """Handles one batch: acknowledge what is done, wait out the infrastructure, dead-letter poison."""
        good: list[Delivery] = []
        for item in items:
            if item.event is None:
                await self._dead_letter(consumer, item, f"cannot be decoded: {item.problem}")
            elif item.deliveries > consumer.max_redeliveries:
                await self._dead_letter(
                    consumer,
                    item,
                    f"delivered {item.deliveries} times without being acknowledged "
                    "(a process may have died handling it)",
                )
            else:
                good.append(item)
        if not good:
            return
        error = await self._attempt(consumer, good)
        if error is None:
            await self._ack(good)
            return
        for item in good:
            # One event at a time: only the poison one fails, the others are acknowledged.
            for attempt in range(1, consumer.poison_tries + 1):
                error = await self._attempt(consumer, [item])
                if error is None:
                    await self._ack([item])
                    break
                if attempt < consumer.poison_tries:
                    await self._sleep(self.retry_base * 2**attempt)
            else:
                assert error is not None
                await self._dead_letter(consumer, item, f"{type(error).__name__}: {error}")

    async def _attempt(self, consumer: Consumer, items: list[Delivery]) -> BaseException | None:
        """Runs the handler until it succeeds or fails for a reason of its own (returned)."""
        events = [item.event for item in items if item.event is not None]
        delay = self.retry_base
        since: float | None = None
        while True:
            started = time.perf_counter()
            try:
                await asyncio.to_thread(consumer.handler, events)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transient(exc):
                    log.warning("consumer %s: %d event(s) failed: %s", consumer.name, len(events), exc)
                    return exc
                BUS_INFRA_RETRIES.labels(consumer.name).inc()
                now = time.monotonic()
                if since is None or now - since > 60:
                    log.warning(
                        "consumer %s waits for the infrastructure (%s); %d event(s) held, not acknowledged",
                        consumer.name,
                        str(exc).splitlines()[0][:200],
                        len(events),
                    )
                    since = now
                if self._stopping.is_set():
                    raise asyncio.CancelledError from exc
                with contextlib.suppress(Exception):
                    await self._keep(items)
                await self._sleep(delay)
                delay = min(self.retry_max, delay * 2)
                continue
            elapsed = time.perf_counter() - started
            now_wall = time.time()
            consumer.handled += len(events)
            consumer.last_batch_at = now_wall
            BUS_HANDLED.labels(consumer.name).inc(len(events))
            BUS_BATCH_SIZE.labels(consumer.name).observe(len(events))
            BUS_BATCH_SECONDS.labels(consumer.name).observe(elapsed)
            for event in events:
                BUS_EVENT_LATENCY.labels(consumer.name).observe(max(0.0, now_wall - event.at.timestamp()))
            return None

    async def _dead_letter(self, consumer: Consumer, item: Delivery, error: str) -> None:
        event = item.event
        letter = DeadLetter(
            consumer=consumer.name,
            subject=item.subject,
            event_type=event.type if event is not None else _peek_type(item.data),
            key=event.key if event is not None else None,
            data=item.data.decode("utf-8", errors="replace"),
            error=error[:2000],
            deliveries=item.deliveries,
        )
        delay = self.retry_base
        while True:
            try:
                await asyncio.to_thread(self.dead_letter_sink, letter)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is down: keep the message until it can be written
                if self._stopping.is_set():
                    raise asyncio.CancelledError from exc
                log.warning("consumer %s cannot store a dead letter yet: %s", consumer.name, exc)
                with contextlib.suppress(Exception):
                    await self._keep([item])
                await self._sleep(delay)
                delay = min(self.retry_max, delay * 2)
        consumer.dead += 1
        BUS_DEAD_LETTERS.labels(consumer.name).inc()
        log.error("consumer %s dead-lettered %s %s: %s", consumer.name, letter.event_type, letter.key, error)
        await self._drop(item)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


def _peek_type(data: bytes) -> str | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    return str(kind)[:64] if kind is not None else None


def subject_matches(pattern: str, subject: str) -> bool:
    """Returns whether a subject matches a NATS-style pattern (`*` one token, `>` the rest)."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(have) == len(want)


async def call_live(handler: LiveHandler, event: Event) -> None:
    """Runs a live handler: coroutines on the loop, plain functions in a worker thread."""
    if inspect.iscoroutinefunction(handler):
        await handler(event)
    else:
        await asyncio.to_thread(handler, event)


def make_bus(settings: Settings) -> Bus:
    """Returns the bus the settings ask for (not yet started)."""
    if settings.bus == "nats":
        from safecity.core.bus.nats import NatsBus

        return NatsBus(
            settings.nats_url,
            stream=settings.nats_stream,
            max_age_days=settings.nats_max_age_days,
            max_bytes=settings.nats_max_bytes,
            in_flight=settings.consumer_in_flight,
            linger=settings.consumer_linger_ms / 1000,
        )
    from safecity.core.bus.memory import MemoryBus

    return MemoryBus()
