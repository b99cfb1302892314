"""The media store over HTTP: its size by retention class, the sweep, and holds on evidence."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from safecity.accounts.api import require, require_any
from safecity.accounts.service import Principal
from safecity.core.http import Ctx, DbSession
from safecity.evidence import retention, service
from safecity.evidence.models import HoldIn, HoldOut, ReleaseIn, StoreReport, SweepReport

router = APIRouter(prefix="/api/media", tags=["media"])

Watcher = Annotated[Principal, Depends(require("system:read"))]
Admin = Annotated[Principal, Depends(require("settings:write"))]
Holder = Annotated[Principal, Depends(require("evidence:hold"))]
HoldReader = Annotated[Principal, Depends(require_any("evidence:hold", "audit:read"))]


# The two routes below open their own sessions (the sweep commits batch by batch): no DbSession here.
@router.get("/status", response_model=StoreReport, summary="The media store's size by retention class")
def status(ctx: Ctx, _: Watcher, fresh: Annotated[bool, Query()] = False) -> StoreReport:
    """The figures of the last sweep; `fresh=true` walks the store now (slow on a large store)."""
    if not fresh:
        with ctx.db.session() as session:
            last = retention.last_sweep(session)
            stored = last.report.get("store") if last is not None else None
        if stored:
            return StoreReport.model_validate(stored)
    return retention.store_report(ctx.db, ctx.media, ctx.settings)


@router.post("/sweep", response_model=SweepReport, summary="Remove expired and unclaimed media now")
def sweep(ctx: Ctx, principal: Admin, dry_run: Annotated[bool, Query()] = False) -> SweepReport:
    """Runs the sweep (409 while another runs anywhere in the city); `dry_run=true` changes nothing."""
    return retention.sweep(ctx.db, ctx.media, ctx.settings, dry_run=dry_run, actor=principal.username)


@router.get("/holds", response_model=list[HoldOut], summary="Holds on evidence")
def holds(session: DbSession, _: HoldReader, include_released: bool = False) -> list[HoldOut]:
    return [HoldOut.model_validate(h) for h in service.list_holds(session, include_released=include_released)]


@router.post("/holds", response_model=HoldOut, status_code=201, summary="Hold evidence (legal hold or case)")
def place_hold(body: HoldIn, session: DbSession, ctx: Ctx, principal: Holder) -> HoldOut:
    """Keeps the named objects, or every object of the named rows, until the hold is released."""
    hold = service.place_hold(
        session,
        kind=body.kind,
        reference=body.reference,
        reason=body.reason,
        actor=principal.username,
        refs=body.refs,
        owners=body.owners,
        store=ctx.media,
    )
    return HoldOut.model_validate(hold)


@router.post("/holds/{hold_id}/release", response_model=HoldOut, summary="Release a hold")
def release_hold(hold_id: str, body: ReleaseIn, session: DbSession, principal: Holder) -> HoldOut:
    hold = service.release_hold(session, hold_id, reason=body.reason, actor=principal.username)
    return HoldOut.model_validate(hold)
