"""All an officer needs to act on an alert, in one answer: `GET /api/alerts/{id}/context`.

An alert row carries what raised it (a read, a match) by id. The operator needs it in words: the
place by name, for a hot-list hit the listing (vehicle, reason, reference, who listed it) and the
vehicle's first and last sightings and trail, for a face match the watch-list entry's name and legal
basis, and which unit was sent and where it is. This module gathers that from the domains that own
each part (alerts, cameras, ANPR, faces, dispatch), which is why it sits in the web layer above them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from safecity.accounts.api import require
from safecity.accounts.service import Principal
from safecity.alerts import service as alerts
from safecity.alerts.models import Alert
from safecity.anpr.models import PlateReadRow
from safecity.audit import service as audit
from safecity.cameras.models import Camera
from safecity.core.clock import as_utc
from safecity.core.http import DbSession
from safecity.dispatch.models import Dispatch, Incident, IncidentAlert, Unit
from safecity.faces.models import WatchlistEntry

router = APIRouter(prefix="/api/alerts", tags=["alerts"])
Reader = Annotated[Principal, Depends(require("alerts:read"))]

TRAIL_WINDOW = timedelta(hours=24)
"""How far back before an alert its vehicle's sightings are gathered."""
TRAIL_LIMIT = 200


class Place(BaseModel):
    camera_id: str
    name: str
    district: str
    latitude: float
    longitude: float


class Sighting(BaseModel):
    at: datetime
    plate: str
    camera_id: str | None
    camera_name: str | None = Field(description="The camera's name; empty for a camera no longer registered.")
    district: str | None
    latitude: float | None
    longitude: float | None


class Listing(BaseModel):
    """The hot-list entry a vehicle matched."""

    plate: str
    list_name: str
    reason: str
    vehicle: str
    reference: str
    added_by: str
    created_at: datetime | None
    expires_at: datetime | None


class WatchlistFacts(BaseModel):
    """The watch-list entry a face matched."""

    entry_id: str
    name: str
    category: str
    legal_basis: str
    case_officer: str
    requested_by: str
    approved_by: str | None
    expires_at: datetime


class UnitSent(BaseModel):
    """A unit dispatched to the alert's incident and where that stands."""

    unit_id: str
    callsign: str
    unit_status: str
    latitude: float | None
    longitude: float | None
    dispatched_at: datetime
    dispatched_by: str
    eta_s: float | None
    arrived_at: datetime | None
    incident_id: str
    incident_status: str
    outcome: str | None


class AlertContext(BaseModel):
    alert_id: str
    headline: str = Field(description="The alert in words: what, who or which vehicle, and where by name.")
    place: Place | None
    listing: Listing | None = None
    watchlist: WatchlistFacts | None = None
    first_seen: Sighting | None = None
    last_seen: Sighting | None = None
    trail: list[Sighting] = Field(default_factory=list, description="Sightings, oldest first.")
    units: list[UnitSent] = Field(default_factory=list)


def _place(session: Session, camera_id: str | None) -> Place | None:
    camera = session.get(Camera, camera_id) if camera_id else None
    if camera is None:
        return None
    return Place(
        camera_id=camera.id,
        name=camera.name,
        district=camera.district,
        latitude=camera.latitude,
        longitude=camera.longitude,
    )


def _trail(session: Session, plate: str, until: datetime) -> list[Sighting]:
    rows = session.execute(
        select(PlateReadRow, Camera.name, Camera.district)
        .outerjoin(Camera, Camera.id == PlateReadRow.camera_id)
        .where(PlateReadRow.plate == plate, PlateReadRow.at >= until - TRAIL_WINDOW, PlateReadRow.at <= until)
        .order_by(PlateReadRow.at.desc())
        .limit(TRAIL_LIMIT)
    ).all()
    return [
        Sighting(
            at=as_utc(read.at),
            plate=read.plate,
            camera_id=read.camera_id,
            camera_name=name,
            district=district,
            latitude=read.latitude,
            longitude=read.longitude,
        )
        for read, name, district in reversed(rows)
    ]


