"""The running system's shared parts, built once per process and handed to every domain."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from safecity.core import clock, crypto, deadletters
from safecity.core.bus import Bus, make_bus
from safecity.core.db import Database
from safecity.core.jobs import Jobs
from safecity.core.media import MediaStore
from safecity.core.outbox import OutboxRelay
from safecity.settings import Settings

if TYPE_CHECKING:
    from safecity.live.feed import LiveFeeds
    from safecity.web.live import LiveHub


@dataclass
class Context:
    """Settings, database, bus, media store, outbox relay and periodic jobs of one SafeCity process."""

    settings: Settings
    db: Database
    bus: Bus
    media: MediaStore
    live: LiveHub | None = None
    # Live video followed by this process for its viewers (live/feed.py), made on the first viewer.
    video: LiveFeeds | None = None
    runtime: Any = None
    counters: dict[str, int] = field(default_factory=dict)
    # Called when the process stops (pooled connections of the domains).
    on_close: list[Callable[[], None]] = field(default_factory=list)
    outbox: OutboxRelay = field(init=False)
    jobs: Jobs = field(init=False)

    def __post_init__(self) -> None:
        self.outbox = OutboxRelay(self.db, lambda: self.bus)
        self.jobs = Jobs(self.db)
        self.bus.dead_letter_sink = deadletters.sink(self.db)

    @classmethod
    def create(cls, settings: Settings, *, migrate: bool = True) -> Context:
        """Builds the context for `settings`, creating the data folder and migrating the schema."""
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(PermissionError):  # a folder another user owns is theirs to protect
            settings.data_dir.chmod(0o700)  # the database, recordings and outbox inside are personal data
        # The data keys first: a key file others may read stops start-up, and migrations encrypt.
        cipher = crypto.bind(settings)
        clock.use_display_zone(settings.display_timezone)
        db = Database(settings.resolved_database_url)
        if migrate:
            db.migrate()
        media = MediaStore(settings.media_dir, cipher=cipher)
        return cls(settings=settings, db=db, bus=make_bus(settings), media=media)

    async def settle(self, timeout: float = 60.0) -> None:
        """Waits until every event is handled and every staged one published (embedded: tests, the demo)."""
        drain = getattr(self.bus, "drain", None)

        def published() -> int:
            return int(getattr(self.bus, "published", 0)) + self.outbox.published

        async with asyncio.timeout(timeout):
            while True:
                # Quiet means: nothing relayed by us, nor by the relay running beside us, meanwhile.
                before = published()
                if drain is not None:
                    await drain(timeout)
                relayed = await self.outbox.relay_once()
                if drain is not None:
                    await drain(timeout)
                if relayed == 0 and published() == before:
                    return

    def count(self, name: str, n: int = 1) -> None:
        """Adds to a named counter (the demo report reads them)."""
        self.counters[name] = self.counters.get(name, 0) + n
