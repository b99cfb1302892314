"""Sending the nearest available unit to an alert, following it in the field, and recording the outcome.

A unit is sent only while it is available: the change from available to en route is a compare-and-set,
so two operators clicking at once never send one unit to two incidents. Closing an incident frees its
units and settles its alerts (a false alarm dismisses them, feeding the false-alarm figures).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from safecity.alerts import service as alerts
from safecity.alerts.models import OPEN_STATES, Alert
from safecity.audit import service as audit
from safecity.core.clock import as_utc, utcnow
from safecity.core.errors import Conflict, InvalidInput, NotFound
from safecity.core.events import Event, register_event
from safecity.core.geo import distance_m
from safecity.core.ids import new_id
from safecity.dispatch.models import (
    Candidate,
    Dispatch,
    DispatchOut,
    DispatchStats,
    Incident,
    IncidentAlert,
    IncidentOut,
    Outcome,
    Unit,
    UnitIn,
    UnitOut,
    UnitStatus,
)

DEFAULT_SPEED_KMH = 25.0
# Streets are not straight lines: a measured detour factor for dense city grids is about 1.3.
DETOUR_FACTOR = 1.3


class UnitChanged(Event):
    """A unit moved or changed status (for the live map and dispatch board)."""

    type = "unit"
    unit_id: str
    callsign: str
    status: str
    latitude: float | None = None
    longitude: float | None = None
    incident_id: str | None = None


register_event(UnitChanged)


@dataclass
class Sent:
    """What a dispatch did: the dispatch, its incident, and the alerts it acknowledged on the way."""

    dispatch: Dispatch
    incident: Incident
    unit: Unit
    changed_alerts: list[Alert] = field(default_factory=list)


def unit_event(unit: Unit, *, at: datetime | None = None) -> UnitChanged:
    """Returns the live event describing a unit's current state, as of `at` (default: now).

    A position report passes the time the device took the fix; a status change happens now (the
    unit's last fix may be hours old, and the live list would show the change at that old time).
    """
    return UnitChanged(
        key=f"unit:{unit.id}:{unit.version}:{unit.position_at.isoformat() if unit.position_at else ''}",
        unit_id=unit.id,
        callsign=unit.callsign,
        status=unit.status,
        latitude=unit.latitude,
        longitude=unit.longitude,
        incident_id=unit.incident_id,
        at=at or utcnow(),
    )


def eta_seconds(distance: float, *, speed_kmh: float = DEFAULT_SPEED_KMH) -> float:
    """Returns the seconds to cover a straight-line `distance` in metres along streets at `speed_kmh`."""
    if speed_kmh <= 0:
        raise InvalidInput(f"average speed {speed_kmh} km/h must be positive", hint="use e.g. 25")
    return round(distance * DETOUR_FACTOR / (speed_kmh / 3.6), 1)


def create_unit(
    session: Session,
    *,
    unit_id: str,
    callsign: str,
    kind: str = "patrol_car",
    district: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
    status: str = "available",
    actor: str = "system",
) -> Unit:
    """Registers a patrol unit or officer; a duplicate id is a Conflict, a bad field InvalidInput."""
    try:
        data = UnitIn(
            id=unit_id,
            callsign=callsign,
            kind=kind,
            district=district,
            status=status,
            latitude=latitude,
            longitude=longitude,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"unit {unit_id!r} is not valid: {problems}") from None
    if session.get(Unit, data.id) is not None:
        raise Conflict(
            f"unit {data.id!r} already exists", hint="choose another id or update the existing unit"
        )
    now = utcnow()
    has_fix = data.latitude is not None and data.longitude is not None
    unit = Unit(
        id=data.id,
        callsign=data.callsign,
        kind=data.kind.value,
        district=data.district,
        status=data.status.value,
        latitude=data.latitude,
        longitude=data.longitude,
        position_at=now if has_fix else None,
        updated_at=now,
        version=1,
    )
    session.add(unit)
    audit.record(
        session, actor=actor, action="unit.create", target=data.id, detail={"callsign": data.callsign}
    )
    session.flush()
    return unit


def get_unit(session: Session, unit_id: str) -> Unit:
    """Returns a unit, or raises NotFound naming it."""
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise NotFound(
            f"unit {unit_id!r} is not registered", hint="register the unit before its device reports"
        )
    return unit


def list_units(session: Session, *, status: str | None = None) -> Sequence[Unit]:
    """Returns units by call sign, optionally only those in one status."""
    query = select(Unit).order_by(Unit.callsign)
    if status:
        query = query.where(Unit.status == status)
    return session.scalars(query).all()


def report_position(
    session: Session, unit_id: str, *, latitude: float, longitude: float, at: datetime | None = None
) -> tuple[Unit, bool]:
    """Records a unit's position fix; returns the unit and whether the fix was newer than the last one.

    Devices resend and reorder fixes over poor mobile links, so an older fix never moves a unit back.
    """
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise InvalidInput(f"position {latitude}, {longitude} is off the globe", hint="send WGS84 degrees")
    unit = get_unit(session, unit_id)
    when = as_utc(at) if at else utcnow()
    if unit.position_at is not None and when <= unit.position_at:
        return unit, False
    unit.latitude, unit.longitude, unit.position_at = latitude, longitude, when
    session.flush()
    return unit, True


def nearest_units(
    session: Session,
    *,
    latitude: float,
    longitude: float,
    limit: int = 5,
    speed_kmh: float = DEFAULT_SPEED_KMH,
) -> list[Candidate]:
    """Returns the available units with a known position, nearest first, with distance and ETA."""
    candidates = []
    for unit in list_units(session, status=UnitStatus.available.value):
        if unit.latitude is None or unit.longitude is None:
            continue
        distance = distance_m(latitude, longitude, unit.latitude, unit.longitude)
        candidates.append(
            Candidate(
                unit=UnitOut.model_validate(unit),
                distance_m=round(distance, 1),
                eta_s=eta_seconds(distance, speed_kmh=speed_kmh),
            )
        )
    candidates.sort(key=lambda c: c.distance_m)
    return candidates[:limit]


def candidates_for_alert(
    session: Session, alert_id: str, *, limit: int = 5, speed_kmh: float = DEFAULT_SPEED_KMH
) -> list[Candidate]:
    """Returns the nearest available units to where an alert happened."""
    alert = alerts.get(session, alert_id)
    where = alerts.location(session, alert)
    if where is None:
        raise Conflict(
            f"alert {alert_id} has no location (no camera position, no lat/lon in its evidence)",
            hint="open an incident with a location by hand",
        )
    return nearest_units(session, latitude=where[0], longitude=where[1], limit=limit, speed_kmh=speed_kmh)


def open_incident(
    session: Session,
    *,
    title: str,
    actor: str,
    priority: int = 3,
    latitude: float | None = None,
    longitude: float | None = None,
    alert_ids: Sequence[str] = (),
) -> Incident:
    """Opens an incident, linking the given alerts; its location defaults to the first alert's."""
    if not 1 <= priority <= 5:
        raise InvalidInput(f"priority {priority} is out of range", hint="use 1 (highest) to 5")
    linked = [alerts.get(session, alert_id) for alert_id in dict.fromkeys(alert_ids)]
    if latitude is None or longitude is None:
        where = next((w for w in (alerts.location(session, a) for a in linked) if w), None)
        latitude, longitude = where if where else (None, None)
    incident = Incident(
        id=new_id(),
        title=title,
        priority=priority,
        status="open",
        latitude=latitude,
        longitude=longitude,
        created_at=utcnow(),
        created_by=actor,
        notes=[],
    )
    session.add(incident)
    session.flush()
    for alert in linked:
        session.add(IncidentAlert(incident_id=incident.id, alert_id=alert.id))
    audit.record(
        session,
        actor=actor,
        action="incident.open",
        target=incident.id,
        detail={"alerts": [a.id for a in linked]},
    )
    session.flush()
    return incident


def get_incident(session: Session, incident_id: str) -> Incident:
    """Returns an incident, or raises NotFound naming it."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"incident {incident_id!r} does not exist", hint="check the incident id")
    return incident


def open_incident_for_alert(session: Session, alert_id: str) -> Incident | None:
    """Returns the open incident an alert is linked to, if any."""
    return session.scalars(
        select(Incident)
        .join(IncidentAlert, IncidentAlert.incident_id == Incident.id)
        .where(IncidentAlert.alert_id == alert_id, Incident.status == "open")
        .limit(1)
    ).first()


def incidents_of_alert(session: Session, alert_id: str) -> Sequence[Incident]:
    """Returns the incidents an alert is linked to, open or closed, oldest first."""
    return session.scalars(
        select(Incident)
        .join(IncidentAlert, IncidentAlert.incident_id == Incident.id)
        .where(IncidentAlert.alert_id == alert_id)
        .order_by(Incident.created_at)
    ).all()


def dispatch_unit(
    session: Session,
    *,
    unit_id: str,
    actor: str,
    alert_id: str | None = None,
    incident_id: str | None = None,
    speed_kmh: float = DEFAULT_SPEED_KMH,
) -> Sent:
    """Sends an available unit to an incident, or to an alert (opening its incident if it has none).

    A new alert it is sent to is acknowledged on the way. A unit that is not available is a Conflict.
    """
    if not alert_id and not incident_id:
        raise InvalidInput("say where to send the unit", hint="give an alert_id or an incident_id")
    unit = get_unit(session, unit_id)
    alert = alerts.get(session, alert_id) if alert_id else None
    incident = get_incident(session, incident_id) if incident_id else None
    if incident is not None and incident.status != "open":
        raise Conflict(f"incident {incident.id} is already {incident.status}", hint="open a new incident")
    if unit.status != UnitStatus.available.value:
        busy = f" on incident {unit.incident_id}" if unit.incident_id else ""
        raise Conflict(
            f"unit {unit.callsign} ({unit.id}) is {unit.status.replace('_', ' ')}{busy}",
            hint="send another available unit, or clear this one first",
        )
    if incident is None and alert is not None:
        incident = open_incident_for_alert(session, alert.id) or open_incident(
            session, title=alert.title, actor=actor, priority=alert.priority, alert_ids=[alert.id]
        )
    assert incident is not None
    if alert is not None and session.get(IncidentAlert, (incident.id, alert.id)) is None:
        session.add(IncidentAlert(incident_id=incident.id, alert_id=alert.id))
    # Compare-and-set: only an available unit can be sent; of two operators, one wins.
    result = session.execute(
        update(Unit)
        .where(Unit.id == unit.id, Unit.status == UnitStatus.available.value)
        .values(
            status=UnitStatus.en_route.value,
            incident_id=incident.id,
            version=Unit.version + 1,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"unit {unit.callsign} was just sent elsewhere", hint="reload and choose another unit")
    session.refresh(unit)
    distance = eta = None
    if None not in (unit.latitude, unit.longitude, incident.latitude, incident.longitude):
        distance = distance_m(unit.latitude, unit.longitude, incident.latitude, incident.longitude)  # type: ignore[arg-type]
        eta = eta_seconds(distance, speed_kmh=speed_kmh)
    sent = Dispatch(
        incident_id=incident.id,
        unit_id=unit.id,
        dispatched_at=utcnow(),
        dispatched_by=actor,
        distance_m=None if distance is None else round(distance, 1),
        eta_s=eta,
    )
    session.add(sent)
    _note(
        incident,
        actor=actor,
        text=f"{unit.callsign} dispatched" + (f", ETA {eta / 60:.0f} min" if eta else ""),
    )
    audit.record(
        session,
        actor=actor,
        action="dispatch.send",
        target=incident.id,
        detail={"unit": unit.id, "alert": alert.id if alert else None, "distance_m": sent.distance_m},
    )
    changed = []
    if alert is not None and alert.status == "new":
        changed.append(
            alerts.act(
                session, alert.id, action="acknowledge", actor=actor, reason=f"{unit.callsign} dispatched"
            )
        )
    session.flush()
    return Sent(dispatch=sent, incident=incident, unit=unit, changed_alerts=changed)


def set_unit_status(
    session: Session, unit_id: str, *, status: str, actor: str, note: str = "", at: datetime | None = None
) -> Unit:
    """Records a status reported from the field; arriving and clearing update the unit's dispatch.

    `at` is when it happened in the field (a phone that was offline reports late); it is kept between
    the dispatch and now, so a phone's wrong clock cannot make a unit arrive before it was sent.
    """
    try:
        new = UnitStatus(status)
    except ValueError:
        raise InvalidInput(
            f"unknown unit status {status!r}", hint=f"use one of {[s.value for s in UnitStatus]}"
        ) from None
    unit = get_unit(session, unit_id)
    current = _current_dispatch(session, unit)
    if new in (UnitStatus.en_route, UnitStatus.on_scene) and current is None:
        raise Conflict(
            f"unit {unit.callsign} is not assigned to an incident",
            hint="dispatch it to an alert or incident first",
        )
    now = utcnow()
    incident = get_incident(session, current.incident_id) if current else None
    if current is not None and new is UnitStatus.on_scene and current.arrived_at is None:
        current.arrived_at = min(max(as_utc(at), current.dispatched_at), now) if at else now
    if current is not None and new in (UnitStatus.available, UnitStatus.off_duty):
        current.cleared_at = now
        unit.incident_id = None
    if incident is not None:
        _note(
            incident,
            actor=actor,
            text=f"{unit.callsign}: {new.value.replace('_', ' ')}" + (f" — {note}" if note else ""),
        )
    unit.status = new.value
    unit.version += 1
    unit.updated_at = now
    audit.record(
        session, actor=actor, action="unit.status", target=unit.id, detail={"status": new.value, "note": note}
    )
    session.flush()
    return unit


def add_note(
    session: Session, incident_id: str, *, text: str, actor: str, evidence_ref: str | None = None
) -> Incident:
    """Adds a note (and optionally an evidence ref) to an incident's timeline."""
    incident = get_incident(session, incident_id)
    _note(incident, actor=actor, text=text, evidence_ref=evidence_ref)
    audit.record(
        session, actor=actor, action="incident.note", target=incident.id, detail={"evidence": evidence_ref}
    )
    session.flush()
    return incident


def close_incident(
    session: Session, incident_id: str, *, outcome: str, actor: str, note: str = ""
) -> tuple[Incident, list[Alert], list[Unit]]:
    """Closes an incident with its outcome, frees its units and settles its open alerts.

    Returns the incident, the alerts it changed and the units it freed (to announce on the live pages).
    """
    try:
        result = Outcome(outcome)
    except ValueError:
        raise InvalidInput(
            f"unknown outcome {outcome!r}", hint=f"use one of {[o.value for o in Outcome]}"
        ) from None
    incident = get_incident(session, incident_id)
    if incident.status != "open":
        raise Conflict(f"incident {incident.id} is already closed ({incident.outcome})", hint="reload it")
    now = utcnow()
    freed = []
    for unit in session.scalars(select(Unit).where(Unit.incident_id == incident.id)).all():
        current = _current_dispatch(session, unit)
        if current is not None:
            current.cleared_at = now
        unit.status, unit.incident_id, unit.version, unit.updated_at = (
            "available",
            None,
            unit.version + 1,
            now,
        )
        freed.append(unit)
    changed = []
    reason = f"incident {incident.id}: {result.value.replace('_', ' ')}" + (f" — {note}" if note else "")
    for alert in alerts_of(session, incident.id):
        if alert.status not in OPEN_STATES:
            continue
        if result is Outcome.false_alarm:
            changed.append(
                alerts.act(
                    session, alert.id, action="dismiss", actor=actor, reason=reason, reason_code="false_match"
                )
            )
            continue
        if result is Outcome.arrest and alert.status != "confirmed":
            alerts.act(session, alert.id, action="confirm", actor=actor, reason=reason)
        changed.append(alerts.act(session, alert.id, action="close", actor=actor, reason=reason))
    incident.status, incident.outcome, incident.closed_at = "closed", result.value, now
    _note(
        incident,
        actor=actor,
        text=f"closed: {result.value.replace('_', ' ')}" + (f" — {note}" if note else ""),
    )
    audit.record(
        session, actor=actor, action="incident.close", target=incident.id, detail={"outcome": result.value}
    )
    session.flush()
    return incident, changed, freed


def list_incidents(session: Session, *, open_only: bool = False, limit: int = 100) -> Sequence[Incident]:
    """Returns incidents, newest first."""
    query = select(Incident).order_by(Incident.created_at.desc()).limit(limit)
    if open_only:
        query = query.where(Incident.status == "open")
    return session.scalars(query).all()


def incident_out(session: Session, incident: Incident) -> IncidentOut:
    """Returns an incident with its alerts, dispatches and every evidence ref it gathered."""
    linked = alerts_of(session, incident.id)
    dispatches = session.scalars(
        select(Dispatch).where(Dispatch.incident_id == incident.id).order_by(Dispatch.id)
    ).all()
    evidence: list[str] = []
    for alert in linked:
        for key in ("crop_ref", "frame_ref"):
            if isinstance(alert.evidence.get(key), str):
                evidence.append(alert.evidence[key])
        evidence.extend(r for r in alert.evidence.get("watchlist_photo_refs") or [] if isinstance(r, str))
    evidence.extend(n["evidence_ref"] for n in incident.notes if n.get("evidence_ref"))
    out = IncidentOut.model_validate(incident)
    out.alert_ids = [a.id for a in linked]
    out.dispatches = [DispatchOut.model_validate(d) for d in dispatches]
    out.evidence = list(dict.fromkeys(evidence))
    return out


def stats(session: Session, *, since: datetime) -> DispatchStats:
    """Returns dispatch-to-arrival times and incident outcomes since `since`."""
    rows = session.scalars(select(Dispatch).where(Dispatch.dispatched_at >= since)).all()
    waits = sorted((d.arrived_at - d.dispatched_at).total_seconds() for d in rows if d.arrived_at is not None)
    outcomes = Counter(
        session.scalars(
            select(Incident.outcome).where(Incident.created_at >= since, Incident.outcome.is_not(None))
        ).all()
    )
    return DispatchStats(
        dispatches=len(rows),
        arrived=len(waits),
        p50_s=round(statistics.median(waits), 1) if waits else None,
        p90_s=round(waits[min(len(waits) - 1, round(0.9 * (len(waits) - 1)))], 1) if waits else None,
        by_outcome={str(k): v for k, v in outcomes.items()},
    )


def _current_dispatch(session: Session, unit: Unit) -> Dispatch | None:
    if unit.incident_id is None:
        return None
    return session.scalars(
        select(Dispatch)
        .where(
            Dispatch.unit_id == unit.id,
            Dispatch.incident_id == unit.incident_id,
            Dispatch.cleared_at.is_(None),
        )
        .order_by(Dispatch.id.desc())
        .limit(1)
    ).first()


def alerts_of(session: Session, incident_id: str) -> list[Alert]:
    """Returns the alerts linked to an incident, oldest first."""
    ids = session.scalars(
        select(IncidentAlert.alert_id).where(IncidentAlert.incident_id == incident_id)
    ).all()
    return alerts.by_ids(session, ids)


def _note(incident: Incident, *, actor: str, text: str, evidence_ref: str | None = None) -> None:
    entry: dict[str, Any] = {"at": utcnow().isoformat(), "actor": actor, "text": text}
    if evidence_ref:
        entry["evidence_ref"] = evidence_ref
    # Reassign rather than append: a JSON column only notices a new value.
    incident.notes = [*incident.notes, entry]
