"""Dispatch over HTTP: units and their devices' position reports, nearest units, incidents, outcomes.

Changes commit before their live events are published, so a browser that reacts to an event always
reads the committed state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from safecity.accounts.api import require
from safecity.accounts.service import Principal
from safecity.alerts import service as alerts
from safecity.audit import service as audit
from safecity.core import outbox
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.errors import InvalidInput
from safecity.core.events import Event
from safecity.core.http import Ctx, DbSession
from safecity.dispatch import service
from safecity.dispatch.field import service as field_service
from safecity.dispatch.field.api import router as field_router
from safecity.dispatch.models import (
    Candidate,
    CloseIn,
    DispatchIn,
    DispatchOut,
    DispatchStats,
    IncidentIn,
    IncidentOut,
    NoteIn,
    PositionIn,
    ShiftEndIn,
    StatusIn,
    Unit,
    UnitIn,
    UnitOut,
)

router = APIRouter(tags=["dispatch"])

MapReader = Annotated[Principal, Depends(require("map:read"))]
AlertReader = Annotated[Principal, Depends(require("alerts:read"))]
Dispatcher = Annotated[Principal, Depends(require("dispatch:act"))]
UnitWriter = Annotated[Principal, Depends(require("units:write"))]
PositionReporter = Annotated[Principal, Depends(require("units:position"))]


def speed_kmh(ctx: Context) -> float:
    """Returns the average urban speed used for ETAs (setting `dispatch_speed_kmh`, else the default)."""
    return float(ctx.settings.dispatch_speed_kmh)


def _announce(session: Session, events: Sequence[Event]) -> None:
    """Publishes the events once the request's transaction commits (the outbox)."""
    for event in events:
        outbox.stage(session, event)


def _with_officers(session: Session, units: Sequence[Unit]) -> list[UnitOut]:
    """Units as shown, each with the officer signed in to it on the phone (if any)."""
    shifts = field_service.officers(session, [u.id for u in units])
    out = []
    for unit in units:
        shift = shifts.get(unit.id)
        view = UnitOut.model_validate(unit)
        if shift is not None:
            view.officer, view.officer_since = shift.username, shift.started_at
        out.append(view)
    return out


@router.get("/api/units", response_model=list[UnitOut], summary="Patrol units and officers with positions")
def list_units(session: DbSession, _: MapReader, status: str | None = None) -> list[UnitOut]:
    return _with_officers(session, service.list_units(session, status=status))


@router.post("/api/units", response_model=UnitOut, status_code=201, summary="Register a unit")
def create_unit(body: UnitIn, session: DbSession, ctx: Ctx, principal: UnitWriter) -> UnitOut:
    unit = service.create_unit(
        session,
        unit_id=body.id,
        callsign=body.callsign,
        kind=body.kind.value,
        district=body.district,
        latitude=body.latitude,
        longitude=body.longitude,
        status=body.status.value,
        actor=principal.username,
    )
    _announce(session, [service.unit_event(unit)])
    return UnitOut.model_validate(unit)


@router.get("/api/units/{unit_id}", response_model=UnitOut, summary="One unit")
def get_unit(unit_id: str, session: DbSession, _: MapReader) -> UnitOut:
    return _with_officers(session, [service.get_unit(session, unit_id)])[0]


@router.post(
    "/api/units/{unit_id}/shift/end",
    response_model=UnitOut,
    summary="End the shift of the officer signed in to a unit (a supervisor's override)",
)
def end_unit_shift(unit_id: str, body: ShiftEndIn, session: DbSession, principal: UnitWriter) -> UnitOut:
    field_service.end_shift_of_unit(session, unit_id, actor=principal.username, reason=body.reason)
    return _with_officers(session, [service.get_unit(session, unit_id)])[0]


@router.post(
    "/api/units/{unit_id}/position", response_model=UnitOut, summary="A position report from a device"
)
def report_position(
    unit_id: str, body: PositionIn, session: DbSession, ctx: Ctx, _: PositionReporter
) -> UnitOut:
    unit, moved = service.report_position(
        session, unit_id, latitude=body.latitude, longitude=body.longitude, at=body.at
    )
    _announce(session, [service.unit_event(unit, at=unit.position_at)] if moved else [])
    return UnitOut.model_validate(unit)


@router.post("/api/units/{unit_id}/status", response_model=UnitOut, summary="A status update from the field")
def set_status(unit_id: str, body: StatusIn, session: DbSession, ctx: Ctx, principal: Dispatcher) -> UnitOut:
    unit = service.set_unit_status(
        session, unit_id, status=body.status.value, actor=principal.username, note=body.note
    )
    _announce(session, [service.unit_event(unit)])
    return UnitOut.model_validate(unit)


