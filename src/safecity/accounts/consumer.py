"""Accounts' periodic housekeeping: forgetting old sign-in windows, unused browsers and dead tokens."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from safecity.accounts import service
from safecity.accounts.signin import service as signin
from safecity.core.context import Context

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 600.0
# Ended sessions and tokens stay listed this long, then go.
KEEP_ENDED = timedelta(days=7)


def prune_once(ctx: Context) -> int:
    """Deletes finished sign-in windows, browsers unused for half a year and long-ended tokens."""
    with ctx.db.session() as session:
        gone = signin.purge(session) + service.purge_tokens(session, older_than=KEEP_ENDED)
    if gone:
        log.info("accounts: pruned %d old sign-in rows and tokens", gone)
    return gone


async def register(ctx: Context) -> None:
    """Schedules the housekeeping (in one process of a city)."""
    ctx.jobs.every("accounts.prune", PRUNE_EVERY_S, partial(prune_once, ctx))
