"""NATS JetStream bus for city scale: a durable stream, durable pull consumers, explicit acks.

Every event goes to the stream `SAFECITY` on subject `safecity.<type>`, with its idempotency key as
the `Nats-Msg-Id`, so a re-sent event within the stream's duplicate window is stored once. A durable
subscription is a pull consumer shared by every process that names it (a consumer group); an event
is acknowledged only after its handler returned, and redelivered after a failure or a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError

from safecity.core.bus import Bus, Handler, call_handler
from safecity.core.errors import Unavailable
from safecity.core.events import Event, decode_event

log = logging.getLogger(__name__)


class NatsBus(Bus):
    """Events on NATS JetStream."""

    def __init__(
        self,
        servers: str,
        *,
        stream: str = "SAFECITY",
        ack_wait: float = 30.0,
        max_deliver: int = 10,
        duplicate_window: float = 600.0,
    ) -> None:
        super().__init__()
        self.servers = [s.strip() for s in servers.split(",") if s.strip()]
        self.stream = stream
        self.ack_wait = ack_wait
        self.max_deliver = max_deliver
        self.duplicate_window = duplicate_window
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        await super().start()
        try:
            self._nc = await nats.connect(servers=self.servers, connect_timeout=5, max_reconnect_attempts=-1)
        except Exception as exc:
            raise Unavailable(
                f"NATS at {', '.join(self.servers)} cannot be reached: {exc}",
                hint="start nats-server with -js, or set SAFECITY_BUS=memory",
            ) from exc
        self._js = self._nc.jetstream()
        config = StreamConfig(
            name=self.stream, subjects=["safecity.>"], duplicate_window=self.duplicate_window
        )
        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(config)

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("the NATS bus is not started")
        return self._js

    async def publish(self, event: Event) -> None:
        data = json.dumps(event.envelope()).encode()
        await self.js.publish(event.subject, data, headers={"Nats-Msg-Id": f"{event.type}:{event.key}"})

    async def subscribe(self, types: Sequence[str], handler: Handler, *, durable: str | None = None) -> None:
        subjects = ["safecity.>"] if "*" in types else [f"safecity.{t}" for t in types]
        if durable is None:
            assert self._nc is not None
            for subject in subjects:
                await self._nc.subscribe(subject, cb=self._live_callback(handler))
            return
        for subject in subjects:
            name = f"{durable}-{subject.removeprefix('safecity.').replace('>', 'all')}"
            config = ConsumerConfig(
                durable_name=name,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait,
                max_deliver=self.max_deliver,
                deliver_policy=DeliverPolicy.ALL,
                filter_subject=subject,
            )
            sub = await self.js.pull_subscribe(subject, durable=name, stream=self.stream, config=config)
            self._tasks.append(asyncio.create_task(self._pull(sub, handler, name), name=f"nats:{name}"))

    async def _pull(self, sub: JetStreamContext.PullSubscription, handler: Handler, name: str) -> None:
        while not self._stopping.is_set():
            try:
                messages = await sub.fetch(batch=32, timeout=1.0)
            except TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer %s fetch failed: %s", name, exc)
                await asyncio.sleep(1.0)
                continue
            for msg in messages:
                await self._handle(msg, handler, name)

    async def _handle(self, msg: Msg, handler: Handler, name: str) -> None:
        try:
            event = decode_event(json.loads(msg.data))
        except Exception as exc:
            # A message nobody can decode would be redelivered forever: terminate it, loudly.
            log.error("consumer %s dropped an undecodable message: %s", name, exc)
            await msg.term()
            return
        try:
            await call_handler(handler, event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            deliveries = msg.metadata.num_delivered if msg.metadata else 1
            log.warning("handler %s failed on %s (delivery %d): %s", name, event.key, deliveries, exc)
            await msg.nak(delay=min(30.0, 0.5 * deliveries))
            return
        await msg.ack()

    @staticmethod
    def _live_callback(handler: Handler) -> Callable[[Msg], Awaitable[None]]:
        async def callback(msg: Msg) -> None:
            try:
                await call_handler(handler, decode_event(json.loads(msg.data)))
            except Exception as exc:
                log.warning("live handler failed: %s", exc)

        return callback

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
