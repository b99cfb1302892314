"""Moving cameras from the single view: whether a camera has PTZ, who controls it, commands, presets.

Whether a camera can move is asked of its ONVIF service once and kept on the camera (`ptz_found`,
at the address asked: a new address is asked again); the PTZ service's address and profile token are
kept in this process for `ENDPOINT_TTL_S`, so a command is one request to the camera.

Every command takes the camera's control lease (`PtzLease`, last one wins). Taking it from nobody,
from someone whose lease lapsed or from another operator starts a control session, which is
audited (`camera.ptz_control`, naming whom it was taken from); the nudges within a session renew
the lease without a row each. Saving and removing presets and sending the camera to a position
(`camera.ptz_absolute_move`, with the position) and turning it to a point of the picture
(`camera.ptz_centre`) are audited each time; a position the camera cannot reach is refused before
anyone takes control. No database
transaction is open while the camera is asked: a camera that takes seconds to answer holds no lock.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from safecity.audit import service as audit
from safecity.cameras.models import Camera
from safecity.cameras.ptz.models import LEASE_S, AxisRange, ControllerOut, PositionOut, PtzLease, PtzStateOut
from safecity.core.camera_config import PtzControl
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.db import get_or_raise, insert_many
from safecity.core.errors import Conflict
from safecity.video.onvif import OnvifDevice, OnvifError, OnvifFault
from safecity.video.ptz import (
    AbsoluteSpaces,
    Optics,
    Position,
    PtzCamera,
    PtzEndpoint,
    PtzUnsupported,
    Range,
    aim,
    turn_to_centre,
    zoom_fraction,
)

T = TypeVar("T")
ENDPOINT_TTL_S = 600.0
TIMEOUT_S = 3.0
"""Seconds a camera has to answer one PTZ request: an operator holding an arrow waits on it."""


class NoPtz(Conflict):
    """The camera cannot be moved from SafeCity: it has no PTZ, or its settings say not to."""

    code = "no_ptz"


@dataclass(frozen=True)
class Target:
    """What a command needs of a camera, read in a short transaction: its ONVIF address and credentials."""

    camera_id: str
    url: str
    username: str | None
    password: str | None
    setting: PtzControl

    @property
    def key(self) -> tuple[str, str, str]:
        secret = hashlib.sha256(f"{self.username}\0{self.password}".encode()).hexdigest()
        return self.camera_id, self.url, secret


_endpoints: dict[tuple[str, str, str], tuple[PtzEndpoint, float]] = {}
_endpoints_lock = threading.Lock()


def _camera(session: Session, camera_id: str) -> Camera:
    camera = session.get(Camera, camera_id, options=[undefer(Camera.password)])
    return camera if camera is not None else get_or_raise(session, Camera, camera_id, what="camera")


def target(session: Session, camera_id: str) -> Target:
    """Returns what a command to `camera_id` needs; NoPtz when it is known not to move."""
    camera = _camera(session, camera_id)
    state, detail = camera.ptz
    url = camera.onvif_url
    if state == "no" or url is None:
        raise NoPtz(
            f"camera {camera_id} has no PTZ: {detail}",
            hint="PTZ controls are for cameras that can pan, tilt or zoom; ask for a fresh look with "
            "GET /api/cameras/{id}/ptz?refresh=true if the camera was changed",
        )
    return Target(camera.id, url, camera.username, camera.password, camera.settings.ptz)


def record_discovery(session: Session, camera_id: str, *, url: str, found: bool, detail: str) -> None:
    """Keeps what the camera's ONVIF service said about PTZ, at the address it was asked."""
    camera = get_or_raise(session, Camera, camera_id, what="camera")
    camera.ptz_found, camera.ptz_checked_url, camera.ptz_detail = found, url, detail[:500]
    camera.ptz_checked_at = utcnow()


def connect(ctx: Context, target: Target, *, fresh: bool = False) -> PtzCamera:
    """Returns the camera's PTZ, asking its ONVIF service where it is unless this process knows."""
    device = OnvifDevice(target.url, username=target.username, password=target.password, timeout_s=TIMEOUT_S)
    with _endpoints_lock:
        known = _endpoints.get(target.key)
    if known is not None and not fresh and time.monotonic() - known[1] < ENDPOINT_TTL_S:
        return PtzCamera(device, known[0])
    try:
        ptz = PtzCamera.of(device)
    except PtzUnsupported as exc:
        device.close()
        with ctx.db.session() as session:
            record_discovery(session, target.camera_id, url=target.url, found=False, detail=exc.message)
        raise NoPtz(f"camera {target.camera_id} has no PTZ: {exc.message}", hint=exc.hint) from exc
    except OnvifError:
        device.close()
        raise
    with _endpoints_lock:
        _endpoints[target.key] = (ptz.endpoint, time.monotonic())
    if known is None or fresh:
        with ctx.db.session() as session:
            detail = f"PTZ service {ptz.endpoint.service_url}, profile {ptz.endpoint.profile_token}"
            record_discovery(session, target.camera_id, url=target.url, found=True, detail=detail)
    return ptz


