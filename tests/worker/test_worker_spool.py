"""The worker's spool: nothing it saw is lost while the bus is down, nothing arrives twice, order holds."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from safecity.core.bus.memory import MemoryBus
from safecity.core.bus.nats import NatsBus
from safecity.core.events import PlateRead
from safecity.core.metrics import SPOOL_DROPPED
from safecity.worker.spool import Spool, SpoolingPublisher
from tests.worker.conftest import PrivateNats

STREAM = "SPOOLTEST"


def read(n: int) -> PlateRead:
    return PlateRead(key=f"khi-1:{n}:0", camera_id="khi-1", plate=f"BKR{n:03d}", confidence=0.9)


async def until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def stored_keys(bus: NatsBus) -> list[str]:
    """Returns the keys of every event in the stream, in the order the stream stored them."""
    info = await bus.js.stream_info(STREAM)
    keys = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        message = await bus.js.get_msg(STREAM, seq)
        keys.append(json.loads(message.data or b"{}")["key"])
    return keys


async def test_events_published_while_the_bus_is_down_arrive_once_and_in_order(
    private_nats: PrivateNats, tmp_path: Path
) -> None:
    bus = NatsBus(private_nats.url, stream=STREAM)
    await bus.start()
    publisher = SpoolingPublisher(bus, Spool(tmp_path / "worker-spool.db"), timeout_s=1.0)
    publisher.start()
    try:
        for n in range(3):
            await asyncio.to_thread(publisher.publish, read(n))
        private_nats.kill()
        for n in range(3, 10):
            await asyncio.to_thread(publisher.publish, read(n))
        assert publisher.spool.depth == 7 and publisher.published == 3
        private_nats.start()  # same port, same store
        await until(lambda: publisher.spool.depth == 0)
        await asyncio.to_thread(publisher.publish, read(5))  # a worker re-sending after a lost answer
        assert await stored_keys(bus) == [read(n).key for n in range(10)]
    finally:
        publisher.stop()
        await bus.close()


async def test_spooled_events_survive_a_worker_restart(private_nats: PrivateNats, tmp_path: Path) -> None:
    path = tmp_path / "worker-spool.db"
    bus = NatsBus(private_nats.url, stream=STREAM)
    await bus.start()
    private_nats.kill()
    first_run = SpoolingPublisher(bus, Spool(path), timeout_s=0.5)
    first_run.start()
    for n in range(4):
        await asyncio.to_thread(first_run.publish, read(n))
    first_run.stop()  # the worker stops (or is killed) with the bus still down
    first_run.spool.close()
    await bus.close()

    private_nats.start()
    bus = NatsBus(private_nats.url, stream=STREAM)
    await bus.start()
    second_run = SpoolingPublisher(bus, Spool(path))
    assert second_run.spool.depth == 4
    second_run.start()
    try:
        await until(lambda: second_run.spool.depth == 0)
        assert await stored_keys(bus) == [read(n).key for n in range(4)]
    finally:
        second_run.stop()
        await bus.close()


async def test_a_full_spool_drops_new_events_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bus = MemoryBus()  # never started: nothing can be published
    publisher = SpoolingPublisher(bus, Spool(tmp_path / "worker-spool.db", max_events=3))
    dropped_before = SPOOL_DROPPED._value.get()
    with caplog.at_level(logging.ERROR, logger="safecity.worker.spool"):
        for n in range(5):
            publisher.publish(read(n))
    assert publisher.spool.depth == 3
    assert SPOOL_DROPPED._value.get() - dropped_before == 2
    full = [r.getMessage() for r in caplog.records if "spool full" in r.getMessage()]
    assert len(full) == 1 and "SAFECITY_WORKER_SPOOL_MAX_EVENTS" in full[0]
    assert [json.loads(envelope)["key"] for _, envelope in publisher.spool.oldest(10)] == [
        read(n).key for n in range(3)
    ]


def test_the_spool_lives_in_its_own_folder_when_the_data_folder_is_shared(tmp_path: Path) -> None:
    from safecity.core.context import Context
    from safecity.settings import Settings
    from safecity.worker.runtime import WorkerRuntime

    local = tmp_path / "local-disk"
    ctx = Context.create(Settings(data_dir=tmp_path / "shared", worker_spool_dir=local))
    runtime = WorkerRuntime(ctx)
    try:
        assert runtime.publisher.spool.path == local / "worker-spool.db"
        assert not (tmp_path / "shared" / "worker-spool.db").exists()
    finally:
        runtime.publisher.spool.close()
        ctx.db.dispose()
