"""The officer's phone over HTTP: the page (installable, with its service worker), shifts, the unit's
assignment (polled with an ETag, so an unchanged answer costs a header on a poor link), and updates.

Updates commit before their live events are published (the outbox), as every dispatch change does,
so the command centre's unit events come from what the phone's officer did.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from safecity.accounts.api import require
from safecity.accounts.service import Principal
from safecity.alerts import service as alerts
from safecity.audit import service as audit
from safecity.core import outbox, security
from safecity.core.events import Event
from safecity.core.http import Ctx, DbSession
from safecity.dispatch import service as dispatch
from safecity.dispatch.field import service
from safecity.dispatch.field.models import Assignment, FieldUnit, ShiftIn, ShiftOut, UpdatesIn, UpdatesOut
from safecity.maps import roads

router = APIRouter(tags=["field"])

Officer = Annotated[Principal, Depends(require("field:respond"))]
PERMISSION = "field:respond"


def _speed(ctx: Ctx) -> float:
    return float(ctx.settings.dispatch_speed_kmh)


@router.get("/field", response_class=HTMLResponse, include_in_schema=False)
def field_page(request: Request, ctx: Ctx) -> Response:
    """The officer's phone: sign in to a unit, receive the dispatch, report arrival and the outcome."""
    from safecity.web.pages import render_page

    response = render_page(request, ctx, "field.html", PERMISSION)
    response.headers["permissions-policy"] = security.GEOLOCATION_POLICY  # its own header wins
    return response


@router.get("/field/manifest.webmanifest", include_in_schema=False)
def field_manifest() -> Response:
    """The web app manifest that makes the page installable on the phone's home screen."""
    from safecity.web.pages import STATIC_DIR

    return FileResponse(STATIC_DIR / "field.webmanifest", media_type="application/manifest+json")


@router.get("/field/sw.js", include_in_schema=False)
def field_service_worker() -> Response:
    """The page's service worker, served under /field so it may control the page (its scope)."""
    from safecity.web.pages import STATIC_DIR

    # no-cache: a phone checks for a new worker on every visit, rather than keep an old one for a day.
    headers = {"Service-Worker-Allowed": "/field", "Cache-Control": "no-cache"}
    return FileResponse(STATIC_DIR / "field_sw.js", media_type="text/javascript", headers=headers)


@router.get("/api/field/units", response_model=list[FieldUnit], summary="Units an officer may sign in to")
def list_units(session: DbSession, _: Officer) -> list[FieldUnit]:
    return service.units(session)


@router.post("/api/field/shift", response_model=ShiftOut, summary="Sign in to a unit for a shift (audited)")
def start_shift(body: ShiftIn, session: DbSession, principal: Officer) -> ShiftOut:
    return ShiftOut.model_validate(
        service.start_shift(session, username=principal.username, unit_id=body.unit_id)
    )


@router.post("/api/field/shift/end", response_model=ShiftOut, summary="Sign out of the unit (audited)")
def end_shift(session: DbSession, principal: Officer) -> ShiftOut:
    return ShiftOut.model_validate(service.end_shift(session, username=principal.username))


@router.get(
    "/api/field/assignment",
    response_model=Assignment,
    summary="The unit's shift and the incident it is sent to (ETag; the view is audited)",
    responses={304: {"description": "Unchanged since the ETag in If-None-Match."}},
)
def get_assignment(request: Request, session: DbSession, ctx: Ctx, principal: Officer) -> Response:
    graph, problem = roads.configured(ctx.settings.road_graph)
    found = service.assignment(
        session, principal.username, speed_kmh=_speed(ctx), roads=graph, roads_problem=problem
    )
    target = found.incident.id if found.incident else (found.unit_id or "none")
    # The phone polls this every few seconds: one audit row per stretch of looking at one incident.
    audit.record_viewing(session, actor=principal.username, action="field.assignment", target=target)
    body = found.model_dump_json().encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.post(
    "/api/field/updates", response_model=UpdatesOut, summary="Positions, arrival and outcome, in order"
)
def send_updates(body: UpdatesIn, session: DbSession, principal: Officer) -> UpdatesOut:
    done = service.apply_updates(session, username=principal.username, updates=body.updates)
    events: list[Event] = []
    for unit in dict.fromkeys(done.units):
        # A batch of fixes alone is as of the last fix; a status change happens now (`unit_event`).
        events.append(dispatch.unit_event(unit, at=None if done.status_changed else unit.position_at))
    events += [alerts.changed_event(a) for a in done.alerts]
    for event in events:
        outbox.stage(session, event)
    return UpdatesOut(results=done.results)
