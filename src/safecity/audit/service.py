"""Writing and verifying the hash-chained audit log.

Each entry's hash covers its own fields and the previous entry's hash, so changing or deleting any
row breaks the chain from there on; `verify` walks it and names the first rows that do not fit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from safecity.audit.models import AuditEntry, AuditHead, VerifyReport
from safecity.core.clock import utcnow

GENESIS = "0" * 64


def _digest(prev_hash: str, seq: int, at: datetime, actor: str, action: str, target: str, detail: Any) -> str:
    body = json.dumps(
        [prev_hash, seq, at.isoformat(timespec="microseconds"), actor, action, target, detail],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def record(
    session: Session, *, actor: str, action: str, target: str = "", detail: dict[str, Any] | None = None
) -> AuditEntry:
    """Appends an entry to the audit log in the caller's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        # One writer at a time keeps the chain linear across every server process.
        session.execute(text("SELECT pg_advisory_xact_lock(7243001)"))
    head = session.get(AuditHead, 1, with_for_update=True)
    prev_seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS)
    at = utcnow()
    clean = json.loads(json.dumps(detail or {}, default=str))
    seq = prev_seq + 1
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        target=target,
        detail=clean,
        prev_hash=prev_hash,
        hash=_digest(prev_hash, seq, at, actor, action, target, clean),
    )
    session.add(entry)
    if head is None:
        session.add(AuditHead(id=1, seq=seq, hash=entry.hash))
    else:
        head.seq, head.hash = seq, entry.hash
    session.flush()
    return entry


def verify(session: Session, *, batch: int = 5000) -> VerifyReport:
    """Walks the chain and reports tampered, inserted or deleted rows by sequence number."""
    problems: list[str] = []
    expected_prev, expected_seq, checked = GENESIS, 1, 0
    last_seq = 0
    while True:
        rows: Sequence[AuditEntry] = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > last_seq).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            checked += 1
            if row.seq != expected_seq:
                problems.append(f"rows {expected_seq}..{row.seq - 1} are missing (deleted)")
            if row.prev_hash != expected_prev:
                problems.append(f"row {row.seq}: its link to the previous row is broken")
            actual = _digest(row.prev_hash, row.seq, row.at, row.actor, row.action, row.target, row.detail)
            if actual != row.hash:
                problems.append(
                    f"row {row.seq} ({row.action} by {row.actor}) was altered after it was written"
                )
            expected_prev, expected_seq, last_seq = row.hash, row.seq + 1, row.seq
        if len(problems) > 50:
            problems.append("… stopped after 50 problems")
            break
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != last_seq or head.hash != expected_prev):
        problems.append(f"the log ends at row {last_seq} but its head says row {head.seq}: rows were deleted")
    return VerifyReport(ok=not problems, checked=checked, problems=problems)


def entries(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> Sequence[AuditEntry]:
    """Returns the newest entries, optionally filtered by actor, action prefix and time."""
    query = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action.startswith(action))
    if since:
        query = query.where(AuditEntry.at >= since)
    return session.scalars(query).all()
