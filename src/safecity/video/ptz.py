"""Moving a camera over ONVIF PTZ: continuous move, stop, relative move, absolute move, presets.

Velocities and translations are in ONVIF's generic spaces: pan and tilt from -1 to 1 (right and up
positive), zoom from -1 to 1 (in positive). A continuous move always carries a timeout, so a camera
stops by itself when the operator's release never arrives (a closed tab, a dropped network).

An absolute move sends the camera to a position in its own absolute space (GetNode's
AbsolutePanTiltPositionSpace and AbsoluteZoomPositionSpace, the generic one where it offers several),
narrowed by the limits of the profile's PTZ configuration; a position outside them is refused here,
before the camera is asked, and a camera whose node has no absolute space cannot be sent anywhere.

    ptz = PtzCamera.of(OnvifDevice("http://10.0.0.7/onvif/device_service", username="ptz", password="…"))
    ptz.continuous_move(pan=0.5, tilt=0.0, zoom=0.0, timeout_s=5)
    ptz.stop()
    token = ptz.set_preset("Gate 3")
    ptz.goto_preset(token)
    spaces = ptz.absolute_spaces()        # spaces.pan == Range(-1.0, 1.0)
    ptz.absolute_move(Position(pan=0.25, tilt=-0.1, zoom=0.5), spaces)

Click-to-centre turns a point of the picture into degrees (`turn_to_centre`, a pinhole camera whose
field of view narrows with the zoom) and the degrees into a position in the camera's space (`aim`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape, quoteattr

from safecity.core.errors import InvalidInput
from safecity.video.onvif import (
    MEDIA,
    PTZ,
    OnvifDevice,
    OnvifError,
    OnvifFault,
    attribute,
    children,
    find,
    local_name,
    text_of,
)


class PtzUnsupported(OnvifError):
    """The camera answers ONVIF but offers no PTZ (no PTZ service, or no profile with a PTZ configuration)."""

    status_code = 409
    code = "ptz_unsupported"


class PresetNotFound(OnvifError):
    """The camera has no preset with the token given."""

    status_code = 404
    code = "preset_not_found"


class AbsoluteUnsupported(OnvifError):
    """The camera moves, but cannot be sent to a position (its PTZ node has no absolute space for it)."""

    status_code = 409
    code = "no_absolute_ptz"


class PositionOutOfRange(InvalidInput):
    """A position outside what the camera's absolute space and its configuration's limits allow."""

    code = "position_out_of_range"


GENERIC_PAN_TILT = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"
GENERIC_ZOOM = "http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"
DEGREES_PAN_TILT = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/SphericalPositionSpaceDegrees"


@dataclass(frozen=True)
class Range:
    """The values an axis may take, both ends included."""

    low: float
    high: float

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int | float) and self.low <= value <= self.high

    def narrowed(self, limit: Range | None) -> Range:
        """This range within `limit` (a configuration's limits), or itself where they do not overlap."""
        if limit is None or limit.high < self.low or limit.low > self.high:
            return self
        return Range(max(self.low, limit.low), min(self.high, limit.high))


@dataclass(frozen=True)
class Position:
    """Where a camera points, in its absolute spaces; None: that axis is not given (or not known)."""

    pan: float | None = None
    tilt: float | None = None
    zoom: float | None = None


@dataclass(frozen=True)
class AbsoluteSpaces:
    """Where a camera can be sent: its absolute spaces' URIs and ranges (None: no such space)."""

    pan_tilt_space: str | None = None
    pan: Range | None = None
    tilt: Range | None = None
    zoom_space: str | None = None
    zoom: Range | None = None
    degrees: tuple[Range, Range] | None = None
    """The pan and tilt ranges of the node's degrees space, where it lists one: how far the camera turns."""

    @property
    def any(self) -> bool:
        """Whether the camera can be sent anywhere at all."""
        return self.pan_tilt_space is not None or self.zoom_space is not None

    def check(self, position: Position) -> None:
        """Raises AbsoluteUnsupported or PositionOutOfRange unless the camera can be sent to `position`."""
        wants_pan_tilt = position.pan is not None or position.tilt is not None
        if wants_pan_tilt and (self.pan_tilt_space is None or self.pan is None or self.tilt is None):
            raise AbsoluteUnsupported(
                "this camera cannot be sent to a pan and tilt position (no absolute pan/tilt space)",
                hint="use the arrows or a preset to turn it",
            )
        if position.zoom is not None and (self.zoom_space is None or self.zoom is None):
            raise AbsoluteUnsupported(
                "this camera cannot be sent to a zoom position (no absolute zoom space)",
                hint="use zoom + and − to zoom it",
            )
        for axis, value, allowed in (
            ("pan", position.pan, self.pan),
            ("tilt", position.tilt, self.tilt),
            ("zoom", position.zoom, self.zoom),
        ):
            if value is not None and allowed is not None and value not in allowed:
                raise PositionOutOfRange(
                    f"{axis} {_number(value)} is outside this camera's range "
                    f"{_number(allowed.low)} to {_number(allowed.high)}",
                    hint=f"give a {axis} from {_number(allowed.low)} to {_number(allowed.high)}",
                )


class PositionUnknown(OnvifError):
    """The camera does not say where it points (GetStatus), so a turn from there cannot be worked out."""

    status_code = 409
    code = "ptz_position_unknown"


@dataclass(frozen=True)
class Optics:
    """What click-to-centre needs that ONVIF does not report: the lens's horizontal field of view at
    its widest and longest zoom, and the degrees the camera's pan and tilt ranges turn through (None:
    from its degrees space where its node lists one, else 360° and 180°)."""

    fov_wide_deg: float
    fov_tele_deg: float
    pan_span_deg: float | None = None
    tilt_span_deg: float | None = None

    def fov_at(self, zoom: float) -> float:
        """The horizontal field of view at `zoom`, 0 (widest) to 1 (longest), the focal length linear."""
        zoom = min(1.0, max(0.0, zoom))
        wide, tele = (math.tan(math.radians(deg) / 2) for deg in (self.fov_wide_deg, self.fov_tele_deg))
        focal = (1 - zoom) / wide + zoom / tele
        return math.degrees(2 * math.atan(1 / focal))


def turn_to_centre(x: float, y: float, *, fov_deg: float, aspect: float) -> tuple[float, float]:
    """Degrees to pan (right positive) and tilt (up positive) that bring the picture's point (x, y) —
    fractions of its width and height from the top left — to its centre: a pinhole camera whose
    picture is `aspect` (width / height) and `fov_deg` wide."""
    half = math.tan(math.radians(fov_deg) / 2)
    right, up = (2 * x - 1) * half, (1 - 2 * y) * half / aspect
    return math.degrees(math.atan(right)), math.degrees(math.atan2(up, math.hypot(1.0, right)))


def zoom_fraction(zoom: float | None, spaces: AbsoluteSpaces) -> float:
    """How far `zoom` is from the widest (0) to the longest (1); a camera that does not say: the widest."""
    if zoom is None:
        return 0.0
    if spaces.zoom_space not in (None, GENERIC_ZOOM) and spaces.zoom is not None:
        low, high = spaces.zoom.low, spaces.zoom.high
        return (zoom - low) / (high - low) if high > low else 0.0
    return min(1.0, max(0.0, zoom))  # the generic zoom space is 0 (wide) to 1 (tele)


def aim(
    now: Position, spaces: AbsoluteSpaces, optics: Optics, *, pan_deg: float, tilt_deg: float
) -> Position:
    """The pan and tilt `pan_deg` right and `tilt_deg` up of `now`, in the camera's absolute space and
    within its ranges: clamped, except a pan that turns all the way round, which wraps."""
    if spaces.pan_tilt_space is None or spaces.pan is None or spaces.tilt is None:
        raise AbsoluteUnsupported(
            "this camera cannot be turned to a point (no absolute pan/tilt space)",
            hint="use the arrows to turn it",
        )
    if now.pan is None or now.tilt is None:
        raise PositionUnknown(
            "this camera does not say where it points (GetStatus), so it cannot be turned to a point",
            hint="use the arrows to turn it",
        )
    in_degrees = spaces.pan_tilt_space == DEGREES_PAN_TILT
    node_pan, node_tilt = (
        (Range(-180.0, 180.0), Range(-90.0, 90.0)) if in_degrees else (Range(-1.0, 1.0), Range(-1.0, 1.0))
    )
    pan_span = 360.0 if spaces.degrees is None else spaces.degrees[0].high - spaces.degrees[0].low
    tilt_span = 180.0 if spaces.degrees is None else spaces.degrees[1].high - spaces.degrees[1].low
    pan_span, tilt_span = optics.pan_span_deg or pan_span, optics.tilt_span_deg or tilt_span
    pan_per_deg = 1.0 if in_degrees else (node_pan.high - node_pan.low) / pan_span
    tilt_per_deg = 1.0 if in_degrees else (node_tilt.high - node_tilt.low) / tilt_span
    pan = now.pan + pan_deg * pan_per_deg
    width = spaces.pan.high - spaces.pan.low
    round_and_round = pan_span >= 360 and width >= node_pan.high - node_pan.low
    if round_and_round and pan not in spaces.pan:
        pan = spaces.pan.low + (pan - spaces.pan.low) % width
    pan = min(spaces.pan.high, max(spaces.pan.low, pan))
    tilt = min(spaces.tilt.high, max(spaces.tilt.low, now.tilt + tilt_deg * tilt_per_deg))
    return Position(pan=pan, tilt=tilt)


def _range(holder: Element | None, name: str) -> Range | None:
    """The `XRange` or `YRange` (Min, Max) below `holder`, if it has a readable one."""
    found = find(holder, name) if holder is not None else None
    low, high = (text_of(found, "Min"), text_of(found, "Max")) if found is not None else (None, None)
    try:
        made = Range(float(low or ""), float(high or ""))
    except ValueError:
        return None
    return made if made.low <= made.high else None


def _pick_space(node: Element, name: str) -> Element | None:
    """The node's absolute space `name`: the generic one where it offers several, else its first."""
    spaces = children(node, name)
    generic = next((s for s in spaces if text_of(s, "URI") in (GENERIC_PAN_TILT, GENERIC_ZOOM)), None)
    return generic if generic is not None else (spaces[0] if spaces else None)


def _degrees(node: Element) -> tuple[Range, Range] | None:
    """The pan and tilt ranges of the node's spherical degrees space, if it lists one."""
    for space in children(node, "AbsolutePanTiltPositionSpace"):
        if text_of(space, "URI") == DEGREES_PAN_TILT:
            pan, tilt = _range(space, "XRange"), _range(space, "YRange")
            if pan is not None and tilt is not None and pan.high > pan.low and tilt.high > tilt.low:
                return pan, tilt
    return None


def _limits(configuration: Element | None, name: str) -> tuple[str | None, Range | None, Range | None]:
    """A PTZ configuration's `PanTiltLimits` or `ZoomLimits`: its space's URI, X and Y ranges."""
    holder = find(configuration, name) if configuration is not None else None
    if holder is None:
        return None, None, None
    return text_of(holder, "URI"), _range(holder, "XRange"), _range(holder, "YRange")


@dataclass(frozen=True)
class Preset:
    """A position the camera keeps under a token, with the name people gave it."""

    token: str
    name: str


@dataclass(frozen=True)
class PtzEndpoint:
    """Where a camera's PTZ is driven: its PTZ service address and the media profile that names it."""

    service_url: str
    profile_token: str
    node_token: str | None = None
    """The PTZ node of the profile's configuration: where its spaces are described."""
    pan_tilt_limits: tuple[str | None, Range | None, Range | None] = (None, None, None)
    zoom_limits: tuple[str | None, Range | None, Range | None] = (None, None, None)
    """The configuration's limits (space URI, X, Y), which narrow the node's absolute spaces."""


def _number(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") or "0"


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _vector(pan: float, tilt: float, zoom: float) -> str:
    return f'<tt:PanTilt x="{_number(pan)}" y="{_number(tilt)}"/><tt:Zoom x="{_number(zoom)}"/>'


def discover(device: OnvifDevice) -> PtzEndpoint:
    """Finds the camera's PTZ service and the first media profile with a PTZ configuration."""
    services = device.services()
    service_url = services.get(PTZ)
    if not service_url:
        raise PtzUnsupported(
            f"camera at {device.url} offers no PTZ service",
            hint="it is a fixed camera; PTZ controls are shown only for cameras that can move",
        )
    media_url = services.get(MEDIA, device.url)
    profiles = device.call(media_url, MEDIA, "<trt:GetProfiles/>")
    for profile in children(profiles, "Profiles"):
        token = attribute(profile, "token")
        configuration = find(profile, "PTZConfiguration")
        if token and configuration is not None:
            return PtzEndpoint(
                service_url,
                token,
                node_token=text_of(configuration, "NodeToken") or None,
                pan_tilt_limits=_limits(configuration, "PanTiltLimits"),
                zoom_limits=_limits(configuration, "ZoomLimits"),
            )
    raise PtzUnsupported(
        f"camera at {device.url} has a PTZ service but no media profile with a PTZ configuration",
        hint="give one of the camera's media profiles a PTZ configuration in its own web page",
    )


@dataclass
class PtzCamera:
    """One camera's PTZ, driven through its PTZ service with one media profile."""

    device: OnvifDevice
    endpoint: PtzEndpoint

    @classmethod
    def of(cls, device: OnvifDevice) -> PtzCamera:
        """Finds the camera's PTZ service and profile and returns its PTZ (PtzUnsupported: it has none)."""
        return cls(device, discover(device))

    def _call(self, body: str) -> None:
        self.device.call(self.endpoint.service_url, PTZ, body)

    @property
    def _profile(self) -> str:
        return f"<tptz:ProfileToken>{escape(self.endpoint.profile_token)}</tptz:ProfileToken>"

    def continuous_move(self, *, pan: float, tilt: float, zoom: float, timeout_s: float) -> None:
        """Starts moving at these velocities; the camera stops by itself after `timeout_s`."""
        self._call(
            f"<tptz:ContinuousMove>{self._profile}<tptz:Velocity>{_vector(pan, tilt, zoom)}</tptz:Velocity>"
            f"<tptz:Timeout>PT{_number(timeout_s)}S</tptz:Timeout></tptz:ContinuousMove>"
        )

    def relative_move(self, *, pan: float, tilt: float, zoom: float) -> None:
        """Moves by this much from where the camera is (generic translation space)."""
        self._call(
            f"<tptz:RelativeMove>{self._profile}<tptz:Translation>{_vector(pan, tilt, zoom)}"
            "</tptz:Translation></tptz:RelativeMove>"
        )

    def absolute_spaces(self) -> AbsoluteSpaces:
        """Where the camera can be sent: its node's absolute spaces within its configuration's limits."""
        if self.endpoint.node_token:
            answer = self.device.call(
                self.endpoint.service_url,
                PTZ,
                f"<tptz:GetNode><tptz:NodeToken>{escape(self.endpoint.node_token)}</tptz:NodeToken></tptz:GetNode>",
            )
        else:
            answer = self.device.call(self.endpoint.service_url, PTZ, "<tptz:GetNodes/>")
        node = find(answer, "PTZNode")
        if node is None:
            raise OnvifError(f"camera at {self.device.url} described no PTZ node")
        pan_tilt, zoom = (
            _pick_space(node, "AbsolutePanTiltPositionSpace"),
            _pick_space(node, "AbsoluteZoomPositionSpace"),
        )
        spaces = AbsoluteSpaces()
        if pan_tilt is not None:
            uri = text_of(pan_tilt, "URI") or GENERIC_PAN_TILT
            limit_uri, x_limit, y_limit = self.endpoint.pan_tilt_limits
            applies = limit_uri in (None, "", uri)
            pan, tilt = _range(pan_tilt, "XRange"), _range(pan_tilt, "YRange")
            if pan is not None and tilt is not None:
                spaces = AbsoluteSpaces(
                    pan_tilt_space=uri,
                    pan=pan.narrowed(x_limit if applies else None),
                    tilt=tilt.narrowed(y_limit if applies else None),
                )
        spaces = AbsoluteSpaces(spaces.pan_tilt_space, spaces.pan, spaces.tilt, degrees=_degrees(node))
        if zoom is not None:
            uri = text_of(zoom, "URI") or GENERIC_ZOOM
            limit_uri, z_limit, _ = self.endpoint.zoom_limits
            zoom_range = _range(zoom, "XRange")
            if zoom_range is not None:
                narrowed = zoom_range.narrowed(z_limit if limit_uri in (None, "", uri) else None)
                spaces = AbsoluteSpaces(
                    spaces.pan_tilt_space,
                    spaces.pan,
                    spaces.tilt,
                    zoom_space=uri,
                    zoom=narrowed,
                    degrees=spaces.degrees,
                )
        return spaces

    def position(self) -> Position:
        """Where the camera points now (GetStatus); an axis the camera does not report is None."""
        answer = self.device.call(
            self.endpoint.service_url, PTZ, f"<tptz:GetStatus>{self._profile}</tptz:GetStatus>"
        )
        where = find(answer, "Position")
        pan_tilt = find(where, "PanTilt") if where is not None else None
        zoom = find(where, "Zoom") if where is not None else None
        return Position(
            pan=_float(attribute(pan_tilt, "x")),
            tilt=_float(attribute(pan_tilt, "y")),
            zoom=_float(attribute(zoom, "x")),
        )

    def absolute_move(self, position: Position, spaces: AbsoluteSpaces | None = None) -> None:
        """Sends the camera to `position` (axes left None stay); refused here when it cannot go there."""
        if position.pan is None and position.tilt is None and position.zoom is None:
            raise InvalidInput("nothing to move to: give pan and tilt, zoom, or all three")
        if (position.pan is None) != (position.tilt is None):
            raise InvalidInput("pan and tilt go together: give both, or neither to move the zoom only")
        spaces = spaces if spaces is not None else self.absolute_spaces()
        spaces.check(position)
        parts = ""
        if position.pan is not None and position.tilt is not None:
            parts += (
                f'<tt:PanTilt x="{_number(position.pan)}" y="{_number(position.tilt)}" '
                f"space={quoteattr(spaces.pan_tilt_space or GENERIC_PAN_TILT)}/>"
            )
        if position.zoom is not None:
            space = quoteattr(spaces.zoom_space or GENERIC_ZOOM)
            parts += f'<tt:Zoom x="{_number(position.zoom)}" space={space}/>'
        self._call(
            f"<tptz:AbsoluteMove>{self._profile}<tptz:Position>{parts}</tptz:Position></tptz:AbsoluteMove>"
        )

    def stop(self) -> None:
        """Stops panning, tilting and zooming."""
        self._call(
            f"<tptz:Stop>{self._profile}<tptz:PanTilt>true</tptz:PanTilt><tptz:Zoom>true</tptz:Zoom></tptz:Stop>"
        )

    def presets(self) -> list[Preset]:
        """The camera's presets, in the camera's order."""
        answer = self.device.call(
            self.endpoint.service_url, PTZ, f"<tptz:GetPresets>{self._profile}</tptz:GetPresets>"
        )
        found = []
        for preset in answer:
            token = attribute(preset, "token")
            if local_name(preset.tag) == "Preset" and token:
                found.append(Preset(token, text_of(preset, "Name") or token))
        return found

    def goto_preset(self, token: str) -> None:
        """Moves the camera to the preset `token` (PresetNotFound: the camera has none such)."""
        self._with_token(
            token,
            f"<tptz:GotoPreset>{self._profile}<tptz:PresetToken>{escape(token)}</tptz:PresetToken>"
            "</tptz:GotoPreset>",
        )

    def set_preset(self, name: str, token: str | None = None) -> str:
        """Keeps where the camera points now as a preset `name` (replacing `token`'s); returns its token."""
        replace = f"<tptz:PresetToken>{escape(token)}</tptz:PresetToken>" if token else ""
        answer = self.device.call(
            self.endpoint.service_url,
            PTZ,
            f"<tptz:SetPreset>{self._profile}<tptz:PresetName>{escape(name)}</tptz:PresetName>{replace}"
            "</tptz:SetPreset>",
        )
        made = text_of(answer, "PresetToken")
        if not made:
            raise OnvifError(f"camera at {self.device.url} saved preset {quoteattr(name)} but sent no token")
        return made

    def remove_preset(self, token: str) -> None:
        """Forgets the preset `token` (PresetNotFound: the camera has none such)."""
        self._with_token(
            token,
            f"<tptz:RemovePreset>{self._profile}<tptz:PresetToken>{escape(token)}</tptz:PresetToken>"
            "</tptz:RemovePreset>",
        )

    def _with_token(self, token: str, body: str) -> None:
        try:
            self._call(body)
        except OnvifFault as exc:
            if any(code.split(":")[-1] == "NoToken" for code in exc.codes):
                raise PresetNotFound(
                    f"the camera has no preset {token!r}",
                    hint="list the presets again: another operator may have removed it",
                ) from exc
            raise
