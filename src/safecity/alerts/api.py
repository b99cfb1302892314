"""The alert queue over HTTP: list, view (audited), decide, history, and the figures for the dashboard."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from safecity.accounts.api import require
from safecity.accounts.service import Principal
from safecity.alerts import service
from safecity.alerts.models import (
    AlertActionIn,
    AlertActionOut,
    AlertOut,
    FalseAlarmReport,
    HourlyCounts,
    ResponseTimes,
)
from safecity.audit import service as audit
from safecity.core import outbox
from safecity.core.clock import utcnow
from safecity.core.http import DbSession

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

Reader = Annotated[Principal, Depends(require("alerts:read"))]
Actor = Annotated[Principal, Depends(require("alerts:act"))]


@router.get("", response_model=list[AlertOut], summary="The alert queue, highest priority first")
def list_alerts(
    session: DbSession,
    principal: Reader,
    status: str | None = None,
    kind: str | None = None,
    open_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AlertOut]:
    rows = service.list_alerts(session, status=status, kind=kind, open_only=open_only, limit=limit)
    # The queue shows plates, faces and places: each page that loads it is on record.
    audit.record(
        session,
        actor=principal.username,
        action="alert.list",
        detail={"status": status, "kind": kind, "open_only": open_only, "rows": len(rows)},
    )
    return [AlertOut.model_validate(a) for a in rows]


@router.get(
    "/stats/false-alarms", response_model=FalseAlarmReport, summary="False alarms per camera and rule"
)
def false_alarms(
    session: DbSession, _: Reader, days: Annotated[float, Query(gt=0, le=366)] = 7
) -> FalseAlarmReport:
    return service.false_alarms(session, since=utcnow() - timedelta(days=days))


@router.get("/stats/hourly", response_model=HourlyCounts, summary="Alerts raised per hour, by kind")
def hourly(
    session: DbSession, _: Reader, hours: Annotated[int, Query(ge=1, le=24 * 31)] = 24
) -> HourlyCounts:
    return service.hourly_counts(session, hours=hours)


@router.get("/stats/response", response_model=ResponseTimes, summary="Seconds from alert to first decision")
def response(session: DbSession, _: Reader, days: Annotated[float, Query(gt=0, le=366)] = 7) -> ResponseTimes:
    return service.response_times(session, since=utcnow() - timedelta(days=days))


@router.get(
    "/{alert_id}", response_model=AlertOut, summary="One alert with its evidence (the view is audited)"
)
def get_alert(alert_id: str, session: DbSession, principal: Reader) -> AlertOut:
    return AlertOut.model_validate(service.view(session, alert_id, actor=principal.username))


@router.get("/{alert_id}/history", response_model=list[AlertActionOut], summary="Who did what to an alert")
def alert_history(alert_id: str, session: DbSession, principal: Reader) -> list[AlertActionOut]:
    rows = service.history(session, alert_id)
    audit.record(session, actor=principal.username, action="alert.history", target=alert_id)
    return [AlertActionOut.model_validate(a) for a in rows]


@router.post("/{alert_id}/actions", response_model=AlertOut, summary="Acknowledge, confirm, dismiss or close")
def act_on_alert(alert_id: str, body: AlertActionIn, session: DbSession, principal: Actor) -> AlertOut:
    alert = service.act(
        session,
        alert_id,
        action=body.action,
        actor=principal.username,
        reason=body.reason,
        version=body.version,
        reason_code=body.reason_code,
    )
    out = AlertOut.model_validate(alert)
    # Published once the decision commits, so a page that reacts to it reads the decision.
    outbox.stage(session, service.changed_event(out))
    return out
