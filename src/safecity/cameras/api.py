"""Camera registry over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, UploadFile

from safecity.accounts.api import require
from safecity.accounts.service import Principal
from safecity.audit import service as audit
from safecity.cameras import service
from safecity.cameras.models import (
    CameraConfig,
    CameraIn,
    CameraOut,
    CameraPatch,
    ConfigVersionDetail,
    ConfigVersionOut,
    ImportReport,
)
from safecity.cameras.ptz.api import router as ptz_router
from safecity.core.errors import InvalidInput, NotFound
from safecity.core.http import Ctx, DbSession
from safecity.core.importer import ImportLimits
from safecity.core.params import Offset
from safecity.vision import compliance
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


@router.get("/config-schema", summary="The JSON schema of a camera's configuration (settings, zones, lines)")
def config_schema(_: Reader) -> dict[str, Any]:
    """Titles, descriptions, enums and limits of every setting: what the camera page builds its form from.

    `used_by` also says, in plain words, which offence checks cannot run on this host for want of a model.
    """
    schema = CameraConfig.model_json_schema()
    schema["used_by"] = {**schema.get("used_by", {}), **compliance.undetected_notes()}
    return schema


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


@router.get(
    "/{camera_id}/versions",
    response_model=list[ConfigVersionOut],
    summary="A camera's configuration history, newest first",
)
def config_versions(camera_id: str, session: DbSession, _: Reader) -> list[ConfigVersionOut]:
    return [ConfigVersionOut.model_validate(v) for v in service.versions(session, camera_id)]


@router.get(
    "/{camera_id}/versions/{version}",
    response_model=ConfigVersionDetail,
    summary="One version of a camera's configuration, whole",
)
def config_version(
    camera_id: str, version: Annotated[int, Path(ge=1, le=2**31 - 1)], session: DbSession, _: Reader
) -> ConfigVersionDetail:
    return ConfigVersionDetail.model_validate(service.get_version(session, camera_id, version))


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


router.include_router(ptz_router)
