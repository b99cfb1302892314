"""The running system's shared parts, built once per process and handed to every domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from safecity.core.bus import Bus, make_bus
from safecity.core.db import Database
from safecity.core.media import MediaStore
from safecity.settings import Settings

if TYPE_CHECKING:
    from safecity.web.live import LiveHub


@dataclass
class Context:
    """Settings, database, bus and media store of one SafeCity process."""

    settings: Settings
    db: Database
    bus: Bus
    media: MediaStore
    live: LiveHub | None = None
    runtime: Any = None
    counters: dict[str, int] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, *, migrate: bool = True) -> Context:
        """Builds the context for `settings`, creating the data folder and migrating the schema."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        if migrate:
            db.migrate()
        return cls(settings=settings, db=db, bus=make_bus(settings), media=MediaStore(settings.media_dir))

    def count(self, name: str, n: int = 1) -> None:
        """Adds to a named counter (the demo report reads them)."""
        self.counters[name] = self.counters.get(name, 0) + n
