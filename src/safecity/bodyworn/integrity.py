"""Integrity of the stored originals: hash each again and compare with the digest taken on arrival.

On demand (`safecity evidence verify ID|--all`) and on a schedule (`verify_due`, each item at least
every `bodyworn_verify_days`). Every check is in the item's custody log; a mismatch or a missing file
also raises a priority-1 alert, since it means the evidence store was tampered with or damaged.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

from sqlalchemy import or_, select

from safecity.alerts import service as alerts
from safecity.bodyworn import custody
from safecity.bodyworn.models import BodyWornItem, VerifyOut
from safecity.core.clock import utcnow
from safecity.core.context import Context

log = logging.getLogger(__name__)

ALERT_KIND = "evidence_tampered"
BLOCK = 4 * 1024**2
# What one scheduled turn hashes at most, so a large store is verified over many turns, never all at once.
TURN_BYTES = 20 * 1024**3


def sha256_file(path: Path) -> str:
    """Returns the SHA-256 of a file, read in large blocks."""
    digest = hashlib.sha256()
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as handle:
        while n := handle.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def verify_item(ctx: Context, item_id: str, *, actor: str, reason: str = "on demand") -> str:
    """Hashes one item's original again: "ok", "mismatch" or "missing" (recorded; alerts on failure)."""
    with ctx.db.session() as session:
        item = session.get(BodyWornItem, item_id)
        if item is None or item.status == "purged":
            return "missing" if item is not None else "unknown"
        ref, expected = item.ref, item.sha256
    path = ctx.media.path(ref)
    found = sha256_file(path) if path.exists() else None
    outcome = "ok" if found == expected else "missing" if found is None else "mismatch"
    with ctx.db.session() as session:
        item = session.get(BodyWornItem, item_id)
        assert item is not None
        item.verified_at, item.verified_ok = utcnow(), outcome == "ok"
        custody.record(
            session,
            item.id,
            actor=actor,
            action="verify" if outcome == "ok" else "verify_failed",
            reason=reason,
            outcome=outcome,
            expected=expected,
            found=found,
        )
        if outcome != "ok":
            log.error("body-worn item %s: stored original %s (%s)", item.id, outcome, ref)
            alert, new = alerts.raise_alert(
                session,
                kind=ALERT_KIND,
                priority=1,
                title=f"Body-worn evidence {item.id} failed its integrity check: the original is {outcome}",
                source_key=f"{ALERT_KIND}:{item.id}:{found}",
                dedup_key=f"{ALERT_KIND}:{item.id}",
                detail={
                    "item": item.id,
                    "file": item.filename,
                    "expected_sha256": expected,
                    "found_sha256": found,
                    "what_to_do": "restore the file from backup, then run `safecity evidence verify "
                    f"{item.id}`; check `safecity audit verify` and who had access to the media volume",
                },
                dedup_window=timedelta(days=1),
            )
            if new:
                alerts.announce(ctx, session, alert)
    return outcome


def verify_many(
    ctx: Context,
    item_ids: Sequence[str],
    *,
    actor: str,
    reason: str = "on demand",
    progress: Callable[[str, str, int], None] | None = None,
) -> VerifyOut:
    """Verifies items one by one; `progress(item_id, outcome, bytes)` after each."""
    report = VerifyOut()
    started = time.perf_counter()
    for item_id in item_ids:
        with ctx.db.session() as session:
            size = session.scalar(select(BodyWornItem.bytes).where(BodyWornItem.id == item_id)) or 0
        outcome = verify_item(ctx, item_id, actor=actor, reason=reason)
        report.checked += 1
        report.bytes += size
        if outcome == "ok":
            report.ok += 1
        elif outcome == "mismatch":
            report.mismatched.append(item_id)
        else:
            report.missing.append(item_id)
        if progress is not None:
            progress(item_id, outcome, size)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def live_items(ctx: Context) -> list[str]:
    """Returns the ids of every item whose original is still kept."""
    with ctx.db.session() as session:
        return list(
            session.scalars(
                select(BodyWornItem.id)
                .where(BodyWornItem.status != "purged")
                .order_by(BodyWornItem.ingested_at)
            )
        )


def verify_due(ctx: Context, *, budget_bytes: int = TURN_BYTES) -> VerifyOut:
    """Verifies the items least recently verified that are due, up to `budget_bytes` this turn."""
    due_before = utcnow() - timedelta(days=ctx.settings.bodyworn_verify_days)
    with ctx.db.session() as session:
        rows = session.execute(
            select(BodyWornItem.id, BodyWornItem.bytes)
            .where(
                BodyWornItem.status != "purged",
                or_(BodyWornItem.verified_at.is_(None), BodyWornItem.verified_at < due_before),
            )
            .order_by(BodyWornItem.verified_at.is_(None).desc(), BodyWornItem.verified_at)
            .limit(1000)
        ).all()
    chosen: list[str] = []
    total = 0
    for item_id, size in rows:
        if chosen and total + size > budget_bytes:
            break
        chosen.append(item_id)
        total += size
    return verify_many(ctx, chosen, actor="integrity", reason="scheduled re-verification")
