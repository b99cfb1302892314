"""The notices work queue: notice PDFs rendered and deliveries sent once, by any number of processes.

Issuing a challan only inserts it and its queued deliveries. Each function here is one cycle, run
every few seconds in every `serve` (no leader needed): claim a batch in a short transaction
(`WITH due AS MATERIALIZED (SELECT … FOR UPDATE SKIP LOCKED LIMIT n) UPDATE … WHERE id IN due`),
do the slow work with no transaction open, then record the outcome in a second short transaction,
only where this cycle's claim still stands. A claim left by a process that stopped is taken again
after the claim timeout; the SMS gateway recognises such a re-send by its idempotency key.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import CTE, Select, select, update

from safecity.challans import delivery, notice, service
from safecity.challans.models import Challan, ChallanRules, Delivery
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.evidence import service as media_owners

log = logging.getLogger(__name__)

TEXT_ONLY = "sms"

_POOLS: dict[Path, delivery.AdapterPool] = {}
_POOLS_LOCK = threading.Lock()


def render_due_notices(ctx: Context, limit: int = 50, *, now: datetime | None = None) -> int:
    """Renders the notice PDFs of up to `limit` challans that have none; returns how many it rendered."""
    portal = notice.portal_address(ctx.settings)  # before claiming: a city without one claims nothing
    now = now or utcnow()
    claimant = _claimant()
    with ctx.db.session() as session:
        rules = service.get_rules(session)
        stale = now - timedelta(seconds=rules.delivery.claim_timeout_s)
        due = _once(
            select(Challan.id)
            .where(_notice_due(stale))
            .order_by(Challan.issued_at, Challan.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        challans = session.scalars(
            update(Challan)
            .where(Challan.id.in_(select(due.c.id)), _notice_due(stale))
            .values(notice_claimed_by=claimant, notice_claimed_at=now)
            .returning(Challan)
            .execution_options(synchronize_session=False)
        ).all()
    rendered: dict[str, str] = {}
    for challan in challans:
        try:
            pdf = notice.render_pdf(challan, rules, ctx.media, portal=portal)
            rendered[challan.id] = ctx.media.put(pdf, "pdf")
        except Exception:  # one broken notice must not hold up the batch; its claim times out
            log.exception(
                "the notice of challan %s was not rendered; it is tried again later", challan.number
            )
    if rendered:
        with ctx.db.session() as session:
            for challan_id, ref in rendered.items():
                session.execute(
                    update(Challan)
                    .where(Challan.id == challan_id, Challan.notice_ref.is_(None))
                    .values(notice_ref=ref)
                    .execution_options(synchronize_session=False)
                )
                media_owners.own(session, "challan_notice", challan_id, [ref])
        ctx.count("notices", len(rendered))
    return len(rendered)


def send_due_deliveries(
    ctx: Context,
    limit: int = 100,
    *,
    now: datetime | None = None,
    adapters: Mapping[str, delivery.Adapter] | None = None,
) -> dict[str, int]:
    """Sends up to `limit` queued deliveries; returns sent, failed and gave_up.

    An SMS carries text only and goes at once; post and e-mail carry the notice PDF and wait for it.

    `failed` deliveries go back to the queue for the next turn; `gave_up` ones reached the
    configured number of attempts. `adapters` replaces the configured ones (tests, tools).
    """
    portal = notice.portal_address(ctx.settings)  # before claiming: a city without one claims nothing
    now = now or utcnow()
    claimant = _claimant()
    counts = {"sent": 0, "failed": 0, "gave_up": 0}
    with ctx.db.session() as session:
        rules = service.get_rules(session)
        stale = now - timedelta(seconds=rules.delivery.claim_timeout_s)
        due = _once(
            select(Delivery.id)
            .join(Challan, Challan.id == Delivery.challan_id)
            .where(_ready_to_send(), _delivery_due(stale))
            .order_by(Delivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=Delivery)
        )
        claimed = session.scalars(
            update(Delivery)
            .where(Delivery.id.in_(select(due.c.id)), _delivery_due(stale))
            .values(status="sending", claimed_by=claimant, claimed_at=now, attempts=Delivery.attempts + 1)
            .returning(Delivery)
            .execution_options(synchronize_session=False)
        ).all()
        if not claimed:
            return counts
        ids = {d.challan_id for d in claimed}
        challans = {c.id: c for c in session.scalars(select(Challan).where(Challan.id.in_(ids)))}
    channels = adapters if adapters is not None else _pool(ctx).adapters(rules.delivery)
    outcomes: dict[int, dict[str, Any]] = {}
    for item in sorted(claimed, key=lambda d: d.id):
        challan = challans[item.challan_id]
        result, outcomes[item.id] = _attempt(ctx, item, challan, channels, rules, now, portal)
        counts[result] += 1
    with ctx.db.session() as session:
        for delivery_id, outcome in outcomes.items():
            # Only while this cycle still holds the claim: a claim taken over after the timeout is the
            # other process's to settle.
            session.execute(
                update(Delivery)
                .where(
                    Delivery.id == delivery_id,
                    Delivery.claimed_by == claimant,
                    Delivery.status == "sending",
                )
                .values(**outcome)
                .execution_options(synchronize_session=False)
            )
    return counts


def _attempt(
    ctx: Context,
    item: Delivery,
    challan: Challan,
    channels: Mapping[str, delivery.Adapter],
    rules: ChallanRules,
    now: datetime,
    portal: str,
) -> tuple[str, dict[str, Any]]:
    """Sends one claimed delivery; returns sent, failed or gave_up, and the columns to record."""
    limit = rules.delivery.max_attempts
    if item.attempts > limit:  # claimed again and again by processes that stopped mid-send
        error = f"gave up after {limit} tries, the last never confirmed (its process stopped)"
        return "gave_up", {"status": "failed", "last_error": error}
    adapter = channels.get(item.channel)
    try:
        if adapter is None:
            raise RuntimeError(f"no adapter for channel {item.channel}")
        # Claimed only once the notice is rendered, except a text message, which carries no PDF.
        pdf = ctx.media.get(challan.notice_ref) if challan.notice_ref else b""
        receipt = adapter.send(
            delivery.NoticeMessage(
                channel=item.channel,
                address=item.address,
                number=challan.number,
                text=delivery.notice_text(challan, rules, now, portal=portal),
                pdf=pdf,
                key=delivery.delivery_key(item.id),
            )
        )
    except Exception as exc:  # any adapter failure is recorded on the delivery and retried
        error = f"{type(exc).__name__}: {exc}"[:500]
        if item.attempts >= limit:
            return "gave_up", {"status": "failed", "last_error": error}
        return "failed", {"status": "queued", "last_error": error}
    return "sent", {"status": "sent", "receipt": receipt[:200], "sent_at": utcnow(), "last_error": ""}


def close(ctx: Context) -> None:
    """Closes this process's delivery connections (SMS client, SMTP) for `ctx`; call it at shutdown."""
    with _POOLS_LOCK:
        pool = _POOLS.pop(Path(ctx.settings.data_dir), None)
    if pool is not None:
        pool.close()


