"""Camera maintenance over HTTP: states, uptime, health history, faults, tickets, the /maintenance page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from safecity.accounts.api import require
from safecity.accounts.service import Principal
from safecity.audit import service as audit
from safecity.core.clock import display_zone
from safecity.core.http import DbSession
from safecity.maintenance import service
from safecity.maintenance.models import (
    Assignee,
    AssignIn,
    CameraHistory,
    CameraStatus,
    CloseIn,
    FaultOut,
    TicketActionOut,
    TicketDetail,
    TicketIn,
    TicketOut,
    UptimeReport,
)
from safecity.web.pages import nav_links, permissions_of, templates

router = APIRouter(tags=["maintenance"])
API = "/api/maintenance"

Reader = Annotated[Principal, Depends(require("cameras:read"))]
Worker = Annotated[Principal, Depends(require("maintenance:write"))]
Days = Annotated[int, Query(ge=1, le=90, description="How many days back, today included.")]
Tz = Annotated[
    str | None,
    Query(max_length=64, description="IANA time zone the days are counted in; empty: display_timezone."),
]


@router.get(API + "/cameras", response_model=list[CameraStatus], summary="Every camera's state and uptime")
def camera_states(
    session: DbSession,
    _: Reader,
    district: Annotated[str | None, Query(max_length=100)] = None,
    state: Annotated[str | None, Query(max_length=20, description="Only cameras in this state.")] = None,
    faulty: Annotated[bool, Query(description="Only cameras in a state other than online.")] = False,
    tz: Tz = None,
) -> list[CameraStatus]:
    return service.camera_statuses(session, tz=tz, district=district, state=state, faulty_only=faulty)


@router.get(
    API + "/cameras/{camera_id}/history",
    response_model=CameraHistory,
    summary="A camera's health spans, daily uptime and faults (for the history chart)",
)
def camera_history(
    camera_id: str, session: DbSession, _: Reader, days: Days = 7, tz: Tz = None
) -> CameraHistory:
    return service.camera_history(session, camera_id, days=days, tz=tz)


@router.get(API + "/uptime", response_model=UptimeReport, summary="Uptime per camera per day, and city-wide")
def uptime(
    session: DbSession,
    _: Reader,
    days: Days = 7,
    tz: Tz = None,
    district: Annotated[str | None, Query(max_length=100)] = None,
) -> UptimeReport:
    return service.uptime_report(session, days=days, tz=tz, district=district)


@router.get(API + "/faults", response_model=list[FaultOut], summary="Camera faults, newest first")
def faults(
    session: DbSession,
    _: Reader,
    open: Annotated[bool | None, Query(description="true: open only; false: closed only; empty: all")] = None,
    camera_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[FaultOut]:
    rows = service.list_faults(session, open_only=open, camera_id=camera_id, limit=limit)
    tickets = service.open_tickets_by_fault(session, [f.id for f in rows])
    return [FaultOut.model_validate(f).model_copy(update={"open_ticket_id": tickets.get(f.id)}) for f in rows]


@router.get(API + "/team", response_model=list[Assignee], summary="Users who may work maintenance tickets")
def team(session: DbSession, principal: Worker) -> list[Assignee]:
    people = service.team(session)
    audit.record(session, actor=principal.username, action="maintenance.team", detail={"users": len(people)})
    return people


@router.get(API + "/tickets", response_model=list[TicketOut], summary="Maintenance tickets, newest first")
def tickets(
    session: DbSession,
    _: Reader,
    status: Annotated[str | None, Query(description="open, assigned or closed.")] = None,
    open: Annotated[bool, Query(description="Only tickets not yet closed.")] = False,
    camera_id: Annotated[str | None, Query(max_length=64)] = None,
    assignee: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[TicketOut]:
    rows = service.list_tickets(
        session, status=status, open_only=open, camera_id=camera_id, assignee=assignee, limit=limit
    )
    return [TicketOut.model_validate(t) for t in rows]


def _detail(session: DbSession, ticket_id: str) -> TicketDetail:
    ticket = service.get_ticket(session, ticket_id)
    actions = [TicketActionOut.model_validate(a) for a in service.ticket_actions(session, ticket_id)]
    return TicketDetail(**TicketOut.model_validate(ticket).model_dump(), actions=actions)


@router.post(API + "/tickets", response_model=TicketDetail, status_code=201, summary="Open a ticket")
def open_ticket(body: TicketIn, session: DbSession, principal: Worker) -> TicketDetail:
    ticket = service.open_ticket(session, body, actor=principal.username)
    return _detail(session, ticket.id)


@router.get(API + "/tickets/{ticket_id}", response_model=TicketDetail, summary="One ticket with its history")
def get_ticket(ticket_id: str, session: DbSession, _: Reader) -> TicketDetail:
    return _detail(session, ticket_id)


@router.post(API + "/tickets/{ticket_id}/assign", response_model=TicketDetail, summary="Assign a ticket")
def assign_ticket(ticket_id: str, body: AssignIn, session: DbSession, principal: Worker) -> TicketDetail:
    service.assign_ticket(
        session, ticket_id, assignee=body.assignee, actor=principal.username, version=body.version
    )
    return _detail(session, ticket_id)


@router.post(
    API + "/tickets/{ticket_id}/close", response_model=TicketDetail, summary="Close a ticket with a note"
)
def close_ticket(ticket_id: str, body: CloseIn, session: DbSession, principal: Worker) -> TicketDetail:
    service.close_ticket(session, ticket_id, note=body.note, actor=principal.username, version=body.version)
    return _detail(session, ticket_id)


@router.get("/maintenance", response_class=HTMLResponse, include_in_schema=False)
def maintenance_page(request: Request, principal: Reader) -> Response:
    permissions = permissions_of(principal.role)
    context: dict[str, Any] = {
        "me": {"username": principal.username, "role": principal.role, "permissions": permissions},
        "nav": nav_links(permissions),
        "path": request.url.path,
        "tz": display_zone().key,
        "can_act": "maintenance:write" in permissions,
    }
    return templates.TemplateResponse(request, "maintenance_index.html", context)
