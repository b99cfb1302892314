"""Raising, de-duplicating and deciding alerts."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from safecity.alerts.models import (
    DISMISS_REASONS,
    FALSE_ALARM_REASONS,
    OPEN_STATES,
    Alert,
    AlertAction,
    AlertOut,
    FalseAlarmReport,
    FalseAlarmRow,
    HourlyCounts,
    ResponseTimes,
)
from safecity.audit import service as audit
from safecity.cameras.models import Camera
from safecity.core import outbox
from safecity.core.clock import as_utc, utcnow
from safecity.core.context import Context
from safecity.core.db import after_commit, get_or_raise
from safecity.core.errors import Conflict, InvalidInput, NotFound
from safecity.core.events import AlertChanged
from safecity.core.ids import new_id
from safecity.core.metrics import ALERTS
from safecity.evidence import service as media_owners

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
    # What it shows its handlers (crop, frame, the enrolment photos a face is compared with).
    media_owners.own(session, "alert", alert.id, media_owners.refs_in(alert.evidence), at=now)
    return alert, True


def act(
    session: Session,
    alert_id: str,
    *,
    action: str,
    actor: str,
    reason: str = "",
    version: int | None = None,
    reason_code: str | None = None,
) -> Alert:
    """Applies an operator's decision; a stale version or an impossible transition is a Conflict.

    A dismissal needs a reason; its `reason_code` (default "other") feeds the false-alarm figures.
    """
    if action not in TRANSITIONS:
        raise InvalidInput(f"unknown action {action!r}", hint=f"use one of {sorted(TRANSITIONS)}")
    if action == "dismiss" and not reason.strip():
        raise InvalidInput("a dismissal needs a reason", hint="say why it is a false alarm or not needed")
    if reason_code is not None and reason_code not in DISMISS_REASONS:
        raise InvalidInput(
            f"unknown dismissal reason {reason_code!r}", hint=f"use one of {list(DISMISS_REASONS)}"
        )
    if action == "dismiss":
        reason_code = reason_code or "other"
    elif reason_code is not None:
        raise InvalidInput("a reason code belongs to a dismissal only", hint="leave reason_code empty")
    alert = get_or_raise(session, Alert, alert_id, what="alert")
    allowed_from, to_status = TRANSITIONS[action]
    if alert.status not in allowed_from:
        raise Conflict(
            f"alert is already {alert.status}; it cannot be {action}ed now", hint="reload the alert"
        )
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
            alert_id=alert_id,
            actor=actor,
            action=action,
            from_status=alert.status,
            to_status=to_status,
            reason=reason,
            reason_code=reason_code,
        )
    )
    audit.record(
        session,
        actor=actor,
        action=f"alert.{action}",
        target=alert_id,
        detail={"reason": reason, "reason_code": reason_code},
    )
    session.refresh(alert)
    return alert


def view(session: Session, alert_id: str, *, actor: str) -> Alert:
    """Returns one alert with its evidence, writing the view to the audit log (evidence is sensitive)."""
    alert = get_or_raise(session, Alert, alert_id, what="alert")
    audit.record(session, actor=actor, action="alert.view", target=alert_id, detail={"kind": alert.kind})
    return alert


def location(session: Session, alert: Alert) -> tuple[float, float] | None:
    """Returns where an alert happened: its evidence's lat/lon, else its camera's position, else None."""
    lat, lon = alert.evidence.get("lat"), alert.evidence.get("lon")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        return float(lat), float(lon)
    if alert.camera_id:
        camera = session.get(Camera, alert.camera_id)
        if camera is not None:
            return camera.latitude, camera.longitude
    return None


def get(session: Session, alert_id: str) -> Alert:
    """Returns an alert, or raises NotFound."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(
            f"alert {alert_id!r} does not exist", hint="check the alert id; it may have been purged"
        )
    return alert


def by_ids(session: Session, alert_ids: Sequence[str]) -> list[Alert]:
    """Returns the alerts with these ids that exist, oldest first."""
    if not alert_ids:
        return []
    return list(
        session.scalars(select(Alert).where(Alert.id.in_(alert_ids)).order_by(Alert.created_at)).all()
    )


def history(session: Session, alert_id: str) -> Sequence[AlertAction]:
    """Returns an alert's actions, oldest first."""
    get_or_raise(session, Alert, alert_id, what="alert")
    return session.scalars(
        select(AlertAction).where(AlertAction.alert_id == alert_id).order_by(AlertAction.id)
    ).all()


def list_alerts(
    session: Session,
    *,
    status: str | None = None,
    kind: str | None = None,
    open_only: bool = False,
    limit: int = 200,
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
        escalated=alert.escalated_at is not None,
    )


