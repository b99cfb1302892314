"""The audit domain in a running centre: its key is found at start, checkpoints are signed on a schedule.

A log that no longer verifies gets no checkpoint; a high-priority alert says so instead.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from safecity.alerts import service as alerts
from safecity.audit import anchor, service
from safecity.core.context import Context

log = logging.getLogger(__name__)

ALERT_KIND = "audit_tampered"


def sign_checkpoint(ctx: Context) -> None:
    """Signs a checkpoint of the rows written since the last one, or raises an alert if they do not verify."""
    try:
        written = service.checkpoint(ctx.db)
    except service.AuditTampered as exc:
        log.error("audit log does not verify: %s", exc.message)
        with ctx.db.session() as session:
            alert, new = alerts.raise_alert(
                session,
                kind=ALERT_KIND,
                priority=1,
                title=f"The audit log was tampered with: {exc.message}"[:300],
                source_key=f"audit_tampered:{exc.message}"[:200],
                dedup_key="audit:tampered",
                detail={"problem": exc.message, "what_to_do": "run `safecity audit verify`"},
                dedup_window=timedelta(days=1),
            )
            if new:
                alerts.announce(ctx, session, alert)
        raise
    if written is not None:
        ctx.count("audit_checkpoints")


async def register(ctx: Context) -> None:
    """Finds the audit key and checkpoint file (a city without them does not start); schedules checkpoints."""
    anchor.bind(ctx.settings.resolved_database_url, ctx.settings)
    ctx.jobs.every(
        "audit.checkpoint", ctx.settings.audit_checkpoint_s, lambda: sign_checkpoint(ctx), at_start=True
    )
