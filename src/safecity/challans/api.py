"""Challans over HTTP: staff routes (issue, appeals, registry), the citizen portal, and payments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response

from safecity.accounts.api import require
from safecity.accounts.service import Principal
from safecity.audit import service as audit
from safecity.challans import notice, notices_queue, service
from safecity.challans.models import (
    AppealIn,
    AppealOut,
    ChallanOut,
    ChallanRules,
    DecisionIn,
    FlagOut,
    ImportReport,
    IssueReport,
    LookupIn,
    LookupOut,
)
from safecity.challans.payments.api import router as payments_router
from safecity.core.clock import utcnow
from safecity.core.errors import NotFound
from safecity.core.http import Ctx, DbSession, client_address
from safecity.core.importer import ImportLimits
from safecity.core.params import Offset

staff = APIRouter(prefix="/api/challans", tags=["challans"])
portal = APIRouter(prefix="/api/portal", tags=["citizen portal"])
pages = APIRouter(include_in_schema=False)

Reviewer = Annotated[Principal, Depends(require("challans:review"))]
Admin = Annotated[Principal, Depends(require("challans:admin"))]
Committee = Annotated[Principal, Depends(require("challans:appeals"))]

_TYPES = {"jpg": "image/jpeg", "png": "image/png", "pdf": "application/pdf", "mp4": "video/mp4"}


def _out(session: Any, challan: Any) -> ChallanOut:
    out = ChallanOut.model_validate(challan)
    now = utcnow()
    rules = service.get_rules(session)
    out.day = service.clock_day(challan, now)
    dates = service.clock_dates(challan, rules, now)
    out.discount_until, out.due_at, out.appeal_until = (
        dates["discount_until"],
        dates["due_at"],
        dates["appeal_until"],
    )
    if challan.status in {"unpaid", "appealed"}:
        out.amount_due = service.amount_due(challan, rules, now)
    return out


@staff.get("", response_model=list[ChallanOut], summary="Challans, newest first")
def list_challans(
    session: DbSession,
    principal: Reviewer,
    status: str | None = None,
    plate: str | None = None,
    cnic: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[ChallanOut]:
    rows = service.list_challans(session, status=status, plate=plate, cnic=cnic, limit=limit, offset=offset)
    # Every page of challans shows owners' names, CNICs and addresses: a search or not, it is on record.
    audit.record(
        session,
        actor=principal.username,
        action="challan.search" if plate or cnic else "challan.list",
        detail={"plate": plate, "cnic": cnic, "status": status, "offset": offset, "rows": len(rows)},
    )
    return [_out(session, c) for c in rows]


@staff.get("/stats/daily", summary="Challans issued and paid per day (last 30 days)")
def daily(
    session: DbSession, _: Reviewer, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> list[dict[str, Any]]:
    return service.daily_counts(session, days=days)


@staff.get("/counts", summary="How many challans are in each status")
def counts(session: DbSession, _: Reviewer) -> dict[str, int]:
    return service.count_by_status(session)


@staff.get("/rules", response_model=ChallanRules, summary="The fine schedule in force")
def get_rules(session: DbSession, _: Reviewer) -> ChallanRules:
    return service.get_rules(session)


@staff.put("/rules", response_model=ChallanRules, summary="Change the fine schedule")
def put_rules(body: ChallanRules, session: DbSession, principal: Admin) -> ChallanRules:
    return service.set_rules(session, body, actor=principal.username)


@staff.post("/issue-pending", response_model=IssueReport, summary="Issue challans for approved violations")
def issue_pending(
    ctx: Ctx, session: DbSession, _: Admin, limit: Annotated[int, Query(ge=1, le=100_000)] = 5_000
) -> IssueReport:
    report = service.issue_pending(session, limit=limit)
    session.commit()
    ctx.count("challans", report.issued)
    return report


@staff.post("/notices/render", summary="Render missing notices now")
def render_notices(ctx: Ctx, _: Admin, limit: Annotated[int, Query(ge=1, le=10_000)] = 500) -> dict[str, int]:
    """The notices work queue does this every few seconds by itself; this runs one turn at once."""
    return {"rendered": notices_queue.render_due_notices(ctx, limit)}


@staff.post("/deliveries/run", summary="Send queued notices now")
def run_deliveries(ctx: Ctx, _: Admin, limit: Annotated[int, Query(ge=1, le=10_000)] = 500) -> dict[str, int]:
    """The notices work queue does this every few seconds by itself; this runs one turn at once."""
    notices_queue.render_due_notices(ctx, limit)
    return notices_queue.send_due_deliveries(ctx, limit)


@staff.post(
    "/registry/import",
    response_model=ImportReport,
    summary="Import the vehicle registry CSV (all or nothing)",
)
def import_registry(file: UploadFile, session: DbSession, ctx: Ctx, principal: Admin) -> Response:
    report = service.import_registry(
        session, file.file, actor=principal.username, limits=ImportLimits.from_settings(ctx.settings)
    )
    return JSONResponse(report.model_dump(), status_code=422 if report.errors else 200)


@staff.get("/registry/{plate}", summary="A registered vehicle and its owner")
def registry_entry(plate: str, session: DbSession, principal: Reviewer) -> dict[str, Any]:
    vehicle = service.lookup_vehicle(session, plate)
    audit.record(session, actor=principal.username, action="challan.registry_view", target=vehicle.plate)
    return {
        c: getattr(vehicle, c)
        for c in ("plate", "owner", "cnic", "address", "make", "colour", "phone", "email")
    }


@staff.get("/flags", response_model=list[FlagOut], summary="Licence and CNIC flags")
def flags(
    session: DbSession, principal: Reviewer, cnic: str | None = None, open_only: bool = True
) -> list[FlagOut]:
    rows = service.list_flags(session, cnic=cnic, open_only=open_only)
    audit.record(
        session,
        actor=principal.username,
        action="challan.flags_view",
        detail={"cnic": cnic, "rows": len(rows)},
    )
    return [FlagOut.model_validate(f) for f in rows]


@staff.post("/flags/sweep", summary="Flag licences and CNICs of long-unpaid challans")
def sweep_flags(session: DbSession, _: Admin) -> dict[str, int]:
    return service.sweep_flags(session)


@staff.get("/{number}", response_model=ChallanOut, summary="One challan")
def get_challan(number: str, session: DbSession, principal: Reviewer) -> ChallanOut:
    challan = service.get_challan(session, number)
    audit.record(session, actor=principal.username, action="challan.view", target=challan.number)
    return _out(session, challan)


@staff.get("/{number}/notice", summary="The challan's PDF notice", response_class=Response)
def staff_notice(number: str, ctx: Ctx, session: DbSession, principal: Reviewer) -> Response:
    challan = service.get_challan(session, number)
    ref = challan.notice_ref or notice.render_notice(
        session, ctx.media, challan.number, portal=notice.portal_address(ctx.settings)
    )
    audit.record(session, actor=principal.username, action="challan.notice_view", target=challan.number)
    return _file(ctx, ref, f"{challan.number}.pdf")


@staff.get("/{number}/appeal", response_model=AppealOut, summary="The challan's appeal")
def get_appeal(number: str, session: DbSession, principal: Reviewer) -> AppealOut:
    challan = service.get_challan(session, number)
    appeal = service.get_appeal(session, challan)
    if appeal is None:
        raise NotFound(f"challan {challan.number} has no appeal")
    audit.record(session, actor=principal.username, action="challan.appeal_view", target=challan.number)
    return AppealOut.model_validate(appeal)


@staff.post("/{number}/appeal/decision", response_model=AppealOut, summary="The committee decides an appeal")
def decide_appeal(number: str, body: DecisionIn, session: DbSession, principal: Committee) -> AppealOut:
    return AppealOut.model_validate(service.decide_appeal(session, number, body, actor=principal.username))


# --- citizen portal: public, rate-limited, scoped by the token a plate + CNIC look-up returns --------


def portal_token(request: Request) -> str:
    """Returns the citizen's access token from the X-Portal-Token header or the `t` query parameter."""
    return request.headers.get("x-portal-token") or request.query_params.get("t", "")


