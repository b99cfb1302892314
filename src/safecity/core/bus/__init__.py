"""The event bus: in-process for one process (embedded), NATS JetStream for a city.

Nothing outside this package knows which one runs. Publishing returns once the bus has accepted the
event (for JetStream: stored durably). A subscription with a `durable` name is a consumer group:
every event reaches one member of the group at least once, and is redelivered until its handler
returns without raising. A subscription without one sees every new event (for live pages).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from safecity.core.events import Event

if TYPE_CHECKING:
    from safecity.settings import Settings

log = logging.getLogger(__name__)

Handler = Callable[[Event], None] | Callable[[Event], Awaitable[None]]


class Bus(ABC):
    """Publishes typed events and runs handlers for them."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Connects and remembers the running loop (for publishing from threads)."""
        self.loop = asyncio.get_running_loop()

    @abstractmethod
    async def publish(self, event: Event) -> None:
        """Publishes `event`; returns once the bus has accepted it."""

    @abstractmethod
    async def subscribe(self, types: Sequence[str], handler: Handler, *, durable: str | None = None) -> None:
        """Runs `handler` for each event of `types` ('*' for all); `durable` names a consumer group."""

    @abstractmethod
    async def close(self) -> None:
        """Stops delivery and disconnects; unacknowledged events stay for the next start."""

    def publish_threadsafe(self, event: Event, timeout: float = 10.0) -> None:
        """Publishes from a worker thread; blocks until the bus accepted the event."""
        if self.loop is None:
            raise RuntimeError("the bus is not started")
        future = asyncio.run_coroutine_threadsafe(self.publish(event), self.loop)
        future.result(timeout)


async def call_handler(handler: Handler, event: Event) -> None:
    """Runs a handler: coroutines on the loop, plain functions in a worker thread (they touch the DB)."""
    if inspect.iscoroutinefunction(handler):
        await handler(event)
    else:
        await asyncio.to_thread(handler, event)


def make_bus(settings: Settings) -> Bus:
    """Returns the bus the settings ask for (not yet started)."""
    if settings.bus == "nats":
        from safecity.core.bus.nats import NatsBus

        return NatsBus(settings.nats_url, stream=settings.nats_stream)
    from safecity.core.bus.memory import MemoryBus

    return MemoryBus()
