"""Enforcement over HTTP: the violation review queue, speed sections, the signal feed (and the sub-domains'
routes: calibrations, court readiness)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from safecity.accounts.api import require
from safecity.accounts.service import Principal
from safecity.audit import service as audit
from safecity.core import outbox
from safecity.core.errors import InvalidInput
from safecity.core.events import ViolationCandidate
from safecity.core.http import DbSession
from safecity.core.params import Offset
from safecity.enforcement import service
from safecity.enforcement.calibrations import api as calibrations_api
from safecity.enforcement.detection import api as detection_api
from safecity.enforcement.detection import service as detection
from safecity.enforcement.models import (
    OFFENCES,
    EnforcementPolicy,
    PhaseIn,
    PhaseOut,
    ReviewIn,
    ReviewOut,
    SignalPhaseChanged,
    SpeedSectionIn,
    SpeedSectionOut,
    ViolationOut,
)
from safecity.enforcement.readiness import api as readiness_api

api = APIRouter(prefix="/api", tags=["enforcement"])
pages = APIRouter(include_in_schema=False)

Reviewer = Annotated[Principal, Depends(require("challans:review"))]
Admin = Annotated[Principal, Depends(require("challans:admin"))]
SignalFeed = Annotated[Principal, Depends(require("signals:write"))]


@api.get("/violations", response_model=list[ViolationOut], summary="Violations, the review queue first")
def list_violations(
    session: DbSession,
    principal: Reviewer,
    status: str | None = None,
    offence: str | None = None,
    plate: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[ViolationOut]:
    rows = service.list_violations(
        session, status=status, offence=offence, plate=plate, limit=limit, offset=offset
    )
    # The review page polls this list: one row per reviewer and filter for each stretch of watching.
    audit.record_viewing(
        session,
        actor=principal.username,
        action="violation.list",
        target=f"status={status or ''} offence={offence or ''} plate={plate or ''} offset={offset}",
    )
    return [ViolationOut.model_validate(v) for v in rows]


@api.get("/violations/counts", summary="How many violations are in each status")
def violation_counts(session: DbSession, _: Reviewer) -> dict[str, int]:
    return service.count_by_status(session)


@api.get("/violations/{violation_id}", response_model=ViolationOut, summary="One violation with its evidence")
def get_violation(violation_id: str, session: DbSession, principal: Reviewer) -> ViolationOut:
    violation = service.get_violation(session, violation_id)
    audit.record(session, actor=principal.username, action="violation.view", target=violation_id)
    return ViolationOut.model_validate(violation)


@api.post("/violations/{violation_id}/review", response_model=ReviewOut, summary="Approve or reject")
def review_violation(violation_id: str, body: ReviewIn, session: DbSession, principal: Reviewer) -> ReviewOut:
    from safecity.challans import service as challans

    violation = service.review(session, violation_id, body, actor=principal.username)
    if violation.status != "approved":
        return ReviewOut.of(violation, outcome="Rejected: no challan will be issued.")
    outbox.stage(session, service.approved_event(violation))  # announced once it commits
    # Issued here and now, so the officer reads what happened, not what should happen (a repeat
    # from the approval event changes nothing).
    report = challans.issue_for_violations(session, [violation.id])
    session.refresh(violation)
    if report.numbers:
        outcome = f"Approved: challan {report.numbers[0]} issued."
    else:
        why = report.held_reasons.get(violation.id) or violation.hold_reason or "it cannot be issued yet"
        outcome = f"Approved, but no challan was issued: {why}."
    return ReviewOut.of(violation, outcome=outcome)


@api.post("/violations/candidates", status_code=202, summary="Submit a violation candidate (integrations)")
def submit_candidate(body: ViolationCandidate, session: DbSession, principal: Admin) -> dict[str, str]:
    if body.offence not in OFFENCES:  # refused here, not dead-lettered by the consumer later
        raise InvalidInput(f"unknown offence {body.offence!r}", hint=f"use one of {', '.join(OFFENCES)}")
    audit.record(session, actor=principal.username, action="violation.submit", target=body.key)
    outbox.stage(session, body)
    return {"key": body.key, "status": "accepted"}


@api.get("/enforcement/policy", response_model=EnforcementPolicy, summary="The enforcement policy in force")
def get_policy(session: DbSession, _: Reviewer) -> EnforcementPolicy:
    return service.get_policy(session)


@api.put("/enforcement/policy", response_model=EnforcementPolicy, summary="Change the enforcement policy")
def put_policy(body: EnforcementPolicy, session: DbSession, principal: Admin) -> EnforcementPolicy:
    return service.set_policy(session, body, actor=principal.username)


@api.get("/enforcement/sections", response_model=list[SpeedSectionOut], summary="Speed sections")
def list_sections(session: DbSession, _: Reviewer) -> list[SpeedSectionOut]:
    return [SpeedSectionOut.model_validate(s) for s in service.list_speed_sections(session)]


@api.post(
    "/enforcement/sections", response_model=SpeedSectionOut, status_code=201, summary="Add a speed section"
)
def create_section(body: SpeedSectionIn, session: DbSession, principal: Admin) -> SpeedSectionOut:
    return SpeedSectionOut.model_validate(
        service.create_speed_section(session, body, actor=principal.username)
    )


@api.delete("/enforcement/sections/{section_id}", status_code=204, summary="Remove a speed section")
def delete_section(section_id: str, session: DbSession, principal: Admin) -> None:
    service.delete_speed_section(session, section_id, actor=principal.username)


@api.post(
    "/signals/{junction}/phase", response_model=PhaseOut, status_code=201, summary="Signal controller feed"
)
def post_phase(junction: str, body: PhaseIn, session: DbSession, _: SignalFeed) -> PhaseOut:
    out = PhaseOut.model_validate(service.record_phase(session, junction, body))
    # The junction's cameras hear of the phase once it is recorded.
    outbox.stage(
        session,
        SignalPhaseChanged(
            key=f"signal:{junction}:{out.at.isoformat()}:{out.phase}",
            at=out.at,
            junction=junction,
            phase=out.phase,
            source=out.source,
        ),
    )
    return out


@pages.get("/violations", response_class=HTMLResponse)
def violations_page(request: Request, session: DbSession, _: Reviewer) -> Response:
    from safecity.web.pages import templates

    # Said plainly on the page: an offence no installed model can see is not in this queue at all.
    undetected = [d for d in detection.offence_detection(session) if not d.detected]
    return templates.TemplateResponse(request, "enforcement_violations.html", {"undetected": undetected})


# The server mounts `router`: the JSON API under /api and the page at /violations.
router = APIRouter()
router.include_router(api)
router.include_router(calibrations_api.router)
router.include_router(detection_api.router)
router.include_router(readiness_api.router)
router.include_router(pages)
