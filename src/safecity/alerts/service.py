"""Raising, de-duplicating and deciding alerts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from safecity.alerts.models import OPEN_STATES, Alert, AlertAction, AlertOut
from safecity.audit import service as audit
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.db import get_or_raise
from safecity.core.errors import Conflict, InvalidInput
from safecity.core.events import AlertChanged
from safecity.core.ids import new_id
from safecity.core.metrics import ALERTS

TRANSITIONS = {
    "acknowledge": ({"new"}, "acknowledged"),
    "confirm": ({"new", "acknowledged"}, "confirmed"),
    "dismiss": ({"new", "acknowledged", "confirmed"}, "dismissed"),
    "close": ({"new", "acknowledged", "confirmed"}, "closed"),
}


def raise_alert(
    session: Session,
    *,
    kind: str,
    priority: int,
    title: str,
    source_key: str,
    dedup_key: str,
    camera_id: str | None = None,
    evidence: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
    dedup_window: timedelta = timedelta(minutes=10),
) -> tuple[Alert, bool]:
    """Raises an alert, or folds it into an open one with the same `dedup_key` seen within the window.

    Returns the alert and whether it is new. `source_key` is the idempotency key of the fact that
    raised it: the same fact never raises or counts twice.
    """
    if not 1 <= priority <= 5:
        raise InvalidInput(f"priority {priority} is out of range", hint="use 1 (highest) to 5")
    same_source = session.scalars(select(Alert).where(Alert.source_key == source_key)).first()
    if same_source is not None:
        return same_source, False
    now = utcnow()
    open_alert = session.scalars(
        select(Alert)
        .where(
            Alert.dedup_key == dedup_key,
            Alert.status.in_(OPEN_STATES),
            Alert.last_seen_at >= now - dedup_window,
        )
        .order_by(Alert.created_at.desc())
        .limit(1)
    ).first()
    if open_alert is not None:
        open_alert.occurrences += 1
        open_alert.last_seen_at = now
        return open_alert, False
    alert = Alert(
        id=new_id(),
        kind=kind,
        priority=priority,
        status="new",
        title=title,
        camera_id=camera_id,
        dedup_key=dedup_key,
        source_key=source_key,
        evidence=evidence or {},
        detail=detail or {},
        created_at=now,
        last_seen_at=now,
        updated_at=now,
    )
    session.add(alert)
    session.flush()
    return alert, True


def act(
    session: Session, alert_id: str, *, action: str, actor: str, reason: str = "", version: int | None = None
) -> Alert:
    """Applies an operator's decision; a stale version or an impossible transition is a Conflict."""
    if action not in TRANSITIONS:
        raise InvalidInput(f"unknown action {action!r}", hint=f"use one of {sorted(TRANSITIONS)}")
    if action == "dismiss" and not reason.strip():
        raise InvalidInput("a dismissal needs a reason", hint="say why it is a false alarm or not needed")
    alert = get_or_raise(session, Alert, alert_id, what="alert")
    allowed_from, to_status = TRANSITIONS[action]
    if alert.status not in allowed_from:
        raise Conflict(f"alert is already {alert.status}; it cannot be {action}ed now", hint="reload the alert")
    expected = alert.version if version is None else version
    # Compare-and-set on the version: of two operators acting at once, exactly one wins.
    result = session.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.version == expected, Alert.status == alert.status)
        .values(status=to_status, version=expected + 1, updated_at=utcnow(), assigned_to=actor)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("someone else changed this alert first", hint="reload it and decide again")
    session.add(
        AlertAction(
            alert_id=alert_id, actor=actor, action=action, from_status=alert.status, to_status=to_status, reason=reason
        )
    )
    audit.record(session, actor=actor, action=f"alert.{action}", target=alert_id, detail={"reason": reason})
    session.refresh(alert)
    return alert


def history(session: Session, alert_id: str) -> Sequence[AlertAction]:
    """Returns an alert's actions, oldest first."""
    get_or_raise(session, Alert, alert_id, what="alert")
    return session.scalars(select(AlertAction).where(AlertAction.alert_id == alert_id).order_by(AlertAction.id)).all()


def list_alerts(
    session: Session, *, status: str | None = None, kind: str | None = None, open_only: bool = False, limit: int = 200
) -> Sequence[Alert]:
    """Returns alerts, highest priority and newest first."""
    query = select(Alert).order_by(Alert.priority, Alert.created_at.desc()).limit(limit)
    if status:
        query = query.where(Alert.status == status)
    if open_only:
        query = query.where(Alert.status.in_(OPEN_STATES))
    if kind:
        query = query.where(Alert.kind == kind)
    return session.scalars(query).all()


def count_alerts(session: Session) -> int:
    """Returns how many alerts exist."""
    return session.scalar(select(func.count()).select_from(Alert)) or 0


def changed_event(alert: Alert | AlertOut) -> AlertChanged:
    """Returns the bus event announcing an alert's current state."""
    return AlertChanged(
        key=f"{alert.id}:{alert.version}:{alert.occurrences}",
        camera_id=alert.camera_id,
        at=alert.updated_at,
        alert_id=alert.id,
        kind=alert.kind,
        priority=alert.priority,
        status=alert.status,
        title=alert.title,
    )


def announce(ctx: Context, alert: Alert) -> None:
    """Publishes an alert's state to the live pages; call after the transaction committed.

    Bus handlers run in worker threads, so this publishes thread-safely and waits for the bus.
    """
    ALERTS.labels(alert.kind).inc()
    ctx.count("alerts")
    ctx.bus.publish_threadsafe(changed_event(alert))
