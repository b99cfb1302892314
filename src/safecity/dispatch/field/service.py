"""The officer's phone: signing in to a unit for a shift, the unit's assignment, and field updates.

The phone speaks only for the unit its officer is signed in to, and only about the incident that
unit is sent to; everything it changes goes through the dispatch service, as an operator's click
would. Updates queued on a phone while it was offline arrive late, in a batch, perhaps twice: each
status or outcome is applied once by the key the phone made for it, and a position fix once by its
time (an older or equal fix never moves a unit, so positions need no stored key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from safecity.alerts.models import Alert
from safecity.audit import service as audit
from safecity.cameras.models import Camera
from safecity.core.clock import as_utc, utcnow
from safecity.core.errors import Conflict, InvalidInput, NotFound, SafeCityError
from safecity.core.geo import distance_m
from safecity.dispatch import service as dispatch
from safecity.dispatch.field.models import (
    ArrivedUpdate,
    Assignment,
    FieldIncident,
    FieldRoute,
    FieldUnit,
    FieldUpdate,
    OutcomeUpdate,
    PositionUpdate,
    ShiftOut,
    UnitPosition,
    UnitShift,
    Update,
    UpdateResult,
)
from safecity.dispatch.models import Dispatch, Unit, UnitStatus
from safecity.evidence.models import MediaOwner
from safecity.maps.roads import NoRoute, RoadGraph

# What an officer on the scene may see of the alerts that sent the unit: the pictures, not the files.
PHOTO_KEYS = ("crop_ref", "frame_ref")


@dataclass
class Applied:
    """What a batch of updates did: one result per update, and the units and alerts it changed."""

    results: list[UpdateResult] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    status_changed: bool = False


def open_shift(session: Session, username: str) -> UnitShift | None:
    """Returns the officer's open shift, if signed in to a unit."""
    return session.scalars(select(UnitShift).where(UnitShift.open_officer == username)).first()


def start_shift(session: Session, *, username: str, unit_id: str) -> UnitShift:
    """Signs an officer in to a unit; again on the same unit is a no-op, a taken unit a Conflict."""
    unit = dispatch.get_unit(session, unit_id)
    mine = open_shift(session, username)
    if mine is not None:
        if mine.unit_id == unit.id:
            return mine
        raise Conflict(
            f"you are signed in to unit {mine.unit_id}",
            hint="end that shift before signing in to another unit",
        )
    holder = session.scalars(select(UnitShift).where(UnitShift.open_unit == unit.id)).first()
    if holder is not None:
        raise Conflict(
            f"unit {unit.callsign} ({unit.id}) is signed in to by {holder.username}",
            hint="choose your own unit, or ask them (or a supervisor) to end that shift",
        )
    shift = UnitShift(
        unit_id=unit.id, username=username, started_at=utcnow(), open_unit=unit.id, open_officer=username
    )
    try:
        with session.begin_nested():
            session.add(shift)
    except IntegrityError:  # another phone signed in to this unit (or this officer elsewhere) just now
        raise Conflict(f"unit {unit.callsign} was just taken", hint="reload and choose again") from None
    audit.record(
        session, actor=username, action="unit.shift.start", target=unit.id, detail={"shift": shift.id}
    )
    return shift


def end_shift(session: Session, *, username: str) -> UnitShift:
    """Signs an officer out of their unit (the unit keeps its status and any incident)."""
    shift = open_shift(session, username)
    if shift is None:
        raise NotFound("you are not signed in to a unit", hint="sign in to a unit to start a shift")
    return _close(session, shift, actor=username, detail={"shift": shift.id})


def end_shift_of_unit(session: Session, unit_id: str, *, actor: str, reason: str) -> UnitShift:
    """Ends the shift open on a unit for its officer (a supervisor's override: a lost phone, an officer
    who went off duty without signing out); the unit keeps its status and incident."""
    unit = dispatch.get_unit(session, unit_id)
    why = reason.strip()
    if len(why) < 3:
        raise InvalidInput("say why the shift is ended", hint="e.g. 'phone lost', 'off duty, not signed out'")
    shift = session.scalars(select(UnitShift).where(UnitShift.open_unit == unit.id)).first()
    if shift is None:
        raise NotFound(f"no officer is signed in to unit {unit.callsign} ({unit.id})", hint="nothing to end")
    detail = {"shift": shift.id, "officer": shift.username, "override": True, "reason": why[:500]}
    return _close(session, shift, actor=actor, detail=detail)


