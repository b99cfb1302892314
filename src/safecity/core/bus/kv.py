"""Key-value buckets beside the bus: JetStream KV in a city, a dictionary in one process.

Camera leases, worker heartbeats and other small shared state live here. Every write returns the
key's new revision, and `update` writes only if the key is still at the revision the caller read
(compare-and-set), so two processes racing for the same key cannot both win:

    kv = await open_kv(ctx.bus, "safecity-cameras")
    revision = await kv.create("cameras.khi-1", b"{...}")        # KeyExists if someone has it
    revision = await kv.update("cameras.khi-1", b"{...}", revision)  # RevisionChanged if it moved on

Keys are dot-separated tokens of letters, digits, `-`, `_` and `=` (`kv_token` makes any text one).
The NATS server this project targets (2.9) has no per-message expiry: a bucket may set `max_age`
for all its keys, and anything finer is the caller's timestamps plus compare-and-set.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from safecity.core.errors import Conflict, InvalidInput, Unavailable

if TYPE_CHECKING:
    from nats.js import JetStreamContext
    from nats.js.kv import KeyValue as NatsKV

    from safecity.core.bus import Bus

T = TypeVar("T")
log = logging.getLogger(__name__)

_TOKEN = re.compile(r"^[-_=A-Za-z0-9]+$")
_BUCKET = re.compile(r"^[-_A-Za-z0-9]+$")


class KeyExists(Conflict):
    """`create` found the key already there."""

    code = "key_exists"


class RevisionChanged(Conflict):
    """`update` or `delete` found the key at another revision than the one given (or gone)."""

    code = "revision_changed"


@dataclass(frozen=True)
class Entry:
    """One key's current value and the revision that wrote it."""

    key: str
    value: bytes
    revision: int


def kv_token(text: str) -> str:
    """Returns `text` as one key token: kept as is when it is safe, else `h-` and its hex."""
    if _TOKEN.match(text) and not text.startswith("h-"):
        return text
    return "h-" + text.encode().hex()


class KeyValue(ABC):
    """A bucket of keys with revisions; every method may raise `Unavailable` when the store is down."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    @abstractmethod
    async def get(self, key: str) -> Entry | None:
        """Returns the key's current entry, or None if it does not exist (or was deleted)."""

    @abstractmethod
    async def create(self, key: str, value: bytes) -> int:
        """Writes a key that does not exist yet; returns its revision or raises KeyExists."""

    @abstractmethod
    async def update(self, key: str, value: bytes, revision: int) -> int:
        """Writes the key if it is still at `revision`; returns the new one or raises RevisionChanged."""

    @abstractmethod
    async def put(self, key: str, value: bytes) -> int:
        """Writes the key whatever its revision; returns the new one."""

    @abstractmethod
    async def delete(self, key: str, revision: int | None = None) -> None:
        """Deletes the key (only if still at `revision`, when given: else RevisionChanged)."""

    @abstractmethod
    async def entries(self, prefix: str = "") -> dict[str, Entry]:
        """Returns every live key starting with `prefix` (whole tokens ending in ".", e.g. "workers.")."""

    async def keys(self, prefix: str = "") -> list[str]:
        """Returns the live keys starting with `prefix`, sorted."""
        return sorted(await self.entries(prefix))