def forget(target: Target) -> None:
    """Drops what this process knows of the camera's PTZ service (it is asked again next time)."""
    with _endpoints_lock:
        _endpoints.pop(target.key, None)


# --- the control lease ---------------------------------------------------------------------------------


def _live(lease: PtzLease | None, now: datetime) -> bool:
    return lease is not None and now - lease.renewed_at < timedelta(seconds=LEASE_S)


def take_control(session: Session, camera_id: str, *, actor: str, action: str) -> None:
    """Makes `actor` the camera's controller (last one wins); audits the start of a control session."""
    now = utcnow()
    insert_many(
        session,
        PtzLease.__table__,  # type: ignore[arg-type]
        [{"camera_id": camera_id, "holder": actor, "since": now, "renewed_at": now - timedelta(days=1)}],
        skip_conflicts_on=["camera_id"],
    )
    lease = session.scalars(select(PtzLease).where(PtzLease.camera_id == camera_id).with_for_update()).one()
    if lease.holder != actor or not _live(lease, now):
        taken_from = lease.holder if lease.holder != actor and _live(lease, now) else None
        lease.holder, lease.since = actor, now
        audit.record(
            session,
            actor=actor,
            action="camera.ptz_control",
            target=camera_id,
            detail={"first": action, "taken_from": taken_from},
        )
    lease.renewed_at = now


def controller(session: Session, camera_id: str, *, you: str) -> ControllerOut | None:
    """Returns who controls the camera now (a lease under 30 s old), or None."""
    lease = session.get(PtzLease, camera_id)
    if lease is None or not _live(lease, utcnow()):
        return None
    return ControllerOut(
        username=lease.holder, since=lease.since, renewed_at=lease.renewed_at, you=lease.holder == you
    )


def state(session: Session, camera_id: str, *, you: str) -> PtzStateOut:
    """Returns whether the camera can move, why, and who controls it."""
    camera = get_or_raise(session, Camera, camera_id, what="camera")
    found, detail = camera.ptz
    return PtzStateOut(
        camera_id=camera.id,
        ptz=found,
        setting=camera.settings.ptz,
        detail=detail,
        checked_at=camera.ptz_checked_at if camera.ptz_checked_url == camera.onvif_url else None,
        controller=controller(session, camera_id, you=you),
    )


def look(ctx: Context, camera_id: str, *, you: str, refresh: bool = False) -> PtzStateOut:
    """Returns the camera's PTZ state, asking the camera first when it was never asked (or `refresh`)."""
    with ctx.db.session() as session:
        camera = _camera(session, camera_id)
        url = camera.onvif_url
        ask = camera.settings.ptz is not PtzControl.off and (
            refresh or camera.ptz_found is None or camera.ptz_checked_url != url
        )
        wanted = (
            Target(camera.id, url, camera.username, camera.password, camera.settings.ptz)
            if ask and url is not None
            else None
        )
    if wanted is not None:
        try:
            connect(ctx, wanted, fresh=True).device.close()
        except NoPtz:
            pass  # recorded: the state below says so
        except OnvifError as exc:
            with ctx.db.session() as session:
                out = state(session, camera_id, you=you)
            return out.model_copy(update={"detail": f"the camera could not be asked: {exc.message}"})
    with ctx.db.session() as session:
        return state(session, camera_id, you=you)


def command(ctx: Context, camera_id: str, *, actor: str, action: str, act: Callable[[PtzCamera], T]) -> T:
    """Runs one PTZ command as `actor`: takes the lease (audited per session), then asks the camera."""
    with ctx.db.session() as session:
        wanted = target(session, camera_id)
        take_control(session, camera_id, actor=actor, action=action)
    return _run(ctx, wanted, act)


def ask(ctx: Context, camera_id: str, act: Callable[[PtzCamera], T]) -> T:
    """Asks the camera's PTZ something that moves nothing (its presets): no lease, no audit."""
    with ctx.db.session() as session:
        wanted = target(session, camera_id)
    return _run(ctx, wanted, act)


def _run(ctx: Context, wanted: Target, act: Callable[[PtzCamera], T]) -> T:
    ptz = connect(ctx, wanted)
    try:
        return act(ptz)
    except OnvifFault:
        forget(wanted)  # the camera may have been set up again (another profile): ask it afresh next time
        raise
    finally:
        ptz.device.close()


def _record(ctx: Context, camera_id: str, *, actor: str, action: str, detail: dict[str, Any]) -> None:
    """Audits a command the camera has carried out (in a transaction of its own: none is open while the
    camera is asked)."""
    with ctx.db.session() as session:
        audit.record(session, actor=actor, action=action, target=camera_id, detail=detail)


