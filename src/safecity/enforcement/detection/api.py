"""Which helmet and seat-belt offences the installed models can detect, over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from safecity.accounts.api import require
from safecity.accounts.service import Principal
from safecity.core.http import DbSession
from safecity.enforcement.detection import service
from safecity.enforcement.detection.models import OffenceDetection

router = APIRouter(prefix="/api", tags=["enforcement"])

Reviewer = Annotated[Principal, Depends(require("challans:review"))]


@router.get(
    "/enforcement/detection",
    response_model=list[OffenceDetection],
    summary="Whether helmet and seat-belt offences are detected (a model installed) and where they are on",
)
def offence_detection(session: DbSession, _: Reviewer) -> list[OffenceDetection]:
    return service.offence_detection(session)