def _units(session: Session, alert_id: str) -> list[UnitSent]:
    rows = session.execute(
        select(Dispatch, Unit, Incident)
        .join(IncidentAlert, IncidentAlert.incident_id == Dispatch.incident_id)
        .join(Unit, Unit.id == Dispatch.unit_id)
        .join(Incident, Incident.id == Dispatch.incident_id)
        .where(IncidentAlert.alert_id == alert_id)
        .order_by(Dispatch.dispatched_at)
    ).all()
    return [
        UnitSent(
            unit_id=unit.id,
            callsign=unit.callsign,
            unit_status=unit.status,
            latitude=unit.latitude,
            longitude=unit.longitude,
            dispatched_at=as_utc(sent.dispatched_at),
            dispatched_by=sent.dispatched_by,
            eta_s=sent.eta_s,
            arrived_at=as_utc(sent.arrived_at) if sent.arrived_at else None,
            incident_id=incident.id,
            incident_status=incident.status,
            outcome=incident.outcome,
        )
        for sent, unit, incident in rows
    ]


def _listing(evidence: dict[str, Any]) -> Listing | None:
    entry = evidence.get("entry")
    if not isinstance(entry, dict):
        return None
    try:
        return Listing.model_validate(entry)
    except ValueError:  # an entry stored by an older release, missing fields: show what the alert says
        return None


def _where(place: Place | None, camera_id: str | None) -> str:
    if place is not None:
        return f"{place.name}, {place.district}"
    return f"camera {camera_id}" if camera_id else "an unknown place"


def headline(alert: Alert, place: Place | None, listing: Listing | None, entry: WatchlistEntry | None) -> str:
    """The alert in words, naming the place rather than the camera's id."""
    where = _where(place, alert.camera_id)
    if listing is not None:
        vehicle = f" ({listing.vehicle})" if listing.vehicle else ""
        read = alert.evidence.get("plate")
        seen = f", read as {read}" if read and read != listing.plate else ""
        return f"{listing.list_name.capitalize()} vehicle {listing.plate}{vehicle}{seen} at {where}"
    if entry is not None:
        what = {"wanted": "Wanted person", "missing": "Missing person", "event": "Watch-listed person"}
        similarity = alert.evidence.get("similarity")
        score = f" ({similarity:.0%} alike)" if isinstance(similarity, float) else ""
        return f"{what.get(entry.category, 'Watch-listed person')} {entry.name}{score} at {where}"
    if place is not None and alert.camera_id and alert.camera_id in alert.title:
        return alert.title.replace(f"camera {alert.camera_id}", where).replace(alert.camera_id, place.name)
    return alert.title


def context_of(session: Session, alert_id: str) -> AlertContext:
    alert = alerts.get(session, alert_id)
    place = _place(session, alert.camera_id)
    listing = _listing(alert.evidence) if alert.kind == "hotlist" else None
    entry_id = alert.evidence.get("entry_id")
    entry = session.get(WatchlistEntry, entry_id) if alert.kind == "face_match" and entry_id else None
    out = AlertContext(
        alert_id=alert.id,
        headline=headline(alert, place, listing, entry),
        place=place,
        listing=listing,
        units=_units(session, alert.id),
    )
    if entry is not None:
        out.watchlist = WatchlistFacts(
            entry_id=entry.id,
            name=entry.name,
            category=entry.category,
            legal_basis=entry.legal_basis,
            case_officer=entry.case_officer,
            requested_by=entry.requested_by,
            approved_by=entry.approved_by,
            expires_at=as_utc(entry.expires_at),
        )
    plate = alert.evidence.get("plate")
    if alert.kind in ("hotlist", "cloned_plate", "sensitive_area") and isinstance(plate, str) and plate:
        out.trail = _trail(session, plate, as_utc(alert.last_seen_at))
        if out.trail:
            out.first_seen, out.last_seen = out.trail[0], out.trail[-1]
    return out


@router.get(
    "/{alert_id}/context",
    response_model=AlertContext,
    summary="All an officer needs to act: the place, the listing or watch-list entry, sightings, units",
)
def alert_context(alert_id: str, session: DbSession, principal: Reader) -> AlertContext:
    out = context_of(session, alert_id)
    # The sightings are a plate search by another name: on record like one.
    audit.record(
        session,
        actor=principal.username,
        action="alert.context",
        target=alert_id,
        detail={"sightings": len(out.trail), "plate": out.last_seen.plate if out.last_seen else None},
    )
    return out
