"""The bus contract, run against the in-process bus and a real NATS JetStream server alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from safecity.core.bus import Bus
from safecity.core.bus.memory import MemoryBus
from safecity.core.bus.nats import NatsBus
from safecity.core.events import CameraHealth, Event, PlateRead


def plate(key: str, text: str = "ABC123") -> PlateRead:
    return PlateRead(key=key, camera_id="cam-1", plate=text, confidence=0.9)


def database_down() -> OperationalError:
    return OperationalError("INSERT …", {}, ConnectionRefusedError("connection refused"))


@pytest.fixture(params=["memory", "nats"])
def make_bus(request: pytest.FixtureRequest) -> Callable[[], Bus]:
    """A factory of started-on-demand buses; NATS ones share one fresh stream per test."""
    if request.param == "memory":
        shared = MemoryBus(retry_delay=0.01)
        return lambda: shared
    url = request.getfixturevalue("nats_url")
    stream = f"T{uuid.uuid4().hex[:10].upper()}"

    def nats_bus() -> Bus:
        bus = NatsBus(url, stream=stream, ack_wait=2.0, in_flight=1)
        bus.retry_base = 0.01
        return bus

    return nats_bus


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


def collect(into: list[Event]) -> Callable[[list[Event]], None]:
    return into.extend


async def test_published_event_reaches_its_consumer_typed(bus: Bus) -> None:
    seen: list[Event] = []
    await bus.consume(["plate_read"], "anpr-test", collect(seen))
    await bus.publish(plate("k1", "LEA4521"))
    await wait_for(lambda: len(seen) == 1)
    assert isinstance(seen[0], PlateRead)
    assert seen[0].plate == "LEA4521"


async def test_a_consumer_gets_events_in_batches(bus: Bus) -> None:
    batches: list[int] = []
    await bus.consume(["plate_read"], "batch-test", lambda events: batches.append(len(events)), max_batch=50)
    await bus.publish_many([plate(f"k{i}") for i in range(120)])
    await wait_for(lambda: sum(batches) == 120)
    assert max(batches) > 1 and max(batches) <= 50


async def test_consumer_sees_only_the_types_it_asked_for(bus: Bus) -> None:
    seen: list[str] = []
    await bus.consume(["camera_health"], "health-test", lambda events: seen.extend(e.type for e in events))
    await bus.publish(plate("k1"))
    await bus.publish(CameraHealth(key="h1", camera_id="cam-1", state="offline"))
    await wait_for(lambda: len(seen) >= 1)
    await asyncio.sleep(0.2)
    assert seen == ["camera_health"]


async def test_an_infrastructure_outage_is_waited_out_however_long_and_nothing_is_dropped(bus: Bus) -> None:
    attempts: list[str] = []
    handled: list[str] = []

    def flaky(events: list[Event]) -> None:
        attempts.extend(e.key for e in events)
        if len(attempts) < 40:  # far more tries than any delivery budget: the database is still down
            raise database_down()
        handled.extend(e.key for e in events)

    bus.retry_max = 0.02
    await bus.consume(["plate_read"], "flaky-test", flaky)
    await bus.publish(plate("k-retry"))
    await wait_for(lambda: handled == ["k-retry"], timeout=30)
    assert bus.dead_letters == []


async def test_a_poison_event_is_dead_lettered_and_the_others_of_its_batch_go_through(bus: Bus) -> None:
    handled: list[str] = []

    def strict(events: list[Event]) -> None:
        if any(e.key == "poison" for e in events):
            raise ValueError("plate text is not valid here")
        handled.extend(e.key for e in events)

    await bus.consume(["plate_read"], "poison-test", strict, max_batch=10)
    await bus.publish_many([plate("a"), plate("poison"), plate("b")])
    await wait_for(lambda: len(bus.dead_letters) == 1 and sorted(handled) == ["a", "b"], timeout=20)
    [letter] = bus.dead_letters
    assert letter.consumer == "poison-test" and letter.key == "poison"
    assert "plate text is not valid here" in letter.error


async def test_a_race_that_resolves_on_retry_is_not_dead_lettered(bus: Bus) -> None:
    tries: list[int] = []

    def racing(events: list[Event]) -> None:
        tries.append(1)
        if len(tries) < 3:
            raise IntegrityError("INSERT …", {}, Exception("duplicate key: another process got there first"))

    await bus.consume(["plate_read"], "race-test", racing)
    await bus.publish(plate("k-race"))
    await wait_for(lambda: len(tries) >= 3, timeout=20)
    await asyncio.sleep(0.2)
    assert bus.dead_letters == []


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"{not json", "cannot be decoded"),
        (b'{"type": "plate_read", "version": 9, "key": "v9", "plate": "X", "confidence": 1}', "version 9"),
        (b'{"type": "plate_read", "key": "bad", "plate": "X", "confidence": 7}', "confidence"),
    ],
)
async def test_a_malformed_or_unknown_version_message_is_dead_lettered_and_never_blocks(
    bus: Bus, raw: bytes, reason: str
) -> None:
    seen: list[str] = []
    await bus.consume(["plate_read"], "decode-test", lambda events: seen.extend(e.key for e in events))
    await bus.publish_raw("safecity.plate_read", raw)
    await bus.publish(plate("after"))
    await wait_for(lambda: seen == ["after"] and len(bus.dead_letters) == 1)
    assert reason in bus.dead_letters[0].error


async def test_live_subscription_sees_every_event(bus: Bus) -> None:
    seen: list[str] = []
    await bus.subscribe(["*"], lambda e: seen.append(e.type))
    await asyncio.sleep(0.1)
    await bus.publish(plate("k1"))
    await bus.publish(CameraHealth(key="h1", camera_id="cam-1", state="online"))
    await wait_for(lambda: len(seen) == 2)
    assert sorted(seen) == ["camera_health", "plate_read"]


async def test_a_closed_live_subscription_hears_nothing_more(bus: Bus) -> None:
    kept: list[str] = []
    dropped: list[str] = []
    await bus.subscribe(["plate_read"], lambda e: kept.append(e.key))
    subscription = await bus.subscribe(["plate_read"], lambda e: dropped.append(e.key))
    await asyncio.sleep(0.1)
    await bus.publish(plate("before"))
    await wait_for(lambda: kept == ["before"] and dropped == ["before"])
    await subscription.close()
    await bus.publish(plate("after"))
    await wait_for(lambda: kept == ["before", "after"])
    await asyncio.sleep(0.2)
    assert dropped == ["before"]


async def test_publishing_from_a_worker_thread_waits_for_acceptance(bus: Bus) -> None:
    seen: list[Event] = []
    await bus.consume(["plate_read"], "thread-test", collect(seen))
    await asyncio.to_thread(bus.publish_threadsafe, plate("k-thread"))
    await wait_for(lambda: len(seen) == 1)


async def test_events_published_while_no_consumer_runs_are_delivered_later(nats_url: str) -> None:
    """A durable consumer that was down gets what it missed: nothing acknowledged is lost."""
    stream = f"T{uuid.uuid4().hex[:10].upper()}"
    first = NatsBus(nats_url, stream=stream)
    await first.start()
    seen: list[str] = []
    await first.consume(["plate_read"], "store", lambda events: seen.extend(e.key for e in events))
    await first.publish(plate("before"))
    await wait_for(lambda: seen == ["before"])
    await first.close()

    publisher = NatsBus(nats_url, stream=stream)
    await publisher.start()
    await publisher.publish(plate("while-down"))
    await publisher.close()

    second = NatsBus(nats_url, stream=stream)
    await second.start()
    await second.consume(["plate_read"], "store", lambda events: seen.extend(e.key for e in events))
    await wait_for(lambda: "while-down" in seen)
    await second.close()
    assert seen == ["before", "while-down"]
    await _delete_stream(second)


async def test_crashed_handler_event_is_redelivered_to_another_member(nats_url: str) -> None:
    """An event taken but never acknowledged (the process died) goes to the next member of the group."""
    stream = f"T{uuid.uuid4().hex[:10].upper()}"
    dying = NatsBus(nats_url, stream=stream, ack_wait=1.0, in_flight=1)
    await dying.start()
    taken = asyncio.Event()
    release = asyncio.Event()
    loop = asyncio.get_running_loop()

    def hang(events: list[Event]) -> None:
        loop.call_soon_threadsafe(taken.set)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(30)

    await dying.consume(["plate_read"], "store", hang)
    await dying.publish(plate("orphan"))
    await asyncio.wait_for(taken.wait(), 10)
    closing = asyncio.create_task(dying.close())  # the handler never acknowledged

    survivor = NatsBus(nats_url, stream=stream, ack_wait=1.0)
    await survivor.start()
    seen: list[str] = []
    await survivor.consume(["plate_read"], "store", lambda events: seen.extend(e.key for e in events))
    await wait_for(lambda: seen == ["orphan"], timeout=15)
    release.set()
    await closing
    await survivor.close()
    await _delete_stream(survivor)


async def test_an_old_consumer_that_gave_up_after_ten_deliveries_is_lifted_to_unlimited(
    nats_url: str,
) -> None:
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    stream = f"T{uuid.uuid4().hex[:10].upper()}"
    bus = NatsBus(nats_url, stream=stream)
    await bus.start()
    await bus.js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name="store-plate_read",
            ack_policy=AckPolicy.EXPLICIT,
            max_deliver=10,
            filter_subject="safecity.plate_read",
        ),
    )
    await bus.consume(["plate_read"], "store", lambda events: None)
    info = await bus.js.consumer_info(stream, "store-plate_read")
    assert info.config.max_deliver == -1
    await bus.close()
    nc = await nats.connect(nats_url)
    await nc.jetstream().delete_stream(stream)
    await nc.close()


async def test_the_stream_has_age_and_size_limits(nats_url: str) -> None:
    stream = f"T{uuid.uuid4().hex[:10].upper()}"
    bus = NatsBus(nats_url, stream=stream, max_age_days=2, max_bytes=64 * 1024**2)
    await bus.start()
    info = await bus.js.stream_info(stream)
    assert info.config.max_age == pytest.approx(2 * 86_400)
    assert info.config.max_bytes == 64 * 1024**2
    await bus.close()
    await _delete_stream(bus)


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


async def _batches_of_a_trickle(url: str, *, linger: float) -> tuple[list[int], float]:
    """Publishes 40 events 10 ms apart; returns the batch sizes the consumer saw and the first one's delay."""
    stream = f"T{uuid.uuid4().hex[:10].upper()}"
    bus = NatsBus(url, stream=stream, ack_wait=2.0, in_flight=2, linger=linger)
    batches: list[int] = []
    first: list[float] = []
    loop = asyncio.get_running_loop()

    def handle(events: list[Event]) -> None:
        first.append(loop.time()) if not first else None
        batches.append(len(events))

    await bus.start()
    try:
        await bus.consume(["plate_read"], "trickle", handle)
        await asyncio.sleep(0.3)  # the fetch loops are waiting for the first event
        started = loop.time()
        for i in range(40):
            await bus.publish(plate(f"t{i}"))
            await asyncio.sleep(0.01)
        await wait_for(lambda: sum(batches) == 40)
        return batches, first[0] - started
    finally:
        await bus.close()
        await _delete_stream(bus)


async def test_a_trickle_of_events_is_gathered_into_batches_without_holding_the_first_back(
    nats_url: str,
) -> None:
    # One by one, 40 events spread over half a second cost 40 transactions; gathered for 200 ms at
    # a time (what city mode does once its backlog is drained) they cost a handful.
    one_by_one, _ = await _batches_of_a_trickle(nats_url, linger=0.0)
    gathered, delay = await _batches_of_a_trickle(nats_url, linger=0.2)
    assert len(gathered) <= 8, gathered
    assert len(gathered) * 3 <= len(one_by_one), (gathered, one_by_one)
    assert delay < 1.0  # the first event waits for its companions, not for the idle fetch's 5 s
