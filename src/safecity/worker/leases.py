"""Camera leases: which worker analyses which camera, shared fairly, moved within seconds of a death.

Every worker writes a heartbeat record (`workers.<id>`: host, pid, capacity, pinned cameras) and
holds a lease per camera it analyses (`cameras.<id>`: holder, since, renewed_at), renewed by
compare-and-set on the lease's revision, all in one key-value bucket (`core/bus/kv.py`: JetStream KV
in a city, memory in one process). Each camera has one preferred holder among the live workers:
rendezvous (highest-random-weight) hashing weighted by capacity, so assignments stay put while the
set of workers stays put, and a joining or leaving worker moves only its own share.

A holder hands a camera over by stopping its analysis first and releasing the lease second; the new
holder claims only a free lease. A worker that dies stops renewing: once its heartbeat or a lease has
not changed for `ttl_s` (timed on the observer's own monotonic clock, so workers need no common
clock), the lease is free and the preferred live worker takes it by compare-and-set.

    keeper = LeaseKeeper(kv, me, timings, cameras=list_ids, open_camera=start, close_camera=stop)
    await keeper.start()   # joins, takes a first share, then keeps heartbeats and rounds going
    ...
    await keeper.leave()   # hands every camera back before going
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, Field

from safecity.core.bus.kv import KeyExists, KeyValue, RevisionChanged, kv_token
from safecity.core.clock import as_utc, utcnow
from safecity.core.errors import Conflict, SafeCityError
from safecity.core.metrics import CAMERAS_HELD, LEASE_MOVES

log = logging.getLogger(__name__)

WORKERS = "workers."
CAMERAS = "cameras."
MOVES_KEY = "stats.lease_moves"
# How far above its weighted share of the cameras a worker may be assigned (0.25: a quarter).
BALANCE_SLACK = 0.25


class WorkerRecord(BaseModel):
    """A worker's heartbeat record: who it is, how many cameras it takes, when it last beat."""

    id: str = Field(title="Worker", description="Unique id of the worker process.")
    host: str = Field(title="Host", description="Host name the worker runs on.")
    pid: int = Field(title="Process", description="Process id on that host.")
    capacity: int = Field(ge=0, title="Capacity", description="Most cameras it analyses at once.")
    pinned: list[str] = Field(
        default_factory=list, title="Pinned", description="Cameras it was told to take."
    )
    leaving: bool = Field(default=False, title="Leaving", description="Handing its cameras back to stop.")
    started: datetime = Field(title="Started", description="When the worker joined.")
    heartbeat_at: datetime = Field(title="Last heartbeat", description="When it last wrote this record.")


class LeaseRecord(BaseModel):
    """Who analyses a camera, since when, last renewed when; `holder` is None once released."""

    camera_id: str = Field(title="Camera", description="The camera leased.")
    holder: str | None = Field(default=None, title="Holder", description="Worker analysing it, if any.")
    since: datetime | None = Field(default=None, title="Since", description="When the holder took it.")
    renewed_at: datetime = Field(title="Renewed", description="When the holder last renewed (or released).")
    previous: str | None = Field(default=None, title="Previous holder", description="Who held it before.")


@dataclass(frozen=True)
class LeaseTimings:
    """How often a worker beats and renews, after how long silence means death, how fast it hands over."""

    heartbeat_s: float = 2.0
    ttl_s: float = 6.0
    handover_per_round: int = 8

    def __post_init__(self) -> None:
        if self.ttl_s < 2 * self.heartbeat_s:
            raise SafeCityError(
                f"the lease time-out ({self.ttl_s} s) must be at least twice the heartbeat "
                f"({self.heartbeat_s} s), or a slow heartbeat would look like a death",
                hint="raise SAFECITY_LEASE_TTL_S or lower SAFECITY_LEASE_HEARTBEAT_S",
            )

    @property
    def round_s(self) -> float:
        """Seconds between assignment rounds (half a heartbeat: a death is noticed soon after)."""
        return self.heartbeat_s / 2


def worker_key(worker_id: str) -> str:
    """Returns the key of a worker's heartbeat record."""
    return WORKERS + kv_token(worker_id)


def camera_key(camera_id: str) -> str:
    """Returns the key of a camera's lease."""
    return CAMERAS + kv_token(camera_id)


