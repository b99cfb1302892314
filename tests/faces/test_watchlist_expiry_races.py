"""Watch-list expiry happens once per entry however many `serve` processes sweep at the same instant."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import timedelta

from sqlalchemy import func, insert, select

from safecity.audit import service as audit
from safecity.audit.models import AuditEntry
from safecity.core.clock import utcnow
from safecity.core.db import Database
from safecity.core.ids import new_id
from safecity.faces import service
from safecity.faces.models import WatchlistEntry


def test_expiry_sweep_in_two_processes_audits_once(any_db_url: str) -> None:
    now = utcnow()
    processes = [Database(any_db_url) for _ in range(2)]
    processes[0].migrate()
    with processes[0].session() as session:
        session.execute(
            insert(WatchlistEntry),
            [
                {
                    "id": new_id(),
                    "name": f"Wanted person {n}",
                    "category": "wanted",
                    "status": "approved" if n % 10 else "pending",
                    "legal_basis": "warrant KHI-2025-17",
                    "requested_by": "inspector.ali",
                    "case_officer": "inspector.ali",
                    "expires_at": now - timedelta(minutes=n + 1),
                }
                for n in range(1_000)
            ],
        )
    both_swept = threading.Barrier(2, timeout=1.0)

    def sweep(n: int) -> list[str]:
        # Each holds its transaction open until the other has swept too (or a second has passed), so
        # a read-then-update would have both expire every entry.
        with processes[n].session() as session:
            expired = service.expire_due(session, now=now)
            with suppress(threading.BrokenBarrierError):
                both_swept.wait()
        return expired

    try:
        with ThreadPoolExecutor(2) as pool:
            swept = list(pool.map(sweep, range(2)))
        with processes[0].session() as session:
            audited = session.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "faces.expire")
            )
            entries = Counter(session.execute(select(WatchlistEntry.status, WatchlistEntry.version)).all())
            chain = audit.verify(session)
    finally:
        for db in processes:
            db.dispose()
    first, second = swept
    assert len(first) + len(second) == 1_000 and not set(first) & set(second)  # shared, never both
    assert audited == 1_000
    assert entries == {("expired", 2): 1_000}
    assert chain.ok, chain
