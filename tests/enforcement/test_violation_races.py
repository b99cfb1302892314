"""One offence is one violation however many `serve` processes see candidates for it at the same instant."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import UTC, datetime

from sqlalchemy import select

from safecity.core.db import Database
from safecity.core.events import ViolationCandidate
from safecity.enforcement import service
from safecity.enforcement.models import Violation

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


def seen_by(worker: str) -> ViolationCandidate:
    """The same speeding offence as two workers describe it: same vehicle and camera, their own keys."""
    return ViolationCandidate(
        key=f"{worker}:cam-1:speeding:7",
        camera_id="cam-1",
        at=T0,
        offence="speeding",
        plate="ABC123",
        confidence=0.99,
        measured=92.0,
        limit=60.0,
        detail={"unit": "km/h", "track_id": 7},
    )


def test_two_processes_given_the_same_offence_at_once_record_one_violation(any_db_url: str) -> None:
    # Each thread has its own engine, as each `serve` process has; both hold their transaction open
    # until the other has recorded too (or a second has passed), so a read-then-insert would double.
    processes = [Database(any_db_url) for _ in range(2)]
    processes[0].migrate()
    both_recorded = threading.Barrier(2, timeout=1.0)

    def record(n: int) -> bool:
        with processes[n].session() as session:
            _, new = service.record_candidate(session, seen_by(f"worker-{n}"))
            # A broken barrier means the other is waiting for this offence: commit so it can go on.
            with suppress(threading.BrokenBarrierError):
                both_recorded.wait()
        return new

    try:
        with ThreadPoolExecutor(2) as pool:
            created = list(pool.map(record, range(2)))
        with processes[0].session() as session:
            rows = session.scalars(select(Violation)).all()
    finally:
        for db in processes:
            db.dispose()
    assert sorted(created) == [False, True]
    assert len(rows) == 1 and rows[0].occurrences == 2
    assert rows[0].detail["folded"] in (["worker-0:cam-1:speeding:7"], ["worker-1:cam-1:speeding:7"])