def rendezvous_score(camera_id: str, worker_id: str, weight: float) -> float:
    """Returns the worker's weighted highest-random-weight score for a camera (higher wins)."""
    digest = hashlib.blake2b(f"{camera_id}\0{worker_id}".encode(), digest_size=8).digest()
    unit = (int.from_bytes(digest, "big") + 0.5) / 2**64
    return weight / -math.log(unit)


def assign(cameras: Iterable[str], workers: Iterable[WorkerRecord]) -> dict[str, str | None]:
    """Returns each camera's preferred holder among `workers` (None when every worker is full).

    Cameras pinned by a worker go to it (the lowest id among several); the rest go by rendezvous
    hashing weighted by capacity to the best-scoring worker that still has room, in camera-id order,
    so every worker computing this from the same view gets the same answer. A worker's room is its
    capacity, and at most a quarter above its weighted share: hashing alone can give one of two
    workers all of four cameras, and the bound keeps a small city even while a large one keeps
    nearly every camera on its first choice.
    """
    live = sorted((w for w in workers if not w.leaving), key=lambda w: w.id)
    result: dict[str, str | None] = dict.fromkeys(cameras)
    pinned: dict[str, str] = {}
    for worker in live:
        for camera_id in worker.pinned:
            if camera_id in result:
                pinned.setdefault(camera_id, worker.id)
    result.update(pinned)
    sharing = [w for w in live if not w.pinned and w.capacity > 0]
    shared = sorted(c for c in result if c not in pinned)
    total = sum(w.capacity for w in sharing)
    room = {}
    for worker in sharing:
        fair = len(shared) * worker.capacity / total
        room[worker.id] = min(worker.capacity, math.ceil(fair) + math.floor(BALANCE_SLACK * fair))
    for camera_id in shared:
        ranked = sorted(sharing, key=lambda w: rendezvous_score(camera_id, w.id, w.capacity), reverse=True)
        for worker in ranked:
            if room[worker.id] > 0:
                room[worker.id] -= 1
                result[camera_id] = worker.id
                break
    return result


class _Freshness:
    """When this process first saw each key at its current revision: expiry without a common clock."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._seen: dict[str, tuple[int, float]] = {}

    def alive(self, key: str, revision: int) -> bool:
        """Returns whether a record at `revision` has changed within the time-out, as far as we saw."""
        mono = time.monotonic()
        seen = self._seen.get(key)
        if seen is None or seen[0] != revision:
            seen = self._seen[key] = (revision, mono)
        return mono - seen[1] < self.ttl_s

    def keep_only(self, keys: Collection[str]) -> None:
        """Forgets keys no longer present."""
        for key in [k for k in self._seen if k not in keys]:
            del self._seen[key]

    def forget(self) -> None:
        """Forgets everything: after we could not see the store, nobody's silence proves anything."""
        self._seen.clear()


@dataclass
class ClusterView:
    """The bucket as one read sees it: every worker record, every lease, the count of lease moves."""

    workers: dict[str, WorkerRecord]
    leases: dict[str, LeaseRecord]
    lease_moves: int
    ttl_s: float
    now: datetime = field(default_factory=utcnow)

    def alive(self, worker_id: str | None) -> bool:
        """Returns whether a worker's last heartbeat is within the time-out (by the writers' clocks)."""
        worker = self.workers.get(worker_id or "")
        return worker is not None and (self.now - as_utc(worker.heartbeat_at)).total_seconds() < self.ttl_s

    def holder(self, camera_id: str) -> str | None:
        """Returns the live worker holding a camera's lease, if any."""
        lease = self.leases.get(camera_id)
        if lease is None or lease.holder is None or not self.alive(lease.holder):
            return None
        return lease.holder if (self.now - as_utc(lease.renewed_at)).total_seconds() < self.ttl_s else None


async def read_cluster(kv: KeyValue, ttl_s: float) -> ClusterView:
    """Reads every worker record and lease in the bucket (for status pages and the centre's watchdog)."""
    workers = {}
    for entry in (await kv.entries(WORKERS)).values():
        record = WorkerRecord.model_validate_json(entry.value)
        workers[record.id] = record
    leases = {}
    for entry in (await kv.entries(CAMERAS)).values():
        lease = LeaseRecord.model_validate_json(entry.value)
        leases[lease.camera_id] = lease
    moves = await kv.get(MOVES_KEY)
    return ClusterView(workers, leases, int(moves.value) if moves else 0, ttl_s)


