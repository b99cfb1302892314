"""City scale: two `serve` processes on one PostgreSQL and one shared media volume sweep as one."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.errors import Conflict
from safecity.evidence import retention
from safecity.evidence import service as evidence
from safecity.settings import Settings

pytestmark = pytest.mark.city


def process(url: str, data_dir: Path) -> Context:
    return Context.create(Settings(data_dir=data_dir, database_url=url, media_orphan_grace_hours=1))


def test_two_processes_sweep_one_at_a_time_and_remove_each_orphan_once(pg_url: str, tmp_path: Path) -> None:
    first, second = process(pg_url, tmp_path / "shared"), process(pg_url, tmp_path / "shared")
    try:
        then = time.time() - 3 * 3600
        orphans, kept = [], []
        for i in range(300):
            ref = first.media.put(f"object {i}".encode(), "jpg")
            os.utime(first.media.path(ref), (then, then))
            (kept if i % 3 == 0 else orphans).append(ref)
        with first.db.session() as session:
            evidence.own_many(session, "plate_read", ((f"r{i}", ref, utcnow()) for i, ref in enumerate(kept)))
        assert retention.sweep(first.db, first.media, first.settings).waiting == len(orphans)

        later = utcnow() + timedelta(hours=2)
        start = threading.Barrier(2)

        def sweep(ctx: Context) -> Any:
            start.wait()
            try:
                return retention.sweep(ctx.db, ctx.media, ctx.settings, now=later)
            except Conflict as exc:
                return exc

        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(sweep, [first, second]))
        removed = sum(o.removed for o in outcomes if not isinstance(o, Conflict))
        refused = [o for o in outcomes if isinstance(o, Conflict)]
        # Either the second waited out the first's lease (refused) or started after it ended (found nothing).
        assert removed == len(orphans)
        assert all("already running" in e.message for e in refused)
        assert all(not first.media.path(ref).exists() for ref in orphans)
        assert all(second.media.get(ref) for ref in kept)
    finally:
        first.db.dispose()
        second.db.dispose()
