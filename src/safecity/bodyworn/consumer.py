"""The body-worn domain's periodic work: re-verification, retention, copies, redactions, stale uploads."""

from __future__ import annotations

import logging

from safecity.bodyworn import integrity, redaction, retention, sharing, uploads
from safecity.core.context import Context

log = logging.getLogger(__name__)

VERIFY_EVERY_S = 3600.0
RETENTION_EVERY_S = 3600.0
COPIES_EVERY_S = 15.0
REDACTIONS_EVERY_S = 5.0
UPLOADS_EVERY_S = 900.0


def verify_due(ctx: Context) -> None:
    """Hashes again the originals due for it (a mismatch raises its alert inside)."""
    report = integrity.verify_due(ctx)
    if report.checked:
        log.info("re-verified %d body-worn originals: %d match", report.checked, report.ok)


def apply_retention(ctx: Context) -> None:
    """Deletes and purges what retention says; drops the copies of ended shares; abandons stale uploads."""
    report = retention.apply(ctx)
    if report.deleted or report.purged:
        log.info("body-worn retention deleted %d, purged %d", len(report.deleted), len(report.purged))
    sharing.forget_expired_copies(ctx)


async def register(ctx: Context) -> None:
    """Schedules the body-worn jobs (leased: one process of the city runs each)."""
    ctx.jobs.every("bodyworn.verify", VERIFY_EVERY_S, lambda: verify_due(ctx))
    ctx.jobs.every("bodyworn.retention", RETENTION_EVERY_S, lambda: apply_retention(ctx))
    ctx.jobs.every("bodyworn.copies", COPIES_EVERY_S, lambda: sharing.make_pending_copies(ctx))
    ctx.jobs.every("bodyworn.redactions", REDACTIONS_EVERY_S, lambda: redaction.run_pending(ctx))
    ctx.jobs.every("bodyworn.uploads", UPLOADS_EVERY_S, lambda: uploads.expire(ctx))