async def count_moves(kv: KeyValue, n: int) -> None:
    """Adds `n` to the cluster's count of lease moves (compare-and-set; a lost race tries again)."""
    for _ in range(10):
        current = await kv.get(MOVES_KEY)
        try:
            if current is None:
                await kv.create(MOVES_KEY, str(n).encode())
            else:
                await kv.update(MOVES_KEY, str(int(current.value) + n).encode(), current.revision)
            return
        except (KeyExists, RevisionChanged):
            continue


OpenCamera = Callable[[str], Awaitable[bool]]
CloseCamera = Callable[[str], Awaitable[None]]
ListCameras = Callable[[], Awaitable[Collection[str]]]


class LeaseKeeper:
    """Holds this worker's camera leases: joins, claims its share, renews, hands over, leaves."""

    def __init__(
        self,
        kv: KeyValue,
        me: WorkerRecord,
        timings: LeaseTimings,
        *,
        cameras: ListCameras,
        open_camera: OpenCamera,
        close_camera: CloseCamera,
        retry_open_s: float = 30.0,
    ) -> None:
        self.kv = kv
        self.me = me
        self.timings = timings
        self.cameras = cameras
        self.open_camera = open_camera
        self.close_camera = close_camera
        self.retry_open_s = retry_open_s
        self.held: dict[str, int] = {}  # camera -> revision of our last write to its lease
        self.since: dict[str, datetime] = {}
        self.opened: set[str] = set()
        self.moves = 0
        self._retry_at: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._workers = _Freshness(timings.ttl_s)
        self._leases = _Freshness(timings.ttl_s)
        self._live: dict[str, WorkerRecord] = {}
        self._assignment: dict[str, str | None] = {}
        self._assigned_from: tuple[object, ...] | None = None
        self._handing: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._failing_since: float | None = None
        self._view_stale = False
        self._last_complaint = 0.0
        if me.pinned:
            me.capacity = len(me.pinned)

    # -- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Joins the cluster, takes a first share of the cameras, and keeps beating and balancing."""
        existing = await self.kv.get(worker_key(self.me.id))
        if existing is not None:
            other = WorkerRecord.model_validate_json(existing.value)
            fresh = (utcnow() - as_utc(other.heartbeat_at)).total_seconds() < self.timings.ttl_s
            if fresh and (other.host, other.pid) != (self.me.host, self.me.pid):
                raise Conflict(
                    f"worker id {self.me.id!r} is in use by {other.host} (process {other.pid})",
                    hint="give each worker its own SAFECITY_WORKER_ID, or leave it empty",
                )
        await self._heartbeat()
        await self.round()
        self._tasks = [
            asyncio.create_task(self._every(self.timings.heartbeat_s, self._beat), name="lease-heartbeat"),
            asyncio.create_task(self._every(self.timings.round_s, self.round), name="lease-rounds"),
        ]

    async def leave(self) -> None:
        """Stops analysing every camera, then releases its lease and removes this worker's record."""
        self.me.leaving = True
        with contextlib.suppress(Exception):
            await self._heartbeat()  # others stop assigning to us while we close
        for task in self._tasks[1:]:
            task.cancel()
        await asyncio.gather(*self._tasks[1:], return_exceptions=True)
        await asyncio.gather(*self._side_tasks, return_exceptions=True)
        # Heartbeats and renewals go on while cameras close, so no lease lapses half-way.
        held = list(self.held)
        await asyncio.gather(*(self._hand_back(c) for c in held), return_exceptions=True)
        log.info("worker %s handed its %d cameras back", self.me.id, len(held))
        for task in self._tasks[:1]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        try:
            await self.kv.delete(worker_key(self.me.id))
        except Exception as exc:
            log.warning("worker %s could not remove its record: %s", self.me.id, exc)

    async def _every(self, seconds: float, step: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await step()
                if self._failing_since is not None:
                    log.warning("leases work again after %.0f s", time.monotonic() - self._failing_since)
                    self._failing_since = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The store is down: keep analysing what we hold (nobody else can claim it meanwhile);
                # the first renewal afterwards tells whether someone did.
                now = time.monotonic()
                self._failing_since = self._failing_since or now
                self._view_stale = True
                if now - self._last_complaint >= 30:
                    self._last_complaint = now
                    log.error(
                        "worker %s cannot reach its leases, keeping its %d cameras: %s: %s",
                        self.me.id,
                        len(self.held),
                        type(exc).__name__,
                        exc,
                    )

    # -- heartbeat and renewal ------------------------------------------------------------------

    async def _beat(self) -> None:
        await self._heartbeat()
        await self._renew_all()

    async def _heartbeat(self) -> None:
        self.me.heartbeat_at = utcnow()
        await self.kv.put(worker_key(self.me.id), self.me.model_dump_json().encode())

    async def _renew_all(self) -> None:
        limit = asyncio.Semaphore(64)

        async def renew(camera_id: str) -> None:
            async with limit:
                await self._renew(camera_id)

        results = await asyncio.gather(*(renew(c) for c in list(self.held)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, Exception)]
        if failures:
            raise failures[0]

    async def _renew(self, camera_id: str) -> None:
        async with self._lock(camera_id):
            revision = self.held.get(camera_id)
            if revision is None:
                return
            lease = LeaseRecord(
                camera_id=camera_id,
                holder=self.me.id,
                since=self.since.get(camera_id),
                renewed_at=utcnow(),
            )
            try:
                self.held[camera_id] = await self.kv.update(
                    camera_key(camera_id), lease.model_dump_json().encode(), revision
                )
            except RevisionChanged:
                # Someone took it while we could not renew (a partition): stop at once.
                log.warning("worker %s lost the lease of camera %s; stopping it", self.me.id, camera_id)
                self._forget(camera_id)
                self._spawn(self._close(camera_id))

    # -- assignment rounds ----------------------------------------------------------------------

    async def round(self) -> None:
        """Reads the live workers, hands over what is no longer ours, claims what is ours and free."""
        wanted = set(await self.cameras())
        now = utcnow()
        records = await self.kv.entries(WORKERS)
        if self._view_stale:
            # Back from an outage of the store: every record looks unchanged since it began, so each
            # worker gets a full time-out from now to show it is alive.
            self._workers.forget()
            self._leases.forget()
            self._view_stale = False
        self._workers.keep_only(records)
        others = {
            key: (entry, WorkerRecord.model_validate_json(entry.value))
            for key, entry in records.items()
            if key != worker_key(self.me.id)
        }
        # A record far older than the freshest of the others died before we started watching (a
        # comparison between the others' own stamps, so it holds after an outage that aged them all).
        freshest = max((as_utc(r.heartbeat_at) for _, r in others.values()), default=now)
        live: dict[str, WorkerRecord] = {self.me.id: self.me}
        for key, (entry, record) in others.items():
            long_dead = (freshest - as_utc(record.heartbeat_at)).total_seconds() > 2 * self.timings.ttl_s
            if not long_dead and self._workers.alive(key, entry.revision):
                live[record.id] = record
            elif (now - as_utc(record.heartbeat_at)).total_seconds() > 10 * self.timings.ttl_s:
                with contextlib.suppress(RevisionChanged):
                    await self.kv.delete(key, entry.revision)  # long dead: tidy the list
        self._live = live
        assignment = self._assign(wanted, live)
        handed = 0
        for camera_id in sorted(self.held):
            if camera_id in self._handing or assignment.get(camera_id) == self.me.id:
                continue
            gone = camera_id not in wanted
            if not gone and handed >= self.timings.handover_per_round:
                continue  # a join moves gradually; a camera taken off the registry goes at once
            handed += not gone
            self._handing.add(camera_id)
            self._spawn(self._hand_back(camera_id, forget=gone))
        mine = [c for c, w in sorted(assignment.items()) if w == self.me.id and c not in self.held]
        claimed = [c for c in await asyncio.gather(*(self._claim(c) for c in mine)) if c]
        retry = [
            c
            for c in self.held
            if c not in self.opened
            and c not in self._handing
            and self._retry_at.get(c, 0) <= time.monotonic()
        ]
        limit = asyncio.Semaphore(8)

        async def start(camera_id: str) -> None:
            async with limit:
                await self._open(camera_id)

        await asyncio.gather(*(start(c) for c in dict.fromkeys(claimed + retry)))
        CAMERAS_HELD.set(len(self.held))

    def _assign(self, wanted: set[str], live: dict[str, WorkerRecord]) -> dict[str, str | None]:
        basis = (
            frozenset(wanted),
            tuple(sorted((w.id, w.capacity, tuple(w.pinned), w.leaving) for w in live.values())),
        )
        if basis != self._assigned_from:
            self._assignment = assign(wanted, live.values())
            self._assigned_from = basis
        return self._assignment

    async def _claim(self, camera_id: str) -> str | None:
        """Takes a free lease by compare-and-set; returns the camera if it is now ours."""
        key = camera_key(camera_id)
        async with self._lock(camera_id):
            current = await self.kv.get(key)
            previous: str | None = None
            if current is not None:
                lease = LeaseRecord.model_validate_json(current.value)
                busy = (
                    lease.holder is not None
                    and lease.holder != self.me.id
                    and lease.holder in self._live
                    and self._leases.alive(key, current.revision)
                )
                if busy:
                    return None  # its holder hands it over (or dies) first
                previous = lease.holder or lease.previous
            record = LeaseRecord(
                camera_id=camera_id, holder=self.me.id, since=utcnow(), renewed_at=utcnow(), previous=previous
            )
            data = record.model_dump_json().encode()
            try:
                if current is None:
                    revision = await self.kv.create(key, data)
                else:
                    revision = await self.kv.update(key, data, current.revision)
            except (KeyExists, RevisionChanged):
                return None  # another worker was quicker
            self.held[camera_id] = revision
            self.since[camera_id] = record.since or utcnow()
        if previous is not None and previous != self.me.id:
            self.moves += 1
            LEASE_MOVES.inc()
            self._spawn(count_moves(self.kv, 1))
            log.info("worker %s took camera %s over from %s", self.me.id, camera_id, previous)
        return camera_id

    async def _open(self, camera_id: str) -> None:
        try:
            opened = await self.open_camera(camera_id)
        except Exception as exc:
            log.exception("camera %s could not be started: %s", camera_id, exc)
            opened = False
        if opened and camera_id in self.held:
            self.opened.add(camera_id)
            self._retry_at.pop(camera_id, None)
        elif opened:
            await self._close(camera_id)  # lost the lease while opening
        else:
            # Keep the lease (another worker would fail the same way) and try again later.
            self._retry_at[camera_id] = time.monotonic() + self.retry_open_s

    async def _close(self, camera_id: str) -> None:
        if camera_id in self.opened:
            self.opened.discard(camera_id)
            await self.close_camera(camera_id)

    async def _hand_back(self, camera_id: str, *, forget: bool = False) -> None:
        """Stops analysing a camera, then releases its lease (deletes it, for a camera now gone)."""
        try:
            await self._close(camera_id)
            self._retry_at.pop(camera_id, None)
            key = camera_key(camera_id)
            async with self._lock(camera_id):
                revision = self.held.get(camera_id)
                if revision is None:
                    return
                self._forget(camera_id)
                released = LeaseRecord(
                    camera_id=camera_id, holder=None, renewed_at=utcnow(), previous=self.me.id
                )
                try:
                    if forget:
                        await self.kv.delete(key, revision)
                    else:
                        await self.kv.update(key, released.model_dump_json().encode(), revision)
                except RevisionChanged:
                    pass  # already taken by someone else: nothing of ours to release
            log.debug("worker %s handed camera %s back", self.me.id, camera_id)
        finally:
            self._handing.discard(camera_id)

    def _forget(self, camera_id: str) -> None:
        self.held.pop(camera_id, None)
        self.since.pop(camera_id, None)
        CAMERAS_HELD.set(len(self.held))

    def _lock(self, camera_id: str) -> asyncio.Lock:
        return self._locks.setdefault(camera_id, asyncio.Lock())

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception as exc:
                log.warning("lease work failed: %s", exc)

        task = asyncio.create_task(run())
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)