def escalate_unacknowledged(session: Session, *, after_s: float, now: datetime | None = None) -> list[Alert]:
    """Escalates priority-1 alerts still new `after_s` after they were raised; returns those escalated.

    Each is escalated once: its `escalated_at` is set, the supervisors' pages are told (the changed
    event says `escalated`), and the audit log records it.
    """
    moment = now or utcnow()
    due = session.scalars(
        select(Alert)
        .where(
            Alert.priority == 1,
            Alert.status == "new",
            Alert.escalated_at.is_(None),
            Alert.created_at <= moment - timedelta(seconds=after_s),
        )
        .order_by(Alert.created_at)
        .limit(500)
        .with_for_update(skip_locked=True)
    ).all()
    for alert in due:
        alert.escalated_at = moment
        alert.version += 1
        alert.updated_at = moment
        waited = (moment - as_utc(alert.created_at)).total_seconds()
        audit.record(
            session,
            actor="system",
            action="alert.escalate",
            target=alert.id,
            detail={"waited_s": round(waited), "after_s": after_s, "title": alert.title},
        )
        outbox.stage(session, changed_event(alert))
    return list(due)


def announce(ctx: Context, session: Session, alert: Alert) -> None:
    """Tells the live pages and the other consumers an alert's state, once this transaction commits."""
    outbox.stage(session, changed_event(alert))
    kind = alert.kind

    def counted() -> None:
        ALERTS.labels(kind).inc()
        ctx.count("alerts")

    after_commit(session, counted)


def false_alarms(session: Session, *, since: datetime) -> FalseAlarmReport:
    """Returns alerts raised, dismissed and dismissed as false alarms since `since`, per camera and rule."""
    rows = session.execute(
        select(Alert.id, Alert.camera_id, Alert.kind, Alert.detail).where(Alert.created_at >= since)
    ).all()
    dismissed = session.execute(
        select(AlertAction.alert_id, AlertAction.reason_code)
        .join(Alert, Alert.id == AlertAction.alert_id)
        .where(Alert.created_at >= since, AlertAction.action == "dismiss")
    ).all()
    dismissals: dict[str, str | None] = {alert_id: code for alert_id, code in dismissed}
    per_camera: dict[str, list[str | None]] = defaultdict(list)
    per_rule: dict[str, list[str | None]] = defaultdict(list)
    for alert_id, camera_id, kind, detail in rows:
        # None marks an alert that was not dismissed; a code marks a dismissal and its reason.
        outcome = (dismissals[alert_id] or "other") if alert_id in dismissals else None
        rule = str((detail or {}).get("rule") or kind)
        per_camera[camera_id or "(no camera)"].append(outcome)
        per_rule[rule].append(outcome)
    return FalseAlarmReport(
        since=since, by_camera=_false_alarm_rows(per_camera), by_rule=_false_alarm_rows(per_rule)
    )


def _false_alarm_rows(groups: dict[str, list[str | None]]) -> list[FalseAlarmRow]:
    out = []
    for key, outcomes in groups.items():
        reasons = Counter(o for o in outcomes if o is not None)
        false = sum(n for code, n in reasons.items() if code in FALSE_ALARM_REASONS)
        out.append(
            FalseAlarmRow(
                key=key,
                raised=len(outcomes),
                dismissed=sum(reasons.values()),
                false_alarms=false,
                false_alarm_rate=round(false / len(outcomes), 4),
                reasons=dict(reasons),
            )
        )
    return sorted(out, key=lambda r: (-r.false_alarm_rate, -r.false_alarms, r.key))


def hourly_counts(session: Session, *, hours: int = 24, now: datetime | None = None) -> HourlyCounts:
    """Returns alerts raised per hour and kind over the last `hours` hours (the current hour included)."""
    end = (now or utcnow()).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    slots = [start + timedelta(hours=i) for i in range(hours)]
    counts: dict[str, list[int]] = {}
    rows = session.execute(select(Alert.created_at, Alert.kind).where(Alert.created_at >= start)).all()
    for created_at, kind in rows:
        index = int((created_at - start).total_seconds() // 3600)
        if 0 <= index < hours:
            counts.setdefault(kind, [0] * hours)[index] += 1
    return HourlyCounts(hours=slots, counts=counts)


def response_times(session: Session, *, since: datetime) -> ResponseTimes:
    """Returns seconds from an alert being raised to its first decision, for alerts raised since `since`."""
    first = (
        select(AlertAction.alert_id, func.min(AlertAction.at).label("first_at"))
        .group_by(AlertAction.alert_id)
        .subquery()
    )
    rows = session.execute(
        select(Alert.priority, Alert.created_at, first.c.first_at)
        .join(first, first.c.alert_id == Alert.id)
        .where(Alert.created_at >= since)
    ).all()
    by_priority: dict[int, list[float]] = defaultdict(list)
    waits = []
    for priority, created_at, first_at in rows:
        wait = max(0.0, (as_utc(first_at) - created_at).total_seconds())
        waits.append(wait)
        by_priority[priority].append(wait)
    return ResponseTimes(
        since=since,
        decided=len(waits),
        p50_s=_percentile(waits, 50),
        p90_s=_percentile(waits, 90),
        by_priority={p: round(statistics.median(v), 1) for p, v in sorted(by_priority.items())},
    )


def _percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))
    return round(ordered[index], 1)