def _pool(ctx: Context) -> delivery.AdapterPool:
    key = Path(ctx.settings.data_dir)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = delivery.AdapterPool(key, ctx.media.cipher)
        return pool


@atexit.register
def _close_all() -> None:
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()


def _once(claim: Select[Any]) -> CTE:
    """Makes the claiming SELECT a materialised CTE, evaluated once.

    As a plain `IN (subquery)` PostgreSQL may run it again for each row of a nested loop, and every
    run skips the rows the UPDATE has just changed: one cycle would claim far more than its limit.
    """
    return claim.cte("due").prefix_with("MATERIALIZED", dialect="postgresql")


def _notice_due(stale: datetime) -> Any:
    return Challan.notice_ref.is_(None) & (
        Challan.notice_claimed_at.is_(None) | (Challan.notice_claimed_at < stale)
    )


def _ready_to_send() -> Any:
    # Rendering a PDF takes milliseconds of CPU each; an SMS must not queue behind a thousand of them.
    return (Delivery.channel == TEXT_ONLY) | Challan.notice_ref.is_not(None)


def _delivery_due(stale: datetime) -> Any:
    return (Delivery.status == "queued") | ((Delivery.status == "sending") & (Delivery.claimed_at < stale))


def _claimant() -> str:
    """Names one claim: this host and process, and a random part so that no two cycles' claims match."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