def _close(session: Session, shift: UnitShift, *, actor: str, detail: dict[str, object]) -> UnitShift:
    """Closes an open shift (frees its unit and officer for another) and records who ended it."""
    shift.ended_at, shift.ended_by, shift.open_unit, shift.open_officer = utcnow(), actor, None, None
    audit.record(session, actor=actor, action="unit.shift.end", target=shift.unit_id, detail=detail)
    session.flush()
    return shift


def officers(session: Session, unit_ids: Sequence[str] | None = None) -> dict[str, UnitShift]:
    """Returns the open shift of each unit someone is signed in to (all units, or those named)."""
    query = select(UnitShift).where(UnitShift.open_unit.is_not(None))
    if unit_ids is not None:
        query = query.where(UnitShift.open_unit.in_(list(unit_ids)))
    return {shift.unit_id: shift for shift in session.scalars(query)}


def prune_update_keys(session: Session, *, older_than: datetime) -> int:
    """Deletes the keys of field updates received before `older_than`; returns how many.

    A phone's queue resends within hours, not weeks: a key kept a month past its update protects
    nothing, and the table would otherwise grow by every arrival and outcome ever sent.
    """
    result = session.execute(delete(FieldUpdate).where(FieldUpdate.received_at < older_than))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def units(session: Session) -> list[FieldUnit]:
    """Returns the units an officer may sign in to, each saying whether someone already has."""
    taken = set(session.scalars(select(UnitShift.open_unit).where(UnitShift.open_unit.is_not(None))).all())
    return [
        FieldUnit(id=u.id, callsign=u.callsign, kind=u.kind, status=u.status, taken=u.id in taken)
        for u in dispatch.list_units(session)
    ]


def assignment(
    session: Session,
    username: str,
    *,
    speed_kmh: float = dispatch.DEFAULT_SPEED_KMH,
    roads: RoadGraph | None = None,
    roads_problem: str | None = None,
) -> Assignment:
    """Returns the officer's shift, unit and the incident the unit is sent to (with photos, place and
    route: along `roads` where given, else a straight line that says why: `roads_problem` or no file)."""
    shift = open_shift(session, username)
    if shift is None:
        return Assignment(shift=None, unit_id=None, callsign=None, unit_status=None, incident=None)
    unit = dispatch.get_unit(session, shift.unit_id)
    current = _current_dispatch(session, unit)
    return Assignment(
        shift=ShiftOut.model_validate(shift),
        unit_id=unit.id,
        callsign=unit.callsign,
        unit_status=unit.status,
        position=UnitPosition(latitude=unit.latitude, longitude=unit.longitude, at=unit.position_at)
        if unit.latitude is not None and unit.longitude is not None
        else None,
        incident=_field_incident(
            session, unit, current, speed_kmh=speed_kmh, roads=roads, problem=roads_problem
        )
        if current
        else None,
    )


def photo_owner(session: Session, username: str, owners: Sequence[MediaOwner]) -> MediaOwner | None:
    """Returns the claim that lets an officer on shift see a picture: an alert of their unit's incident."""
    shift = open_shift(session, username)
    unit = session.get(Unit, shift.unit_id) if shift else None
    if unit is None or unit.incident_id is None:
        return None
    linked = {a.id for a in dispatch.alerts_of(session, unit.incident_id)}
    return next((o for o in owners if o.kind == "alert" and o.owner in linked), None)


def apply_updates(session: Session, *, username: str, updates: Sequence[Update]) -> Applied:
    """Applies a phone's updates in order; each one that fails is rejected alone and says why."""
    done = Applied()
    for update in updates:
        if not isinstance(update, PositionUpdate):
            seen = session.get(FieldUpdate, (username, update.key))
            if seen is not None:
                done.results.append(
                    UpdateResult(key=update.key, status="duplicate", detail=seen.result["detail"])
                )
                continue
        try:
            with session.begin_nested():
                result = _apply(session, username, update, done)
        except SafeCityError as exc:
            result = UpdateResult(key=update.key, status="rejected", detail=exc.message)
        if not isinstance(update, PositionUpdate):
            shift = open_shift(session, username)
            session.add(
                FieldUpdate(
                    username=username,
                    key=update.key,
                    unit_id=shift.unit_id if shift else "",
                    kind=update.kind,
                    received_at=utcnow(),
                    result={"status": result.status, "detail": result.detail},
                )
            )
            session.flush()
        done.results.append(result)
    return done


