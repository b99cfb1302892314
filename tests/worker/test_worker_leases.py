"""Camera leases: a fair share per worker, one analyst per camera, a dead worker's cameras taken over."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from safecity.core.bus.kv import Entry, KeyValue, MemoryKeyValue
from safecity.core.clock import utcnow
from safecity.core.errors import Conflict, SafeCityError, Unavailable
from safecity.worker.leases import (
    LeaseKeeper,
    LeaseTimings,
    WorkerRecord,
    assign,
    read_cluster,
)

TIMINGS = LeaseTimings(heartbeat_s=0.25, ttl_s=1.0, handover_per_round=2)
CAMERAS = [f"khi-cam-{n:02d}" for n in range(12)]


def worker(worker_id: str, capacity: int = 100, pinned: list[str] | None = None) -> WorkerRecord:
    now = utcnow()
    return WorkerRecord(
        id=worker_id,
        host="test-host",
        pid=abs(hash(worker_id)) % 30000,
        capacity=capacity,
        pinned=pinned or [],
        started=now,
        heartbeat_at=now,
    )


class Analysts:
    """Which worker has each camera open; notes every moment a camera was open on two workers."""

    def __init__(self) -> None:
        self.open: dict[str, str] = {}
        self.doubles: list[tuple[str, str, str]] = []

    def callbacks(
        self, worker_id: str
    ) -> tuple[Callable[[str], Awaitable[bool]], Callable[[str], Awaitable[None]]]:
        async def open_camera(camera_id: str) -> bool:
            if camera_id in self.open:
                self.doubles.append((camera_id, self.open[camera_id], worker_id))
            self.open[camera_id] = worker_id
            return True

        async def close_camera(camera_id: str) -> None:
            await asyncio.sleep(0.05)  # a camera takes a moment to stop
            if self.open.get(camera_id) == worker_id:
                del self.open[camera_id]

        return open_camera, close_camera

    def share(self) -> Counter[str]:
        return Counter(self.open.values())


def keeper(
    kv: KeyValue, analysts: Analysts, record: WorkerRecord, cameras: list[str] = CAMERAS
) -> LeaseKeeper:
    open_camera, close_camera = analysts.callbacks(record.id)

    async def wanted() -> list[str]:
        return cameras

    return LeaseKeeper(
        kv, record, TIMINGS, cameras=wanted, open_camera=open_camera, close_camera=close_camera
    )


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> float:
    """Waits for `predicate`; returns the seconds it took."""
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
async def kv() -> AsyncIterator[KeyValue]:
    yield MemoryKeyValue("test-leases")


def test_each_camera_has_one_preferred_worker_weighted_by_capacity() -> None:
    cameras = [f"cam-{n}" for n in range(3000)]
    small, large = worker("w-small", capacity=10_000), worker("w-large", capacity=20_000)
    shares = Counter(assign(cameras, [small, large]).values())
    assert shares["w-large"] / shares["w-small"] == pytest.approx(2.0, rel=0.15)


def test_a_small_city_is_shared_evenly() -> None:
    # Hashing alone gives w1 all four of these cameras; the bound on the share evens it out.
    shares = Counter(assign(["khi-1", "khi-2", "khi-3", "khi-4"], [worker("w1"), worker("w2")]).values())
    assert shares == {"w1": 2, "w2": 2}


def test_a_joining_worker_takes_only_its_own_share_and_gives_it_back_on_leaving() -> None:
    cameras = [f"cam-{n}" for n in range(600)]
    a, b, c = worker("a", 1000), worker("b", 1000), worker("c", 1000)
    before = assign(cameras, [a, b])
    during = assign(cameras, [a, b, c])
    moved = [cam for cam in cameras if before[cam] != during[cam]]
    assert all(during[cam] == "c" for cam in moved)  # nothing moves between a and b
    assert 150 < len(moved) < 250  # about a third
    assert assign(cameras, [a, b]) == before


def test_capacity_bounds_a_worker_and_pins_win() -> None:
    cameras = [f"cam-{n}" for n in range(10)]
    result = assign(cameras, [worker("a", 3), worker("b", 3), worker("pinned", pinned=["cam-7", "cam-9"])])
    shares = Counter(result.values())
    assert shares["a"] == 3 and shares["b"] == 3 and shares[None] == 2
    assert result["cam-7"] == result["cam-9"] == "pinned"


def test_timings_that_would_mistake_a_slow_heartbeat_for_a_death_are_refused() -> None:
    with pytest.raises(SafeCityError, match="at least twice"):
        LeaseTimings(heartbeat_s=2, ttl_s=3)


async def test_one_worker_alone_holds_every_camera(kv: KeyValue) -> None:
    analysts = Analysts()
    alone = keeper(kv, analysts, worker("alone"))
    await alone.start()
    assert analysts.share() == {"alone": len(CAMERAS)}
    view = await read_cluster(kv, TIMINGS.ttl_s)
    assert {view.holder(c) for c in CAMERAS} == {"alone"}
    await alone.leave()
    assert analysts.open == {}
    view = await read_cluster(kv, TIMINGS.ttl_s)
    assert view.workers == {} and {view.holder(c) for c in CAMERAS} == {None}


async def test_a_joining_worker_takes_its_share_gradually_and_no_camera_is_analysed_twice(
    kv: KeyValue,
) -> None:
    analysts = Analysts()
    first, second = keeper(kv, analysts, worker("first")), keeper(kv, analysts, worker("second"))
    await first.start()
    await second.start()
    assert analysts.share()["second"] <= TIMINGS.handover_per_round  # nothing taken from a live holder
    expected = Counter(assign(CAMERAS, [first.me, second.me]).values())
    await until(lambda: analysts.share() == expected)
    assert analysts.doubles == []
    assert set(analysts.open) == set(CAMERAS)
    view = await read_cluster(kv, TIMINGS.ttl_s)
    assert view.lease_moves == expected["second"]
    await asyncio.gather(first.leave(), second.leave())


async def test_a_dead_workers_cameras_are_taken_over_within_the_time_out(kv: KeyValue) -> None:
    analysts = Analysts()
    doomed, survivor = keeper(kv, analysts, worker("doomed")), keeper(kv, analysts, worker("survivor"))
    await doomed.start()
    await survivor.start()
    await until(lambda: len(analysts.share()) == 2 and set(analysts.open) == set(CAMERAS))
    orphans = {c for c, w in analysts.open.items() if w == "doomed"}
    for task in doomed._tasks:  # the process dies: no more heartbeats, no hand-over
        task.cancel()
    for camera_id in orphans:
        del analysts.open[camera_id]
    took = await until(lambda: orphans <= {c for c, w in analysts.open.items() if w == "survivor"})
    assert took < TIMINGS.ttl_s + 4 * TIMINGS.round_s + 0.5
    assert analysts.doubles == []
    await survivor.leave()


class CutOff(KeyValue):
    """One worker's view of the store, which a test can cut off (a network partition) and heal."""

    def __init__(self, store: KeyValue) -> None:
        super().__init__(store.bucket)
        self.store = store
        self.cut = False

    def _reach(self) -> KeyValue:
        if self.cut:
            raise Unavailable("the key-value store cannot be reached: connection refused")
        return self.store

    async def get(self, key: str) -> Entry | None:
        return await self._reach().get(key)

    async def create(self, key: str, value: bytes) -> int:
        return await self._reach().create(key, value)

    async def update(self, key: str, value: bytes, revision: int) -> int:
        return await self._reach().update(key, value, revision)

    async def put(self, key: str, value: bytes) -> int:
        return await self._reach().put(key, value)

    async def delete(self, key: str, revision: int | None = None) -> None:
        await self._reach().delete(key, revision)

    async def entries(self, prefix: str = "") -> dict[str, Entry]:
        return await self._reach().entries(prefix)


