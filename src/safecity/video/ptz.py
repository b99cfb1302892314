"""Moving a camera over ONVIF PTZ: continuous move, stop, relative move, presets.

Velocities and translations are in ONVIF's generic spaces: pan and tilt from -1 to 1 (right and up
positive), zoom from -1 to 1 (in positive). A continuous move always carries a timeout, so a camera
stops by itself when the operator's release never arrives (a closed tab, a dropped network).

    ptz = PtzCamera.of(OnvifDevice("http://10.0.0.7/onvif/device_service", username="ptz", password="…"))
    ptz.continuous_move(pan=0.5, tilt=0.0, zoom=0.0, timeout_s=5)
    ptz.stop()
    token = ptz.set_preset("Gate 3")
    ptz.goto_preset(token)
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

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


def _number(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") or "0"


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
        if token and find(profile, "PTZConfiguration") is not None:
            return PtzEndpoint(service_url, token)
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
