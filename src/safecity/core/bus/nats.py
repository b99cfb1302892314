"""NATS JetStream bus for city scale: one durable stream with limits, batched pull consumers, explicit acks.

Every event goes to the stream `SAFECITY` on subject `safecity.<type>`, with its idempotency key as
the `Nats-Msg-Id`, so a re-sent event within the stream's duplicate window is stored once. The
stream keeps events for `max_age_days` and at most `max_bytes` (the oldest go first); an event still
unhandled when it ages out is lost, so size these above the longest outage you plan for.

A consumer group is one durable pull consumer per subject, shared by every process that names it.
Each process runs `in_flight` fetch loops per consumer, each handing batches of up to `max_batch`
messages to the handler. Once the backlog is drained, a process fetches for a consumer at most once
every `linger` seconds, so a moderate flow arrives in batches of some size rather than one by one
(most of a batch's cost is per batch: its transaction, its claims, its reads of settings).
Redelivery is unlimited (`max_deliver=-1`): the delivery rules in `core.bus.Bus` decide when an
event is given up on (dead letters), never a delivery count on the server, so an outage of any
length loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

import nats
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as Subscription_
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, DiscardPolicy, StreamConfig
from nats.js.errors import NotFoundError

from safecity.core.bus import (
    BatchHandler,
    Bus,
    Consumer,
    Delivery,
    LiveHandler,
    Subscription,
    TransientHandler,
    call_live,
)
from safecity.core.errors import Unavailable
from safecity.core.events import Event, EventDecodeError, decode_event

log = logging.getLogger(__name__)

DAY_S = 86_400.0
# Transient subjects live outside the stream's `safecity.>`: JetStream must not store live video.
TRANSIENT_PREFIX = "safecity-now."
IDLE_WAIT_S = 5.0
BUSY_WAIT_S = 0.05
TAKE_WAIT_S = 0.02


class NatsBus(Bus):
    """Events on NATS JetStream."""

    def __init__(
        self,
        servers: str,
        *,
        stream: str = "SAFECITY",
        ack_wait: float = 30.0,
        duplicate_window: float = 600.0,
        max_age_days: float = 7.0,
        max_bytes: int = 20 * 1024**3,
        in_flight: int = 2,
        linger: float = 0.2,
    ) -> None:
        super().__init__()
        self.servers = [s.strip() for s in servers.split(",") if s.strip()]
        self.stream = stream
        self.ack_wait = ack_wait
        self.duplicate_window = duplicate_window
        self.max_age_days = max_age_days
        self.max_bytes = max_bytes
        self.in_flight = in_flight
        self.linger = linger
        self._last_fetch: dict[str, float] = {}  # per consumer group: when this process last fetched
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._durables: dict[str, str] = {}

    async def start(self) -> None:
        await super().start()
        try:
            self._nc = await nats.connect(
                servers=self.servers,
                connect_timeout=5,
                max_reconnect_attempts=-1,
                reconnect_time_wait=1,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnect,
                reconnected_cb=self._on_reconnect,
            )
        except Exception as exc:
            raise Unavailable(
                f"NATS at {', '.join(self.servers)} cannot be reached: {exc}",
                hint="start nats-server with -js, or set SAFECITY_BUS=memory",
            ) from exc
        self._js = self._nc.jetstream()
        await self._ensure_stream()

    async def _ensure_stream(self) -> None:
        config = StreamConfig(
            name=self.stream,
            subjects=["safecity.>"],
            duplicate_window=self.duplicate_window,
            max_age=self.max_age_days * DAY_S,
            max_bytes=self.max_bytes,
            discard=DiscardPolicy.OLD,
        )
        try:
            info = await self.js.stream_info(self.stream)
        except NotFoundError:
            await self.js.add_stream(config)
            return
        current = info.config
        if (
            current.max_age != config.max_age
            or current.max_bytes != config.max_bytes
            or current.duplicate_window != config.duplicate_window
        ):
            # Keep what an operator set on the stream itself (its replicas across the NATS cluster).
            config.num_replicas = current.num_replicas
            await self.js.update_stream(config)
            log.info(
                "stream %s limits set: %.1f days, %d bytes", self.stream, self.max_age_days, self.max_bytes
            )

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("the NATS bus is not started")
        return self._js

    async def publish(self, event: Event, *, msg_id: str | None = None) -> None:
        data = json.dumps(event.envelope()).encode()
        await self.js.publish(
            event.subject, data, headers={"Nats-Msg-Id": msg_id or f"{event.type}:{event.key}"}
        )

    async def publish_raw(self, subject: str, data: bytes, *, msg_id: str | None = None) -> None:
        """Publishes a wire message as it is (a replayed dead letter keeps its exact bytes)."""
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        await self.js.publish(subject, data, headers=headers)

    async def publish_many(self, events: Sequence[Event]) -> None:
        for start in range(0, len(events), 256):
            await asyncio.gather(*(self.publish(e) for e in events[start : start + 256]))

    async def subscribe(
        self, types: Sequence[str], handler: LiveHandler, *, shared: str | None = None
    ) -> Subscription:
        assert self._nc is not None
        queue = f"safecity-{shared}" if shared else ""  # a core NATS queue group: one member gets each
        callback = self._live_callback(handler)
        subs = [await self._nc.subscribe(s, queue=queue, cb=callback) for s in self._subjects(types)]
        return _LiveSubscription(subs)

    async def send_transient(self, subject: str, data: bytes) -> None:
        if self._nc is None:
            raise Unavailable("the NATS bus is not started", hint="start the bus first")
        try:
            await self._nc.publish(TRANSIENT_PREFIX + subject, data)
        except nats.errors.MaxPayloadError as exc:
            raise Unavailable(
                f"a {len(data)}-byte message is over the NATS server's max_payload",
                hint="raise max_payload in nats-server.conf (8 MB holds a 4K camera's key-frames)",
            ) from exc
        except (nats.errors.OutboundBufferLimitError, nats.errors.ConnectionClosedError) as exc:
            raise Unavailable(f"NATS cannot take a message now: {exc}", hint="it is reconnecting") from exc

    async def listen_transient(self, pattern: str, handler: TransientHandler) -> Subscription:
        assert self._nc is not None
        cut = len(TRANSIENT_PREFIX)

        async def callback(msg: Msg) -> None:
            try:
                handler(msg.subject[cut:], msg.data)
            except Exception:
                log.exception("transient listener on %s failed", pattern)

        # Video is large and bursty: let a busy listener fall behind by 64 MiB before NATS drops for it.
        sub = await self._nc.subscribe(
            TRANSIENT_PREFIX + pattern, cb=callback, pending_msgs_limit=20_000, pending_bytes_limit=64 << 20
        )
        return _LiveSubscription([sub])

    async def consume(
        self, types: Sequence[str], durable: str, handler: BatchHandler, *, max_batch: int = 200
    ) -> None:
        consumer = Consumer(durable, frozenset(types), handler, max_batch=max_batch)
        self.consumers[durable] = consumer
        for subject in self._subjects(types):
            name = f"{durable}-{subject.removeprefix('safecity.').replace('>', 'all')}"
            config = ConsumerConfig(
                durable_name=name,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait,
                max_deliver=-1,
                max_ack_pending=20_000,
                deliver_policy=DeliverPolicy.ALL,
                filter_subject=subject,
            )
            await self._ensure_consumer(name, config)
            self._durables[name] = durable
            for n in range(self.in_flight):
                sub = await self.js.pull_subscribe_bind(durable=name, stream=self.stream)
                task = asyncio.create_task(self._pull(sub, consumer), name=f"nats:{name}:{n}")
                self._tasks.append(task)

    async def _ensure_consumer(self, name: str, config: ConsumerConfig) -> None:
        try:
            info = await self.js.consumer_info(self.stream, name)
        except NotFoundError:
            await self.js.add_consumer(self.stream, config)
            return
        current = info.config
        if current.max_deliver != config.max_deliver or current.max_ack_pending != config.max_ack_pending:
            # A consumer made by an older version gave up after a few deliveries: lift that limit.
            await self.js.add_consumer(self.stream, config)

    @staticmethod
    def _subjects(types: Sequence[str]) -> list[str]:
        return ["safecity.>"] if "*" in types else [f"safecity.{t}" for t in types]

    async def _pull(self, sub: JetStreamContext.PullSubscription, consumer: Consumer) -> None:
        # A fetch for a full batch waits until the batch is full or its time is up, so a quiet moment
        # would hold the first event back for the whole wait. Once the backlog is drained, wait for
        # one event (returned the moment it comes), let `linger` seconds gather what follows it, then
        # take whatever is there at once. Between batches that were not full, this process's loops
        # for the consumer fetch at most once every `linger` seconds: a batch of a handful of events
        # costs the same transaction, claims and reads of settings as a batch of one.
        loop = asyncio.get_running_loop()
        idle = True
        while not self._stopping.is_set():
            try:
                if idle:
                    messages = await sub.fetch(batch=1, timeout=IDLE_WAIT_S)
                    if self.linger and consumer.max_batch > 1:
                        await self._sleep(self.linger)
                        messages += await self._take(sub, consumer.max_batch - 1)
                else:
                    pause = self._last_fetch.get(consumer.name, 0.0) + self.linger - loop.time()
                    if pause > 0:
                        await self._sleep(pause)
                    self._last_fetch[consumer.name] = loop.time()
                    messages = await sub.fetch(batch=consumer.max_batch, timeout=BUSY_WAIT_S)
            except TimeoutError:
                idle = True
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server is away: wait for the client to reconnect
                log.debug("consumer %s fetch failed: %s", consumer.name, exc)
                await self._sleep(1.0)
                continue
            idle = False
            if len(messages) >= consumer.max_batch:
                self._last_fetch[consumer.name] = 0.0  # a backlog: the next fetch goes at once
            items = [
                self._decode(
                    msg.data,
                    subject=msg.subject,
                    deliveries=msg.metadata.num_delivered if msg.metadata else 1,
                    handle=msg,
                )
                for msg in messages
            ]
            try:
                await self._deliver(consumer, items)
            except asyncio.CancelledError:
                return  # stopping: what was not acknowledged is redelivered to another member
            except Exception:  # delivery itself must never stop the loop
                log.exception("consumer %s failed on a batch", consumer.name)

    @staticmethod
    async def _take(sub: JetStreamContext.PullSubscription, batch: int) -> list[Msg]:
        """Whatever the consumer holds now, up to `batch` messages, without waiting for more."""
        try:
            return list(await sub.fetch(batch=batch, timeout=TAKE_WAIT_S))
        except TimeoutError:
            return []

    async def lag(self) -> dict[str, int]:
        """Returns, per consumer group on the stream (of any process), the events not yet acknowledged."""
        lag: dict[str, int] = {}
        try:
            infos = await self.js.consumers_info(self.stream)
        except Exception:  # the server is away: say nothing rather than something wrong
            return lag
        for info in infos:
            name = info.name or info.config.durable_name or ""
            # Durable names are "<group>-<event type>"; event types have no dashes.
            group = self._durables.get(name) or name.rsplit("-", 1)[0]
            waiting = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
            lag[group] = lag.get(group, 0) + waiting
        return lag

    async def _ack(self, items: Sequence[Delivery]) -> None:
        for item in items:
            msg: Msg = item.handle
            with contextlib.suppress(Exception):  # lost ack: the event comes again and changes nothing
                await msg.ack()

    async def _keep(self, items: Sequence[Delivery]) -> None:
        for item in items:
            await item.handle.in_progress()

    async def _drop(self, item: Delivery) -> None:
        with contextlib.suppress(Exception):
            await item.handle.term()

    @staticmethod
    def _live_callback(handler: LiveHandler) -> Callable[[Msg], Awaitable[None]]:
        async def callback(msg: Msg) -> None:
            try:
                event = decode_event(json.loads(msg.data))
            except (ValueError, EventDecodeError):
                return  # the consumer groups dead-letter it; a live page just never sees it
            try:
                await call_live(handler, event)
            except Exception as exc:
                log.warning("live handler failed: %s", exc)

        return callback

    async def _on_error(self, exc: Exception) -> None:
        log.debug("NATS: %s", exc)

    async def _on_disconnect(self) -> None:
        if not self._stopping.is_set():
            log.warning("NATS connection lost; reconnecting (nothing unacknowledged is lost)")

    async def _on_reconnect(self) -> None:
        log.warning("NATS connection back")

    async def close(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None
            self._js = None


class _LiveSubscription:
    """The core NATS subscriptions behind one live handler."""

    def __init__(self, subs: list[Subscription_]) -> None:
        self._subs = subs

    async def close(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):  # the connection is gone: nothing left to stop
                await sub.unsubscribe()
        self._subs = []