async def test_a_cut_off_worker_keeps_analysing_and_stops_once_it_learns_its_lease_was_taken(
    kv: KeyValue,
) -> None:
    analysts = Analysts()
    view = CutOff(kv)
    cut_off = keeper(view, analysts, worker("cut-off"), cameras=["khi-cam-00"])
    await cut_off.start()
    view.cut = True  # its heartbeats stop reaching the store; the camera stays analysed meanwhile
    other = keeper(kv, analysts, worker("other"), cameras=["khi-cam-00"])
    await other.start()
    await until(lambda: "khi-cam-00" in other.held)
    assert analysts.open["khi-cam-00"] == "other"
    view.cut = False  # the partition heals: the first renewal finds the lease taken
    await until(lambda: "khi-cam-00" not in cut_off.held, timeout=3)
    assert analysts.open == {"khi-cam-00": "other"}
    await asyncio.gather(cut_off.leave(), other.leave())


async def test_an_outage_of_the_whole_store_moves_no_camera(kv: KeyValue) -> None:
    analysts = Analysts()
    views = [CutOff(kv), CutOff(kv)]
    first, second = keeper(views[0], analysts, worker("first")), keeper(views[1], analysts, worker("second"))
    await first.start()
    await second.start()
    expected = Counter(assign(CAMERAS, [first.me, second.me]).values())
    await until(lambda: analysts.share() == expected)
    before, moves = dict(analysts.open), first.moves + second.moves
    for view in views:
        view.cut = True  # NATS is down for everyone, longer than the time-out
    await asyncio.sleep(2 * TIMINGS.ttl_s)
    views[0].cut = False  # workers reconnect one after the other
    await asyncio.sleep(TIMINGS.ttl_s / 2)
    views[1].cut = False
    await asyncio.sleep(2 * TIMINGS.ttl_s)
    assert analysts.open == before and first.moves + second.moves == moves and analysts.doubles == []
    await asyncio.gather(first.leave(), second.leave())


async def test_a_worker_id_in_use_by_a_live_process_is_refused(kv: KeyValue) -> None:
    analysts = Analysts()
    running = keeper(kv, analysts, worker("khi-worker-1"))
    await running.start()
    twin = worker("khi-worker-1")
    twin.pid += 1
    with pytest.raises(Conflict, match="in use"):
        await keeper(kv, analysts, twin).start()
    await running.leave()


async def test_a_pinned_worker_gets_its_cameras_from_the_fair_share(kv: KeyValue) -> None:
    analysts = Analysts()
    sharing = keeper(kv, analysts, worker("sharing"))
    await sharing.start()
    pinned = keeper(kv, analysts, worker("pinned", pinned=["khi-cam-03"]))
    await pinned.start()
    await until(lambda: analysts.open.get("khi-cam-03") == "pinned")
    assert analysts.doubles == [] and analysts.share()["sharing"] == len(CAMERAS) - 1
    await asyncio.gather(sharing.leave(), pinned.leave())
