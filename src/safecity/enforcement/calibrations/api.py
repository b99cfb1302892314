"""Calibrations over HTTP: upload a certificate, record, list and revoke a camera's calibrations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from safecity.accounts.api import require
from safecity.accounts.service import Principal
from safecity.core.errors import InvalidInput
from safecity.core.http import Ctx, DbSession
from safecity.enforcement.calibrations import service
from safecity.enforcement.calibrations.models import (
    CalibrationIn,
    CalibrationOut,
    CalibrationRevokeIn,
    CalibrationRevokeOut,
)

router = APIRouter(prefix="/api/enforcement", tags=["enforcement"])

Reviewer = Annotated[Principal, Depends(require("challans:review"))]
Admin = Annotated[Principal, Depends(require("challans:admin"))]

#: What a certificate may be, by the type its upload declares.
CERTIFICATE_TYPES = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}
CERTIFICATE_MAX_BYTES = 20 * 1024 * 1024
_MAGIC = {"pdf": b"%PDF", "jpg": b"\xff\xd8\xff", "png": b"\x89PNG"}


@router.post("/certificates", status_code=201, summary="Upload a calibration certificate (PDF, JPEG or PNG)")
async def upload_certificate(request: Request, ctx: Ctx, _: Admin) -> dict[str, str]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    ext = CERTIFICATE_TYPES.get(kind)
    if ext is None:
        raise InvalidInput(
            f"a certificate must be application/pdf, image/jpeg or image/png, not {kind or 'untyped'}",
            hint="send the file's bytes with its content type",
        )
    data = await request.body()
    if len(data) > CERTIFICATE_MAX_BYTES:
        raise InvalidInput(f"the certificate is larger than {CERTIFICATE_MAX_BYTES // 1024 // 1024} MB")
    if not data.startswith(_MAGIC[ext]):
        raise InvalidInput(f"the file is not a {ext.upper()}", hint="check the file and its content type")
    return {"ref": ctx.media.put(data, ext)}


@router.post(
    "/cameras/{camera_id}/calibrations",
    response_model=CalibrationOut,
    status_code=201,
    summary="Record a camera's speed calibration with its proof and certificate",
)
def add_calibration(
    camera_id: str, body: CalibrationIn, session: DbSession, ctx: Ctx, principal: Admin
) -> CalibrationOut:
    row = service.record(session, camera_id, body, media=ctx.media, actor=principal.username)
    return CalibrationOut.model_validate(row)


@router.get(
    "/cameras/{camera_id}/calibrations",
    response_model=list[CalibrationOut],
    summary="A camera's calibrations, the latest first",
)
def list_calibrations(camera_id: str, session: DbSession, _: Reviewer) -> list[CalibrationOut]:
    return [CalibrationOut.model_validate(row) for row in service.list_for(session, camera_id)]


@router.post(
    "/calibrations/{calibration_id}/revoke",
    response_model=CalibrationRevokeOut,
    summary="Revoke a calibration from a moment on (faulty device, withdrawn certificate)",
)
def revoke_calibration(
    calibration_id: int, body: CalibrationRevokeIn, session: DbSession, principal: Admin
) -> CalibrationRevokeOut:
    row, held, challans = service.revoke(
        session,
        calibration_id,
        effective_from=body.effective_from,
        reason=body.reason,
        actor=principal.username,
    )
    return CalibrationRevokeOut(
        calibration=CalibrationOut.model_validate(row), violations_held=held, challans_to_review=challans
    )