@router.get("/api/dispatch/candidates", response_model=list[Candidate], summary="Nearest available units")
def candidates(
    session: DbSession,
    ctx: Ctx,
    _: Dispatcher,
    alert_id: str | None = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> list[Candidate]:
    if alert_id:
        return service.candidates_for_alert(session, alert_id, limit=limit, speed_kmh=speed_kmh(ctx))
    if lat is None or lon is None:
        raise InvalidInput(
            "say where: an alert_id, or lat and lon", hint="e.g. ?alert_id=… or ?lat=24.86&lon=67.0"
        )
    return service.nearest_units(session, latitude=lat, longitude=lon, limit=limit, speed_kmh=speed_kmh(ctx))


@router.post("/api/dispatch", response_model=DispatchOut, status_code=201, summary="Send a unit (one click)")
def dispatch(body: DispatchIn, session: DbSession, ctx: Ctx, principal: Dispatcher) -> DispatchOut:
    sent = service.dispatch_unit(
        session,
        unit_id=body.unit_id,
        actor=principal.username,
        alert_id=body.alert_id,
        incident_id=body.incident_id,
        speed_kmh=speed_kmh(ctx),
    )
    events: list[Event] = [service.unit_event(sent.unit)]
    events += [alerts.changed_event(a) for a in sent.changed_alerts]
    out = DispatchOut.model_validate(sent.dispatch)
    _announce(session, events)
    ctx.count("dispatches")
    return out


@router.get(
    "/api/dispatch/stats", response_model=DispatchStats, summary="Dispatch-to-arrival times, outcomes"
)
def dispatch_stats(
    session: DbSession, _: AlertReader, days: Annotated[float, Query(gt=0, le=366)] = 7
) -> DispatchStats:
    return service.stats(session, since=utcnow() - timedelta(days=days))


@router.get("/api/incidents", response_model=list[IncidentOut], summary="Incidents, newest first")
def list_incidents(
    session: DbSession,
    principal: AlertReader,
    open_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[IncidentOut]:
    rows = service.list_incidents(session, open_only=open_only, limit=limit)
    # The dispatch board reloads this on every change: one row per viewer for each stretch of watching.
    audit.record_viewing(
        session, actor=principal.username, action="incident.list", target=f"open_only={open_only}"
    )
    return [service.incident_out(session, i) for i in rows]


@router.post("/api/incidents", response_model=IncidentOut, status_code=201, summary="Open an incident")
def open_incident(body: IncidentIn, session: DbSession, principal: Dispatcher) -> IncidentOut:
    incident = service.open_incident(
        session,
        title=body.title,
        actor=principal.username,
        priority=body.priority,
        latitude=body.latitude,
        longitude=body.longitude,
        alert_ids=body.alert_ids,
    )
    return service.incident_out(session, incident)


@router.get("/api/incidents/{incident_id}", response_model=IncidentOut, summary="One incident (view audited)")
def get_incident(incident_id: str, session: DbSession, principal: AlertReader) -> IncidentOut:
    out = service.incident_out(session, service.get_incident(session, incident_id))
    audit.record(session, actor=principal.username, action="incident.view", target=incident_id)
    return out


@router.post(
    "/api/incidents/{incident_id}/notes", response_model=IncidentOut, summary="Add a note or evidence"
)
def add_note(incident_id: str, body: NoteIn, session: DbSession, principal: Dispatcher) -> IncidentOut:
    incident = service.add_note(
        session, incident_id, text=body.text, actor=principal.username, evidence_ref=body.evidence_ref
    )
    return service.incident_out(session, incident)


@router.post("/api/incidents/{incident_id}/close", response_model=IncidentOut, summary="Record the outcome")
def close_incident(
    incident_id: str, body: CloseIn, session: DbSession, ctx: Ctx, principal: Dispatcher
) -> IncidentOut:
    incident, changed, freed = service.close_incident(
        session, incident_id, outcome=body.outcome.value, actor=principal.username, note=body.note
    )
    events: list[Event] = [service.unit_event(u) for u in freed]
    events += [alerts.changed_event(a) for a in changed]
    out = service.incident_out(session, incident)
    _announce(session, events)
    return out


# The officer's phone (its page, shifts, assignment and updates) is a sub-domain with routes of its own.
router.include_router(field_router)
