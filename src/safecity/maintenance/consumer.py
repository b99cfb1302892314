"""Bus handlers of camera maintenance: every health report into the history, faults opened and closed.

A camera that comes back online closes its fault and its camera-fault alerts by itself. The cameras
domain raises those alerts from the same reports on its own subscription, so an alert can arrive after
the recovery it belongs to; the alert handler closes such a late alert at once. A sweep opens a ticket
for every outage that outlasts the configured threshold.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from sqlalchemy.orm import Session

from safecity.alerts import service as alerts
from safecity.cameras import service as cameras
from safecity.core.consumers import consume_each, handle_now
from safecity.core.context import Context
from safecity.core.db import after_commit
from safecity.core.errors import NotFound
from safecity.core.events import AlertChanged, CameraHealth, Event
from safecity.maintenance import service
from safecity.maintenance.models import MaintenanceSettings, Ticket

log = logging.getLogger(__name__)

HEALTH_CONSUMER = "maintenance-health"
ALERTS_CONSUMER = "maintenance-alerts"


def handle_health(ctx: Context, event: Event) -> None:
    """Handles one health report now, exactly once (tests and tools; the bus batches them)."""
    handle_now(ctx, HEALTH_CONSUMER, partial(record_health, ctx), [event])


def record_health(ctx: Context, session: Session, event: Event) -> None:
    """Stores a health report as a span, follows the camera's fault, closes alerts on recovery."""
    if not isinstance(event, CameraHealth) or event.camera_id is None:
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
        for alert in service.close_fault_alerts(session, event.camera_id):
            alerts.announce(ctx, session, alert)
    opened, closed = outcome.opened is not None, len(outcome.closed)

    def count() -> None:
        if opened:
            ctx.count("faults_opened")
        if closed:
            ctx.count("faults_closed", closed)

    after_commit(session, count)


def handle_alert(ctx: Context, event: Event) -> None:
    """Handles one alert announcement now (tests and tools; the bus batches them)."""
    handle_now(ctx, ALERTS_CONSUMER, partial(reconcile_alert, ctx), [event])


def reconcile_alert(ctx: Context, session: Session, event: Event) -> None:
    """Closes a newly raised camera-fault alert whose camera has already recovered."""
    if not isinstance(event, AlertChanged) or event.kind != service.ALERT_KIND or event.status != "new":
        return
    closed = service.reconcile_fault_alert(session, event.alert_id)
    if closed is not None:
        alerts.announce(ctx, session, closed)


def sweep(ctx: Context, settings: MaintenanceSettings) -> list[Ticket]:
    """Opens a ticket for every outage longer than the threshold on a camera without an open ticket."""
    if settings.ticket_after_minutes <= 0:
        return []
    with ctx.db.session() as session:
        opened = service.open_overdue_tickets(session, after=timedelta(minutes=settings.ticket_after_minutes))
    if opened:
        ctx.count("tickets_opened", len(opened))
    return opened


async def register(ctx: Context) -> None:
    """Subscribes the health and alert handlers and schedules the overdue-fault sweep."""
    settings = MaintenanceSettings()
    await consume_each(ctx, HEALTH_CONSUMER, [CameraHealth.type], partial(record_health, ctx))
    await consume_each(ctx, ALERTS_CONSUMER, [AlertChanged.type], partial(reconcile_alert, ctx))
    if settings.ticket_after_minutes > 0:
        ctx.jobs.every("maintenance.overdue_tickets", settings.sweep_seconds, partial(sweep, ctx, settings))