Token = Annotated[str, Depends(portal_token)]


@portal.post(
    "/lookup", response_model=LookupOut, summary="Find your challans by plate and CNIC (both required)"
)
def lookup(body: LookupIn, request: Request, session: DbSession) -> LookupOut:
    return service.portal_lookup(session, plate=body.plate, cnic=body.cnic, client=client_address(request))


@portal.get("/challans/{number}/notice", summary="Download your notice (PDF)", response_class=Response)
def citizen_notice(number: str, token: Token, ctx: Ctx, session: DbSession, request: Request) -> Response:
    challan = service.portal_challan(session, token=token, number=number)
    ref = challan.notice_ref or notice.render_notice(
        session, ctx.media, challan.number, portal=notice.portal_address(ctx.settings)
    )
    audit.record(
        session,
        actor=f"citizen@{client_address(request)}",
        action="challan.portal_notice",
        target=challan.number,
    )
    return _file(ctx, ref, f"{challan.number}.pdf")


@portal.get(
    "/challans/{number}/evidence/{ref}", summary="An evidence image of your challan", response_class=Response
)
def citizen_evidence(
    number: str, ref: str, token: Token, ctx: Ctx, session: DbSession, request: Request
) -> Response:
    challan = service.portal_challan(session, token=token, number=number)
    view = service.citizen_view(session, challan, service.get_rules(session), utcnow())
    if ref not in view.evidence:
        raise NotFound("this image is not part of your challan's evidence")
    audit.record(
        session,
        actor=f"citizen@{client_address(request)}",
        action="challan.portal_evidence",
        target=challan.number,
    )
    return _file(ctx, ref, None)