def _apply(session: Session, username: str, update: Update, done: Applied) -> UpdateResult:
    shift = open_shift(session, username)
    if shift is None:
        raise Conflict("you are not signed in to a unit", hint="sign in to your unit, then send again")
    unit = dispatch.get_unit(session, shift.unit_id)
    if isinstance(update, PositionUpdate):
        moved_unit, moved = dispatch.report_position(
            session,
            unit.id,
            latitude=update.latitude,
            longitude=update.longitude,
            at=min(as_utc(update.at), utcnow()),
        )
        if not moved:
            return UpdateResult(key=update.key, status="ignored", detail="an older fix than the unit's last")
        done.units.append(moved_unit)
        return UpdateResult(key=update.key, status="applied")
    if unit.incident_id != update.incident_id:
        raise Conflict(
            f"unit {unit.callsign} is not on incident {update.incident_id}"
            + (f" (it is on {unit.incident_id})" if unit.incident_id else " (it has been cleared)"),
            hint="reload the assignment",
        )
    if isinstance(update, ArrivedUpdate):
        if unit.status == UnitStatus.on_scene.value:
            return UpdateResult(key=update.key, status="ignored", detail="already on scene")
        done.status_changed = True
        done.units.append(
            dispatch.set_unit_status(
                session,
                unit.id,
                status=UnitStatus.on_scene.value,
                actor=username,
                note="arrived",
                at=update.at,
            )
        )
        return UpdateResult(key=update.key, status="applied")
    assert isinstance(update, OutcomeUpdate)
    words = update.outcome.value.replace("_", " ")
    _, changed, freed = dispatch.close_incident(
        session,
        update.incident_id,
        outcome=update.outcome.outcome.value,
        actor=username,
        note=words + (f": {update.note}" if update.note else ""),
    )
    done.status_changed = True
    done.units.extend(freed)
    done.alerts.extend(changed)
    return UpdateResult(key=update.key, status="applied", detail=f"incident closed: {words}")


def _current_dispatch(session: Session, unit: Unit) -> Dispatch | None:
    if unit.incident_id is None:
        return None
    return session.scalars(
        select(Dispatch)
        .where(Dispatch.unit_id == unit.id, Dispatch.incident_id == unit.incident_id)
        .order_by(Dispatch.id.desc())
        .limit(1)
    ).first()


def _route(
    start: tuple[float, float],
    end: tuple[float, float],
    *,
    speed_kmh: float,
    roads: RoadGraph | None,
    problem: str | None,
) -> FieldRoute:
    """Returns the way by road from start to end, else the straight line with why it is straight."""
    if roads is not None:
        found = roads.route(start, end, names=("your unit's last position", "the incident"))
        if not isinstance(found, NoRoute):
            return FieldRoute(
                points=found.points, distance_m=found.distance_m, eta_s=found.eta_s, source="roads"
            )
        note = f"Straight line: {found.reason}."
    elif problem is not None:
        note = "Straight line: the road file could not be read (safecity map roads FILE says why)."
    else:
        note = "Straight line: no road file is set (SAFECITY_ROAD_GRAPH)."
    far = round(distance_m(*start, *end), 1)
    return FieldRoute(
        points=[list(start), list(end)],
        distance_m=far,
        eta_s=dispatch.eta_seconds(far, speed_kmh=speed_kmh),
        source="straight",
        note=note,
    )


def _field_incident(
    session: Session,
    unit: Unit,
    sent: Dispatch,
    *,
    speed_kmh: float,
    roads: RoadGraph | None,
    problem: str | None,
) -> FieldIncident:
    incident = dispatch.get_incident(session, sent.incident_id)
    linked = dispatch.alerts_of(session, incident.id)
    photos = [a.evidence[k] for a in linked for k in PHOTO_KEYS if isinstance(a.evidence.get(k), str)]
    camera = next((session.get(Camera, a.camera_id) for a in linked if a.camera_id), None)
    place = f"{camera.name}, {camera.district}" if camera else ""
    lat, lon = incident.latitude, incident.longitude
    route = None
    if lat is not None and lon is not None and unit.latitude is not None and unit.longitude is not None:
        route = _route(
            (unit.latitude, unit.longitude), (lat, lon), speed_kmh=speed_kmh, roads=roads, problem=problem
        )
    return FieldIncident(
        id=incident.id,
        title=incident.title,
        priority=incident.priority,
        status=incident.status,
        outcome=incident.outcome,
        latitude=lat,
        longitude=lon,
        place=place,
        navigate=f"geo:{lat:.6f},{lon:.6f}?q={lat:.6f},{lon:.6f}"
        if lat is not None and lon is not None
        else None,
        photos=list(dict.fromkeys(photos)),
        dispatched_at=sent.dispatched_at,
        arrived_at=sent.arrived_at,
        distance_m=route.distance_m if route else None,
        eta_s=route.eta_s if route else None,
        route=route,
    )
