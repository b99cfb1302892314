"""Pan, tilt and zoom over HTTP: the single camera view's arrow pad, zoom and presets.

A camera that cannot move answers 409 (`no_ptz`) saying why; a camera that does not answer 503, one
that refuses SafeCity's credentials or a command 502, each with the camera's own words; an unknown
preset 404. A position the camera cannot be sent to is 409 (`no_absolute_ptz`: it has no absolute
space) or 422 (`position_out_of_range`, naming the range). Turning the camera to a point of the
picture is 409 too when it has no absolute space (`no_absolute_ptz`) or does not say where it points
(`ptz_position_unknown`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from safecity.accounts.api import require
from safecity.accounts.service import Principal
from safecity.cameras.ptz import service
from safecity.cameras.ptz.models import (
    AbsoluteMoveIn,
    CentreIn,
    MoveIn,
    PositionOut,
    PresetIn,
    PresetOut,
    PtzStateOut,
)
from safecity.core.http import Ctx
from safecity.video.ptz import Position

router = APIRouter(tags=["cameras"])  # mounted under /api/cameras by cameras/api.py

Reader = Annotated[Principal, Depends(require("cameras:read"))]
Pilot = Annotated[Principal, Depends(require("cameras:ptz"))]
Token = Annotated[str, Path(min_length=1, max_length=64, description="The camera's token of the preset.")]


@router.get("/{camera_id}/ptz", response_model=PtzStateOut, summary="Whether a camera can pan, tilt and zoom")
def ptz_state(camera_id: str, ctx: Ctx, principal: Reader, refresh: bool = False) -> PtzStateOut:
    """Asks the camera's ONVIF service when it was never asked at its address (or `refresh`)."""
    return service.look(ctx, camera_id, you=principal.username, refresh=refresh)


@router.post("/{camera_id}/ptz/move", response_model=PtzStateOut, summary="Start moving a camera")
def move(camera_id: str, body: MoveIn, ctx: Ctx, principal: Pilot) -> PtzStateOut:
    """Continuous move at the velocities given, until a stop or `timeout_s`; takes the control lease."""
    service.command(
        ctx,
        camera_id,
        actor=principal.username,
        action="move",
        act=lambda ptz: ptz.continuous_move(
            pan=body.pan, tilt=body.tilt, zoom=body.zoom, timeout_s=body.timeout_s
        ),
    )
    return _state(ctx, camera_id, principal)


@router.post("/{camera_id}/ptz/stop", response_model=PtzStateOut, summary="Stop a camera moving")
def stop(camera_id: str, ctx: Ctx, principal: Pilot) -> PtzStateOut:
    service.command(ctx, camera_id, actor=principal.username, action="stop", act=lambda ptz: ptz.stop())
    return _state(ctx, camera_id, principal)


@router.get(
    "/{camera_id}/ptz/position",
    response_model=PositionOut,
    summary="Where a camera points and the ranges it can be sent to",
)
def where(camera_id: str, ctx: Ctx, _: Pilot) -> PositionOut:
    """Asks the camera (GetNode, GetStatus); moves nothing and takes no control."""
    return service.position(ctx, camera_id)


@router.post(
    "/{camera_id}/ptz/absolute",
    response_model=PtzStateOut,
    summary="Send a camera to a position (audited)",
)
def absolute(camera_id: str, body: AbsoluteMoveIn, ctx: Ctx, principal: Pilot) -> PtzStateOut:
    """An ONVIF AbsoluteMove within the ranges GET …/ptz/position gives; takes the control lease."""
    to = Position(pan=body.pan, tilt=body.tilt, zoom=body.zoom)
    service.absolute_move(ctx, camera_id, actor=principal.username, to=to)
    return _state(ctx, camera_id, principal)


@router.post(
    "/{camera_id}/ptz/centre",
    response_model=PtzStateOut,
    summary="Turn a camera so a point of its picture comes to the centre (audited)",
)
def centre(camera_id: str, body: CentreIn, ctx: Ctx, principal: Pilot) -> PtzStateOut:
    """Click-to-centre: the turn comes from the camera's field of view (analysis.ptz_fov_*) at its zoom
    now and is sent as an AbsoluteMove from where it points; takes the control lease."""
    service.centre(ctx, camera_id, actor=principal.username, x=body.x, y=body.y, aspect=body.aspect)
    return _state(ctx, camera_id, principal)


@router.get("/{camera_id}/ptz/presets", response_model=list[PresetOut], summary="A camera's presets")
def presets(camera_id: str, ctx: Ctx, _: Pilot) -> list[PresetOut]:
    found = service.ask(ctx, camera_id, lambda ptz: ptz.presets())
    return [PresetOut(token=p.token, name=p.name) for p in found]


@router.post(
    "/{camera_id}/ptz/presets",
    response_model=PresetOut,
    status_code=201,
    summary="Keep where a camera points now as a preset (audited)",
)
def save_preset(camera_id: str, body: PresetIn, ctx: Ctx, principal: Pilot) -> PresetOut:
    token = service.save_preset(ctx, camera_id, actor=principal.username, name=body.name)
    return PresetOut(token=token, name=body.name)


@router.post(
    "/{camera_id}/ptz/presets/{token}/goto", response_model=PtzStateOut, summary="Turn a camera to a preset"
)
def goto_preset(camera_id: str, token: Token, ctx: Ctx, principal: Pilot) -> PtzStateOut:
    service.command(
        ctx, camera_id, actor=principal.username, action="preset_goto", act=lambda ptz: ptz.goto_preset(token)
    )
    return _state(ctx, camera_id, principal)


@router.delete("/{camera_id}/ptz/presets/{token}", status_code=204, summary="Remove a preset (audited)")
def remove_preset(camera_id: str, token: Token, ctx: Ctx, principal: Pilot) -> Response:
    service.remove_preset(ctx, camera_id, actor=principal.username, token=token)
    return Response(status_code=204)


def _state(ctx: Ctx, camera_id: str, principal: Principal) -> PtzStateOut:
    with ctx.db.session() as session:
        return service.state(session, camera_id, you=principal.username)