class MemoryKeyValue(KeyValue):
    """A bucket in this process's memory (the embedded default); safe to use from any thread or loop."""

    def __init__(self, bucket: str, *, max_age: float | None = None) -> None:
        super().__init__(bucket)
        self.max_age = max_age
        self._data: dict[str, tuple[Entry, float]] = {}
        self._revision = 0
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> Entry | None:
        held = self._data.get(key)
        if held is None:
            return None
        entry, written = held
        if self.max_age is not None and now - written > self.max_age:
            del self._data[key]
            return None
        return entry

    def _write(self, key: str, value: bytes) -> int:
        self._revision += 1
        self._data[key] = (Entry(key, value, self._revision), time.monotonic())
        return self._revision

    async def get(self, key: str) -> Entry | None:
        with self._lock:
            return self._live(_checked(key), time.monotonic())

    async def create(self, key: str, value: bytes) -> int:
        with self._lock:
            if self._live(_checked(key), time.monotonic()) is not None:
                raise KeyExists(f"{key} already exists in {self.bucket}")
            return self._write(key, value)

    async def update(self, key: str, value: bytes, revision: int) -> int:
        with self._lock:
            current = self._live(_checked(key), time.monotonic())
            if current is None or current.revision != revision:
                raise RevisionChanged(f"{key} in {self.bucket} is no longer at revision {revision}")
            return self._write(key, value)

    async def put(self, key: str, value: bytes) -> int:
        with self._lock:
            return self._write(_checked(key), value)

    async def delete(self, key: str, revision: int | None = None) -> None:
        with self._lock:
            current = self._live(_checked(key), time.monotonic())
            if revision is not None and (current is None or current.revision != revision):
                raise RevisionChanged(f"{key} in {self.bucket} is no longer at revision {revision}")
            self._data.pop(key, None)

    async def entries(self, prefix: str = "") -> dict[str, Entry]:
        _checked_prefix(prefix)
        with self._lock:
            now = time.monotonic()
            found = {key: self._live(key, now) for key in list(self._data) if key.startswith(prefix)}
        return {key: entry for key, entry in found.items() if entry is not None}


class NatsKeyValue(KeyValue):
    """A JetStream KV bucket (one stream `KV_<bucket>`, one message per key kept)."""

    def __init__(self, js: JetStreamContext, bucket: str, *, max_age: float | None = None) -> None:
        super().__init__(bucket)
        self._js = js
        self.max_age = max_age
        self._kv: NatsKV | None = None
        self._opening = asyncio.Lock()

    async def open(self) -> None:
        """Binds to the bucket, creating it if it does not exist (two creators agree: same config)."""
        from nats.js.api import KeyValueConfig
        from nats.js.errors import BucketNotFoundError

        async with self._opening:
            try:
                self._kv = await self._js.key_value(self.bucket)
                return
            except BucketNotFoundError:
                pass
            config = KeyValueConfig(bucket=self.bucket, history=1, ttl=self.max_age)
            try:
                self._kv = await self._js.create_key_value(config)
            except Exception:
                # Another process created it a moment earlier; bind to theirs.
                self._kv = await self._js.key_value(self.bucket)

    async def _call(self, operation: Callable[[NatsKV], Awaitable[T]]) -> T:
        """Runs an operation on the bucket; a bucket gone (NATS restarted without its store) is made again."""
        import nats.errors
        from nats.js.errors import KeyValueError, NotFoundError

        if self._kv is None:
            await self.open()
        assert self._kv is not None
        try:
            return await _guard(operation(self._kv))
        except Unavailable as exc:
            if not isinstance(exc.__cause__, nats.errors.NoRespondersError):
                raise
        except NotFoundError as exc:
            if isinstance(exc, KeyValueError):
                raise
        log.warning("key-value bucket %s is gone (NATS lost its store?); making it again", self.bucket)
        self._kv = None
        await self.open()
        assert self._kv is not None
        return await _guard(operation(self._kv))

    async def get(self, key: str) -> Entry | None:
        from nats.js.errors import KeyNotFoundError

        async def get(kv: NatsKV) -> Entry | None:
            try:
                entry = await kv.get(_checked(key))
            except KeyNotFoundError:
                return None
            return Entry(key, entry.value or b"", int(entry.revision or 0))

        return await self._call(get)

    async def create(self, key: str, value: bytes) -> int:
        from nats.js.errors import KeyWrongLastSequenceError

        try:
            return int(await self._call(lambda kv: kv.create(_checked(key), value)))
        except KeyWrongLastSequenceError:
            raise KeyExists(f"{key} already exists in {self.bucket}") from None

    async def update(self, key: str, value: bytes, revision: int) -> int:
        from nats.js.errors import KeyWrongLastSequenceError

        try:
            return int(await self._call(lambda kv: kv.update(_checked(key), value, last=revision)))
        except KeyWrongLastSequenceError:
            raise RevisionChanged(f"{key} in {self.bucket} is no longer at revision {revision}") from None

    async def put(self, key: str, value: bytes) -> int:
        return int(await self._call(lambda kv: kv.put(_checked(key), value)))

    async def delete(self, key: str, revision: int | None = None) -> None:
        from nats.js.errors import APIError

        try:
            await self._call(lambda kv: kv.delete(_checked(key), last=revision))
        except APIError as exc:
            if exc.err_code in (10071, 10164):  # JetStream's "wrong last sequence"
                raise RevisionChanged(f"{key} in {self.bucket} is no longer at revision {revision}") from None
            raise

    async def entries(self, prefix: str = "") -> dict[str, Entry]:
        _checked_prefix(prefix)
        # One short-lived ordered consumer delivers the newest message of every key, then stops; the
        # server forgets it 2 s after (left at the client's default, thousands would linger 5 min).
        subject = f"{prefix}>" if prefix else ">"

        async def scan(kv: NatsKV) -> dict[str, Entry]:
            watcher = await kv.watch(subject, ignore_deletes=True, inactive_threshold=2.0)
            found: dict[str, Entry] = {}
            try:
                while True:
                    update = await watcher.updates(timeout=5.0)
                    if update is None:
                        return found
                    found[update.key] = Entry(update.key, update.value or b"", int(update.revision or 0))
            finally:
                await watcher.stop()

        return await self._call(scan)