@portal.post(
    "/challans/{number}/appeal", response_model=AppealOut, status_code=201, summary="Appeal your challan"
)
def citizen_appeal(
    number: str, body: AppealIn, token: Token, session: DbSession, request: Request
) -> AppealOut:
    challan = service.portal_challan(session, token=token, number=number)
    appeal = service.file_appeal(session, challan.number, body, actor=f"citizen@{client_address(request)}")
    return AppealOut.model_validate(appeal)


@portal.get("/verify/{code}", summary="Check that a notice is genuine")
def verify(code: str, session: DbSession, request: Request) -> dict[str, Any]:
    found = service.verify_code(session, code)
    # Anyone holding a notice may check it, and what it names is on record like any other read.
    audit.record(
        session,
        actor=f"citizen@{client_address(request)}",
        action="challan.portal_verify",
        target=str(found.get("number", "")),
    )
    return found


@pages.get("/portal", response_class=HTMLResponse)
def portal_page(request: Request) -> Response:
    from safecity.web.pages import templates

    return templates.TemplateResponse(request, "portal_index.html", {})


@pages.get("/challans", response_class=HTMLResponse)
def challans_page(request: Request, _: Reviewer) -> Response:
    from safecity.web.pages import templates

    return templates.TemplateResponse(request, "challans_list.html", {})


def _file(ctx: Ctx, ref: str, filename: str | None) -> Response:
    try:
        data = ctx.media.get(ref)
    except NotFound:
        raise NotFound(
            "the file is no longer in the media store", hint="ask the traffic police for a copy"
        ) from None
    headers = {"Cache-Control": "private, no-store"}
    if filename:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    media_type = _TYPES.get(ref.rpartition(".")[2], "application/octet-stream")
    return Response(data, media_type=media_type, headers=headers)


# The server mounts `router`: staff API, portal API, the /portal and /challans pages, and payments.
router = APIRouter()
router.include_router(staff)
router.include_router(portal)
router.include_router(pages)
router.include_router(payments_router)
