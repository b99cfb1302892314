"""Key-value buckets beside the bus, in memory and on a real NATS: compare-and-set is what leases rest on."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from safecity.core.bus.kv import KeyExists, KeyValue, NatsKeyValue, RevisionChanged, kv_token, open_kv
from safecity.core.bus.memory import MemoryBus
from safecity.core.errors import InvalidInput, Unavailable
from tests.worker.conftest import PrivateNats


@pytest.fixture(params=["memory", "nats"])
async def kv(request: pytest.FixtureRequest) -> AsyncIterator[KeyValue]:
    bucket = f"test-kv-{uuid.uuid4().hex[:8]}"
    if request.param == "memory":
        bus = MemoryBus()
        await bus.start()
        yield await open_kv(bus, bucket)
        await bus.close()
        return
    connection = await nats.connect(request.getfixturevalue("nats_url"))
    js = connection.jetstream()
    store = NatsKeyValue(js, bucket)
    await store.open()
    try:
        yield store
    finally:
        await js.delete_key_value(bucket)
        await connection.close()


async def test_create_is_won_once_and_update_needs_the_revision_read(kv: KeyValue) -> None:
    first = await kv.create("cameras.khi-1", b"worker-a")
    with pytest.raises(KeyExists):
        await kv.create("cameras.khi-1", b"worker-b")
    second = await kv.update("cameras.khi-1", b"worker-a renewed", first)
    with pytest.raises(RevisionChanged):
        await kv.update("cameras.khi-1", b"worker-b", first)  # a stale read loses
    entry = await kv.get("cameras.khi-1")
    assert entry is not None and entry.value == b"worker-a renewed" and entry.revision == second


async def test_delete_with_a_stale_revision_fails_and_a_deleted_key_can_be_created_again(
    kv: KeyValue,
) -> None:
    revision = await kv.create("cameras.khi-2", b"a")
    newer = await kv.update("cameras.khi-2", b"b", revision)
    with pytest.raises(RevisionChanged):
        await kv.delete("cameras.khi-2", revision)
    await kv.delete("cameras.khi-2", newer)
    assert await kv.get("cameras.khi-2") is None
    assert await kv.create("cameras.khi-2", b"c") > newer


async def test_entries_lists_live_keys_under_a_prefix(kv: KeyValue) -> None:
    await kv.put("workers.a", b"1")
    await kv.put("workers.b", b"2")
    await kv.put("cameras.x", b"3")
    await kv.delete("workers.b")
    assert await kv.keys("workers.") == ["workers.a"]
    assert set(await kv.entries()) == {"workers.a", "cameras.x"}
    assert await kv.entries("nothing.") == {}


async def test_bad_keys_are_refused_in_plain_words(kv: KeyValue) -> None:
    with pytest.raises(InvalidInput, match="not a valid key"):
        await kv.put("cameras.khi 1", b"x")
    assert await kv.create("cameras." + kv_token("Saddar Cam #1"), b"x") > 0


def test_any_camera_id_becomes_one_key_token() -> None:
    assert kv_token("khi-s-anpr-1") == "khi-s-anpr-1"
    assert kv_token("Saddar Cam #1") != kv_token("Saddar Cam #2")
    assert "." not in kv_token("cam.1") and " " not in kv_token("a b")
    assert kv_token("h-123") != "h-123"  # an id that looks encoded is encoded too


async def test_a_bucket_lost_with_the_nats_store_is_made_again(
    private_nats: PrivateNats, tmp_path: Path
) -> None:
    connection = await nats.connect(private_nats.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    store = NatsKeyValue(connection.jetstream(timeout=1.0), "test-lost")
    try:
        await store.put("workers.a", b"1")
        private_nats.kill()
        private_nats.store = tmp_path / "a-new-empty-store"
        private_nats.start()
        found = None
        for _ in range(50):  # as a worker's rounds do: try again until NATS answers
            with contextlib.suppress(Unavailable):
                found = await store.entries("workers.")
                break
            await asyncio.sleep(0.2)
        assert found == {}
        await store.put("workers.b", b"2")
        assert await store.keys("workers.") == ["workers.b"]
    finally:
        await connection.close()
