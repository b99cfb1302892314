"""Camera registry over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, UploadFile

from safecity.accounts.api import require
from safecity.accounts.service import Principal
from safecity.audit import service as audit
from safecity.cameras import service
from safecity.cameras.models import CameraIn, CameraOut, CameraPatch, ImportReport
from safecity.core.errors import InvalidInput, NotFound
from safecity.core.http import Ctx, DbSession
from safecity.core.importer import ImportLimits
from safecity.core.params import Offset
from safecity.worker.runtime import latest_snapshot

router = APIRouter(prefix="/api/cameras", tags=["cameras"])

Reader = Annotated[Principal, Depends(require("cameras:read"))]
Writer = Annotated[Principal, Depends(require("cameras:write"))]


@router.get("", response_model=list[CameraOut], summary="List cameras")
def list_cameras(
    session: DbSession,
    _: Reader,
    kind: str | None = None,
    district: str | None = None,
    health: str | None = None,
    limit: Annotated[int, Query(ge=1, le=20000)] = 5000,
    offset: Offset = 0,
) -> list[CameraOut]:
    rows = service.list_cameras(
        session, kind=kind, district=district, health=health, limit=limit, offset=offset
    )
    return [CameraOut.of(c) for c in rows]


@router.post("", response_model=CameraOut, status_code=201, summary="Register a camera")
def create_camera(body: CameraIn, session: DbSession, principal: Writer) -> CameraOut:
    return CameraOut.of(service.create(session, body, actor=principal.username))


@router.get("/{camera_id}", response_model=CameraOut, summary="One camera")
def get_camera(camera_id: str, session: DbSession, _: Reader) -> CameraOut:
    return CameraOut.of(service.get(session, camera_id))


@router.get("/{camera_id}/snapshot", summary="The newest picture of a camera (JPEG), for the video wall")
def snapshot(camera_id: str, session: DbSession, principal: Reader) -> Response:
    service.get(session, camera_id)
    picture = latest_snapshot(camera_id)
    if picture is None:
        raise NotFound(
            f"no picture from camera {camera_id!r} yet",
            hint="the camera is not analysed in this process, or has not delivered a frame",
        )
    # A wall tile asks every second or two: who watched which camera is on record once per stretch.
    audit.record_viewing(session, actor=principal.username, action="camera.watch", target=camera_id)
    return Response(picture, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.patch("/{camera_id}", response_model=CameraOut, summary="Change a camera")
def update_camera(camera_id: str, body: CameraPatch, session: DbSession, principal: Writer) -> CameraOut:
    return CameraOut.of(service.update(session, camera_id, body, actor=principal.username))


@router.delete("/{camera_id}", status_code=204, summary="Remove a camera")
def delete_camera(camera_id: str, session: DbSession, principal: Writer) -> None:
    service.delete(session, camera_id, actor=principal.username)


@router.post("/import", response_model=ImportReport, summary="Bulk import from CSV or YAML (all or nothing)")
def import_cameras(
    file: UploadFile, session: DbSession, ctx: Ctx, principal: Writer, upsert: bool = False
) -> ImportReport:
    name = (file.filename or "").lower()
    fmt = "yaml" if name.endswith((".yaml", ".yml")) else "csv"
    report = service.import_cameras(
        session,
        file.file,
        fmt=fmt,
        actor=principal.username,
        upsert=upsert,
        limits=ImportLimits.from_settings(ctx.settings),
    )
    if report.errors:
        raise InvalidInput(
            f"{len(report.errors)} problem(s); nothing was imported: " + "; ".join(report.errors[:20]),
            hint="fix the rows named and import the file again",
        )
    return report
