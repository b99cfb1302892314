"""Alerts about the pipeline itself: events dead-lettered, consumers falling behind.

A leased job looks every `WATCH_EVERY_S` seconds. Dead letters waiting for a decision raise one
alert per consumer group (more of them fold into it); a consumer group whose backlog is above
`lag_alert_events` and still growing raises one too. Operators see them in the same queue as every
other alert, with what to do in the title.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from functools import partial

from safecity.alerts import service
from safecity.alerts.models import Alert
from safecity.core import deadletters
from safecity.core.context import Context

log = logging.getLogger(__name__)

WATCH_EVERY_S = 30.0
ESCALATE_EVERY_S = 10.0
"""How often unacknowledged priority-1 alerts are looked for (escalation is late by at most this)."""
KIND = "pipeline"


class PipelineWatch:
    """Remembers the last backlog it saw, so it alerts on a backlog that grows, not one that drains."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.last_lag: dict[str, int] = {}

    async def check(self) -> int:
        """Raises the alerts the pipeline's state calls for; returns how many it raised or updated."""
        lag = await self.ctx.bus.lag()
        growing = {
            group: waiting
            for group, waiting in lag.items()
            if waiting > self.ctx.settings.lag_alert_events and waiting > self.last_lag.get(group, 0)
        }
        self.last_lag = lag
        return await asyncio.to_thread(self._raise, growing)

    def _raise(self, growing: dict[str, int]) -> int:
        raised = 0
        with self.ctx.db.session() as session:
            waiting = deadletters.counts(session)
            for group, count in sorted(waiting.items()):
                latest = deadletters.list_letters(session, consumer=group, limit=1)
                error = latest[0].error.splitlines()[0][:120] if latest else ""
                alert, _new = service.raise_alert(
                    session,
                    kind=KIND,
                    priority=2,
                    title=f"{count} event(s) given up on by {group}: {error}"[:300],
                    source_key=f"dead_letters:{group}:{count}",
                    dedup_key=f"pipeline:dead_letters:{group}",
                    detail={
                        "consumer": group,
                        "dead_letters": count,
                        "what_to_do": "fix the cause, then `safecity bus dead-letters replay --consumer "
                        f"{group} --reason …`",
                    },
                    dedup_window=timedelta(days=1),
                )
                if _changed(alert, f"dead_letters:{group}:{count}", _new):
                    service.announce(self.ctx, session, alert)
                    raised += 1
            for group, backlog in sorted(growing.items()):
                alert, _new = service.raise_alert(
                    session,
                    kind=KIND,
                    priority=2,
                    title=f"{group} is {backlog:,} events behind and falling further behind",
                    source_key=f"lag:{group}:{backlog}",
                    dedup_key=f"pipeline:lag:{group}",
                    detail={
                        "consumer": group,
                        "waiting": backlog,
                        "what_to_do": "start another `safecity serve`, or look for a slow database",
                    },
                    dedup_window=timedelta(hours=1),
                )
                if _changed(alert, f"lag:{group}:{backlog}", _new):
                    service.announce(self.ctx, session, alert)
                    raised += 1
        return raised


def _changed(alert: Alert, source_key: str, new: bool) -> bool:
    # Not new and raised by this very source: the same state was seen before, nothing to announce.
    return new or alert.source_key != source_key


async def register(ctx: Context) -> None:
    """Schedules the pipeline watch (one process of the city runs it)."""
    watch = PipelineWatch(ctx)
    ctx.jobs.every("alerts.pipeline_watch", WATCH_EVERY_S, watch.check)
    if ctx.settings.alert_escalate_after_s > 0:
        ctx.jobs.every("alerts.escalate", ESCALATE_EVERY_S, partial(escalate, ctx))


def escalate(ctx: Context) -> int:
    """The `alerts.escalate` job: escalates priority-1 alerts nobody acknowledged in time."""
    with ctx.db.session() as session:
        escalated = service.escalate_unacknowledged(session, after_s=ctx.settings.alert_escalate_after_s)
    if escalated:
        log.warning("%d priority-1 alert(s) unacknowledged: escalated to the supervisors", len(escalated))
    return len(escalated)
