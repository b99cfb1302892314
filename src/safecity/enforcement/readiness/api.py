"""Court readiness over HTTP: road surveys, camera clock checks, signal sources, a violation's checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from safecity.accounts.api import require
from safecity.accounts.service import Principal
from safecity.core.http import DbSession
from safecity.enforcement import service as enforcement
from safecity.enforcement.readiness import service
from safecity.enforcement.readiness.models import (
    Check,
    ClockCheckIn,
    ClockCheckOut,
    RoadSurveyIn,
    RoadSurveyOut,
    SignalSourceIn,
    SignalSourceOut,
)

router = APIRouter(prefix="/api", tags=["enforcement"])

Reviewer = Annotated[Principal, Depends(require("challans:review"))]
Admin = Annotated[Principal, Depends(require("challans:admin"))]


@router.post(
    "/enforcement/cameras/{camera_id}/road-surveys",
    response_model=RoadSurveyOut,
    status_code=201,
    summary="Record a survey of the road a camera watches",
)
def add_survey(camera_id: str, body: RoadSurveyIn, session: DbSession, principal: Admin) -> RoadSurveyOut:
    return RoadSurveyOut.model_validate(
        service.record_survey(session, camera_id, body, actor=principal.username)
    )


@router.get(
    "/enforcement/cameras/{camera_id}/road-surveys",
    response_model=list[RoadSurveyOut],
    summary="A camera's road surveys, newest first",
)
def list_surveys(camera_id: str, session: DbSession, _: Reviewer) -> list[RoadSurveyOut]:
    return [RoadSurveyOut.model_validate(row) for row in service.surveys_of(session, camera_id)]


@router.post(
    "/enforcement/cameras/{camera_id}/clock-checks",
    response_model=ClockCheckOut,
    status_code=201,
    summary="Record a camera clock's offset from NTP",
)
def add_clock_check(
    camera_id: str, body: ClockCheckIn, session: DbSession, principal: Admin
) -> ClockCheckOut:
    row = service.record_clock_check(session, camera_id, body, actor=principal.username)
    return ClockCheckOut.model_validate(row)


@router.get(
    "/enforcement/cameras/{camera_id}/clock-checks",
    response_model=list[ClockCheckOut],
    summary="A camera's latest clock checks, newest first",
)
def list_clock_checks(camera_id: str, session: DbSession, _: Reviewer) -> list[ClockCheckOut]:
    return [ClockCheckOut.model_validate(row) for row in service.clock_checks_of(session, camera_id)]


@router.post(
    "/signals/{junction}/sources",
    response_model=SignalSourceOut,
    status_code=201,
    summary="Record a junction's signal-phase source and its clock check",
)
def add_signal_source(
    junction: str, body: SignalSourceIn, session: DbSession, principal: Admin
) -> SignalSourceOut:
    row = service.record_signal_source(session, junction, body, actor=principal.username)
    return SignalSourceOut.model_validate(row)


@router.get(
    "/signals/{junction}/sources",
    response_model=list[SignalSourceOut],
    summary="A junction's signal sources, newest check first",
)
def list_signal_sources(junction: str, session: DbSession, _: Reviewer) -> list[SignalSourceOut]:
    return [SignalSourceOut.model_validate(row) for row in service.signal_sources_of(session, junction)]


@router.get(
    "/violations/{violation_id}/readiness",
    response_model=list[Check],
    summary="A violation's court-readiness checks, run now",
)
def violation_readiness(violation_id: str, session: DbSession, _: Reviewer) -> list[Check]:
    violation = enforcement.get_violation(session, violation_id)
    row = {
        "id": violation.id,
        "offence": violation.offence,
        "camera_id": violation.camera_id,
        "at": violation.at,
        "measured": violation.measured,
        "evidence": violation.evidence,
    }
    return service.check(session, [row], policy=enforcement.get_policy(session))[violation.id]
