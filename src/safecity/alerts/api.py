"""The alert queue over HTTP."""

from __future__ import annotations

import asyncio

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from safecity.accounts.api import require
from safecity.accounts.service import Principal
from safecity.alerts import service
from safecity.alerts.models import Alert, AlertActionIn, AlertActionOut, AlertOut
from safecity.core.db import get_or_raise
from safecity.core.http import Ctx, DbSession

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


@router.get("", response_model=list[AlertOut], summary="The alert queue, highest priority first")
def list_alerts(
    session: DbSession,
    _: Annotated[Principal, Depends(require("alerts:read"))],
    status: str | None = None,
    kind: str | None = None,
    open_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AlertOut]:
    rows = service.list_alerts(session, status=status, kind=kind, open_only=open_only, limit=limit)
    return [AlertOut.model_validate(a) for a in rows]


@router.get("/{alert_id}", response_model=AlertOut, summary="One alert with its evidence")
def get_alert(alert_id: str, session: DbSession, _: Annotated[Principal, Depends(require("alerts:read"))]) -> AlertOut:
    return AlertOut.model_validate(get_or_raise(session, Alert, alert_id, what="alert"))


@router.get("/{alert_id}/history", response_model=list[AlertActionOut], summary="Who did what to an alert")
def alert_history(
    alert_id: str, session: DbSession, _: Annotated[Principal, Depends(require("alerts:read"))]
) -> list[AlertActionOut]:
    return [AlertActionOut.model_validate(a) for a in service.history(session, alert_id)]


@router.post("/{alert_id}/actions", response_model=AlertOut, summary="Acknowledge, confirm, dismiss or close")
async def act_on_alert(
    alert_id: str,
    body: AlertActionIn,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(require("alerts:act"))],
) -> AlertOut:
    def decide() -> AlertOut:
        with ctx.db.session() as session:
            alert = service.act(
                session, alert_id, action=body.action, actor=principal.username, reason=body.reason, version=body.version
            )
            return AlertOut.model_validate(alert)

    out = await asyncio.to_thread(decide)
    await ctx.bus.publish(service.changed_event(out))
    return out