async def _guard(operation: Awaitable[T]) -> T:
    """Awaits a NATS call, turning "no connection / no answer" into `Unavailable` in plain words."""
    import nats.errors

    try:
        return await operation
    except (nats.errors.TimeoutError, TimeoutError) as exc:
        raise Unavailable("the NATS key-value store did not answer in time", hint="check NATS") from exc
    except (nats.errors.ConnectionClosedError, nats.errors.NoRespondersError) as exc:
        raise Unavailable(f"the NATS key-value store cannot be reached: {exc}", hint="check NATS") from exc


def _checked(key: str) -> str:
    if not key or not all(_TOKEN.match(token) for token in key.split(".")):
        raise InvalidInput(
            f"{key!r} is not a valid key", hint="use dot-separated tokens of letters, digits, - _ ="
        )
    return key


def _checked_prefix(prefix: str) -> None:
    if prefix and not prefix.endswith("."):
        raise InvalidInput(f"key prefix {prefix!r} must end with '.'", hint='e.g. "workers."')
    if prefix:
        _checked(prefix[:-1])


# The embedded default: one bucket per (bus, name), so everything in one process shares it.
_memory: weakref.WeakKeyDictionary[Bus, dict[str, MemoryKeyValue]] = weakref.WeakKeyDictionary()
_memory_lock = threading.Lock()


async def open_kv(bus: Bus, bucket: str, *, max_age: float | None = None) -> KeyValue:
    """Returns the bucket `bucket` beside `bus` (created if missing); `max_age` expires every key."""
    if not _BUCKET.match(bucket):
        raise InvalidInput(f"{bucket!r} is not a valid bucket name", hint="use letters, digits, - and _ only")
    from safecity.core.bus.nats import NatsBus

    if isinstance(bus, NatsBus):
        kv = NatsKeyValue(bus.js, bucket, max_age=max_age)
        await kv.open()
        return kv
    with _memory_lock:
        buckets = _memory.setdefault(bus, {})
        return buckets.setdefault(bucket, MemoryKeyValue(bucket, max_age=max_age))
