"""The bus contract, run against the in-process bus and a real NATS JetStream server alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from safecity.core.bus import Bus
from safecity.core.bus.memory import MemoryBus
from safecity.core.bus.nats import NatsBus
from safecity.core.events import CameraHealth, Event, PlateRead


def plate(key: str, text: str = "ABC123") -> PlateRead:
    return PlateRead(key=key, camera_id="cam-1", plate=text, confidence=0.9)


@pytest.fixture(params=["memory", "nats"])
def make_bus(request: pytest.FixtureRequest) -> Callable[[], Bus]:
    """A factory of started-on-demand buses; NATS ones share one fresh stream per test."""
    if request.param == "memory":
        shared = MemoryBus(retry_delay=0.01)
        return lambda: shared
    url = request.getfixturevalue("nats_url")
    stream = f"T{uuid.uuid4().hex[:10].upper()}"
    return lambda: NatsBus(url, stream=stream, ack_wait=2.0)


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


@pytest.fixture
async def bus(make_bus: Callable[[], Bus]) -> AsyncIterator[Bus]:
    b = make_bus()
    await b.start()
    yield b
    await b.close()
    if isinstance(b, NatsBus):
        await _delete_stream(b)


async def _delete_stream(b: NatsBus) -> None:
    import nats

    nc = await nats.connect(b.servers)
    try:
        await nc.jetstream().delete_stream(b.stream)
    finally:
        await nc.close()


async def test_published_event_reaches_its_subscriber_typed(bus: Bus) -> None:
    seen: list[Event] = []
    await bus.subscribe(["plate_read"], seen.append, durable="anpr-test")
    await bus.publish(plate("k1", "LEA4521"))
    await wait_for(lambda: len(seen) == 1)
    assert isinstance(seen[0], PlateRead)
    assert seen[0].plate == "LEA4521"


async def test_subscriber_sees_only_the_types_it_asked_for(bus: Bus) -> None:
    seen: list[str] = []
    await bus.subscribe(["camera_health"], lambda e: seen.append(e.type), durable="health-test")
    await bus.publish(plate("k1"))
    await bus.publish(CameraHealth(key="h1", camera_id="cam-1", state="offline"))
    await wait_for(lambda: len(seen) >= 1)
    await asyncio.sleep(0.2)
    assert seen == ["camera_health"]


async def test_failed_handler_gets_the_event_again(bus: Bus) -> None:
    attempts: list[str] = []

    def flaky(event: Event) -> None:
        attempts.append(event.key)
        if len(attempts) < 3:
            raise RuntimeError("database briefly unavailable")

    await bus.subscribe(["plate_read"], flaky, durable="flaky-test")
    await bus.publish(plate("k-retry"))
    await wait_for(lambda: len(attempts) >= 3, timeout=20)
    assert attempts[:3] == ["k-retry"] * 3


async def test_live_subscription_sees_every_event(bus: Bus) -> None:
    seen: list[str] = []
    await bus.subscribe(["*"], lambda e: seen.append(e.type))
    await asyncio.sleep(0.1)
    await bus.publish(plate("k1"))
    await bus.publish(CameraHealth(key="h1", camera_id="cam-1", state="online"))
    await wait_for(lambda: len(seen) == 2)
    assert sorted(seen) == ["camera_health", "plate_read"]


async def test_publishing_from_a_worker_thread_waits_for_acceptance(bus: Bus) -> None:
    seen: list[Event] = []
    await bus.subscribe(["plate_read"], seen.append, durable="thread-test")
    await asyncio.to_thread(bus.publish_threadsafe, plate("k-thread"))
    await wait_for(lambda: len(seen) == 1)


async def test_events_published_while_no_consumer_runs_are_delivered_later(nats_url: str) -> None:
    """A durable consumer that was down gets what it missed: nothing acknowledged is lost."""
    stream = f"T{uuid.uuid4().hex[:10].upper()}"
    first = NatsBus(nats_url, stream=stream)
    await first.start()
    seen: list[str] = []
    await first.subscribe(["plate_read"], lambda e: seen.append(e.key), durable="store")
    await first.publish(plate("before"))
    await wait_for(lambda: seen == ["before"])
    await first.close()

    publisher = NatsBus(nats_url, stream=stream)
    await publisher.start()
    await publisher.publish(plate("while-down"))
    await publisher.close()

    second = NatsBus(nats_url, stream=stream)
    await second.start()
    await second.subscribe(["plate_read"], lambda e: seen.append(e.key), durable="store")
    await wait_for(lambda: "while-down" in seen)
    await second.close()
    assert seen == ["before", "while-down"]
    await _delete_stream(second)


async def test_crashed_handler_event_is_redelivered_to_another_member(nats_url: str) -> None:
    """An event taken but never acknowledged (the process died) goes to the next member of the group."""
    stream = f"T{uuid.uuid4().hex[:10].upper()}"
    dying = NatsBus(nats_url, stream=stream, ack_wait=1.0)
    await dying.start()
    taken = asyncio.Event()

    async def hang(event: Event) -> None:
        taken.set()
        await asyncio.sleep(3600)

    await dying.subscribe(["plate_read"], hang, durable="store")
    await dying.publish(plate("orphan"))
    await asyncio.wait_for(taken.wait(), 10)
    await dying.close()  # the handler never acknowledged

    survivor = NatsBus(nats_url, stream=stream, ack_wait=1.0)
    await survivor.start()
    seen: list[str] = []
    await survivor.subscribe(["plate_read"], lambda e: seen.append(e.key), durable="store")
    await wait_for(lambda: seen == ["orphan"], timeout=15)
    await survivor.close()
    await _delete_stream(survivor)


async def test_resent_event_with_same_key_is_stored_once(nats_url: str) -> None:
    stream = f"T{uuid.uuid4().hex[:10].upper()}"
    bus = NatsBus(nats_url, stream=stream)
    await bus.start()
    await bus.publish(plate("same-key"))
    await bus.publish(plate("same-key"))
    info = await bus.js.stream_info(stream)
    assert info.state.messages == 1
    await bus.close()
    await _delete_stream(bus)