def save_preset(ctx: Context, camera_id: str, *, actor: str, name: str) -> str:
    """Keeps where the camera points now as preset `name`; audited. Returns the camera's token for it."""
    token = command(ctx, camera_id, actor=actor, action="preset_save", act=lambda ptz: ptz.set_preset(name))
    _record(
        ctx, camera_id, actor=actor, action="camera.ptz_preset_save", detail={"token": token, "name": name}
    )
    return token


def remove_preset(ctx: Context, camera_id: str, *, actor: str, token: str) -> None:
    """Removes the camera's preset `token`; audited."""
    command(ctx, camera_id, actor=actor, action="preset_remove", act=lambda ptz: ptz.remove_preset(token))
    _record(ctx, camera_id, actor=actor, action="camera.ptz_preset_remove", detail={"token": token})


def _axis(found: Range | None) -> AxisRange | None:
    return AxisRange(min=found.low, max=found.high) if found is not None else None


def _now_at(ptz: PtzCamera) -> tuple[AbsoluteSpaces, Position]:
    spaces = ptz.absolute_spaces()
    try:
        return spaces, ptz.position()
    except OnvifFault:
        return spaces, Position()  # a camera without GetStatus can still be sent somewhere


def position(ctx: Context, camera_id: str) -> PositionOut:
    """Returns where the camera points now and the ranges it can be sent to (moves nothing, no lease)."""
    spaces, now = ask(ctx, camera_id, _now_at)

    return PositionOut(
        camera_id=camera_id,
        absolute=spaces.any,
        detail="" if spaces.any else "the camera's PTZ node has no absolute position space",
        pan=now.pan,
        tilt=now.tilt,
        zoom=now.zoom,
        pan_range=_axis(spaces.pan),
        tilt_range=_axis(spaces.tilt),
        zoom_range=_axis(spaces.zoom),
        pan_tilt_space=spaces.pan_tilt_space,
        zoom_space=spaces.zoom_space,
    )


def absolute_move(ctx: Context, camera_id: str, *, actor: str, to: Position) -> None:
    """Sends the camera to the position `to` as `actor`; audited. Refused (409, 422) before the lease
    is taken when the camera has no absolute space for it or it is out of the camera's range."""
    spaces = ask(ctx, camera_id, lambda ptz: ptz.absolute_spaces())
    spaces.check(to)
    command(
        ctx, camera_id, actor=actor, action="absolute_move", act=lambda ptz: ptz.absolute_move(to, spaces)
    )
    detail = {"pan": to.pan, "tilt": to.tilt, "zoom": to.zoom}
    _record(ctx, camera_id, actor=actor, action="camera.ptz_absolute_move", detail=detail)


def optics(session: Session, camera_id: str) -> Optics:
    """Returns the camera's lens and turning ranges as its settings give them (analysis.ptz_*)."""
    settings = get_or_raise(session, Camera, camera_id, what="camera").settings
    return Optics(
        fov_wide_deg=settings.ptz_fov_wide_deg,
        fov_tele_deg=settings.ptz_fov_tele_deg,
        pan_span_deg=settings.ptz_pan_span_deg,
        tilt_span_deg=settings.ptz_tilt_span_deg,
    )


def centre(ctx: Context, camera_id: str, *, actor: str, x: float, y: float, aspect: float) -> Position:
    """Turns the camera so the picture's point (x, y) comes to the centre, as `actor`; audited.

    Works out the turn from the field of view at the camera's zoom now (GetStatus) and sends an
    AbsoluteMove from where it points, within its ranges; refused (409) before the lease is taken
    when the camera has no absolute pan/tilt space or does not say where it points. Returns where
    it was sent."""
    with ctx.db.session() as session:
        lens = optics(session, camera_id)
    spaces, now = ask(ctx, camera_id, _now_at)
    fov = lens.fov_at(zoom_fraction(now.zoom, spaces))
    pan_deg, tilt_deg = turn_to_centre(x, y, fov_deg=fov, aspect=aspect)
    to = aim(now, spaces, lens, pan_deg=pan_deg, tilt_deg=tilt_deg)
    command(ctx, camera_id, actor=actor, action="centre", act=lambda ptz: ptz.absolute_move(to, spaces))
    detail = {
        "x": x,
        "y": y,
        "fov_deg": round(fov, 3),
        "pan_deg": round(pan_deg, 3),
        "tilt_deg": round(tilt_deg, 3),
        "from": {"pan": now.pan, "tilt": now.tilt, "zoom": now.zoom},
        "to": {"pan": to.pan, "tilt": to.tilt},
    }
    _record(ctx, camera_id, actor=actor, action="camera.ptz_centre", detail=detail)
    return to
