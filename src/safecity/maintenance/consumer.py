"""Bus handlers of camera maintenance: every health report into the history, faults opened and closed.

A camera that comes back online closes its fault and its camera-fault alerts by itself. The cameras
domain raises those alerts from the same reports on its own subscription, so an alert can arrive after
the recovery it belongs to; the alert handler closes such a late alert at once. A sweep opens a ticket
for every outage that outlasts the configured threshold.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from safecity.alerts import service as alerts
from safecity.alerts.models import Alert
from safecity.cameras import service as cameras
from safecity.core.context import Context
from safecity.core.db import claim_event
from safecity.core.errors import NotFound
from safecity.core.events import AlertChanged, CameraHealth, Event
from safecity.maintenance import service
from safecity.maintenance.models import MaintenanceSettings, Ticket

log = logging.getLogger(__name__)

HEALTH_CONSUMER = "maintenance-health"
ALERTS_CONSUMER = "maintenance-alerts"

# The sweeps running in this process; kept so the loop does not drop them half-way.
_sweeps: set[asyncio.Task[None]] = set()


def handle_health(ctx: Context, event: Event) -> None:
    """Stores a health report as a span, follows the camera's fault, closes alerts on recovery."""
    assert isinstance(event, CameraHealth)
    closed_alerts: list[Alert] = []
    with ctx.db.session() as session:
        if not claim_event(session, HEALTH_CONSUMER, event.key) or event.camera_id is None:
            return
        try:
            cameras.get(session, event.camera_id)
        except NotFound:
            log.warning("health report for unregistered camera %r ignored", event.camera_id)
            return
        outcome = service.record_health(
            session,
            camera_id=event.camera_id,
            state=event.state,
            detail=event.detail,
            since=event.since,
            event_key=event.key,
            frame_ref=event.frame_ref,
            fps=event.fps,
        )
        if outcome.recovered:
            closed_alerts = service.close_fault_alerts(session, event.camera_id)
    if outcome.opened is not None:
        ctx.count("faults_opened")
    if outcome.closed:
        ctx.count("faults_closed", len(outcome.closed))
    for alert in closed_alerts:
        alerts.announce(ctx, alert)


def handle_alert(ctx: Context, event: Event) -> None:
    """Closes a newly raised camera-fault alert whose camera has already recovered."""
    assert isinstance(event, AlertChanged)
    if event.kind != service.ALERT_KIND or event.status != "new":
        return
    # Naturally idempotent: a redelivered announcement finds the alert closed and does nothing.
    with ctx.db.session() as session:
        closed = service.reconcile_fault_alert(session, event.alert_id)
    if closed is not None:
        alerts.announce(ctx, closed)


def sweep(ctx: Context, settings: MaintenanceSettings) -> list[Ticket]:
    """Opens a ticket for every outage longer than the threshold on a camera without an open ticket."""
    if settings.ticket_after_minutes <= 0:
        return []
    with ctx.db.session() as session:
        opened = service.open_overdue_tickets(
            session, after=timedelta(minutes=settings.ticket_after_minutes), tz=settings.timezone
        )
    if opened:
        ctx.count("tickets_opened", len(opened))
    return opened


async def _sweep_forever(ctx: Context, settings: MaintenanceSettings) -> None:
    while True:
        await asyncio.sleep(settings.sweep_seconds)
        try:
            await asyncio.to_thread(sweep, ctx, settings)
        except Exception as exc:  # a busy or unreachable database: try again next round
            log.warning("maintenance sweep failed: %s", exc)


async def register(ctx: Context) -> None:
    """Subscribes the health and alert handlers and starts the overdue-fault sweep."""
    settings = MaintenanceSettings()
    service.resolve_timezone(settings.timezone)
    await ctx.bus.subscribe([CameraHealth.type], lambda e: handle_health(ctx, e), durable=HEALTH_CONSUMER)
    await ctx.bus.subscribe([AlertChanged.type], lambda e: handle_alert(ctx, e), durable=ALERTS_CONSUMER)
    if settings.ticket_after_minutes > 0:
        task = asyncio.create_task(_sweep_forever(ctx, settings), name="maintenance-sweep")
        _sweeps.add(task)
        task.add_done_callback(_sweeps.discard)
