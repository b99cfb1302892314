"""A simulated ONVIF PTZ camera: an HTTP server on loopback answering the SOAP calls SafeCity makes.

The demo gives one synthetic camera this device, whose pan, tilt and zoom move the synthetic
picture's crop (`view`), so an operator can try the controls; the tests start one per test to check
what SafeCity sends. It keeps every request it received (`received`), checks WS-Security password
digests as a camera does (against its own clock, which may be set off) or asks for HTTP digest
authentication instead, and can be told to answer a fault instead (`faults`), to have no PTZ at all,
no absolute position space (`absolute=False`), configuration limits narrower than its spaces
(`pan_tilt_limits`, `zoom_limits`), or to be an ONVIF 1.0 camera without GetServices.

    camera = SimulatedPtzCamera(username="ptz", password="secret")
    camera.url                         # http://127.0.0.1:<port>/onvif/device_service
    camera.operations()                # ["GetServices", "GetProfiles", "ContinuousMove", "Stop"]
    camera.view()                      # (pan, tilt, zoom) where it points now
    camera.close()
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape, quoteattr

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from safecity.video.onvif import DEVICE, MEDIA, PTZ, SCHEMA, SOAP, attribute, find, local_name, text_of
from safecity.video.ptz import GENERIC_PAN_TILT, GENERIC_ZOOM

_simulated: dict[str, SimulatedPtzCamera] = {}
"""The simulated cameras of this process by the camera id whose synthetic picture they steer."""

PAN_SPEED = 0.5
"""Generic units a second at full velocity: a full pan (-1 to 1) takes 4 s."""
_MAX_SKEW_S = 10.0
_REALM = "simulated-ptz"


@dataclass
class Received:
    """One request the camera got: its operation and the values SafeCity sent."""

    operation: str
    values: dict[str, str] = field(default_factory=dict)
    user: str | None = None


def _values(request: Element) -> dict[str, str]:
    """The operation's arguments as flat names: `Velocity.PanTilt.x`, `PresetToken`, `Timeout`."""
    found: dict[str, str] = {}

    def walk(node: Element, path: str) -> None:
        for name, value in node.attrib.items():
            found[f"{path}.{local_name(name)}" if path else local_name(name)] = value
        if len(node) == 0 and node.text and node.text.strip():
            found[path] = node.text.strip()
        for child in node:
            walk(child, f"{path}.{local_name(child.tag)}" if path else local_name(child.tag))

    walk(request, "")
    return found


def _range(axis: str, low: float, high: float) -> str:
    return f"<tt:{axis}Range><tt:Min>{low}</tt:Min><tt:Max>{high}</tt:Max></tt:{axis}Range>"


def _answer(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{SOAP}" xmlns:tds="{DEVICE}" '
        f'xmlns:trt="{MEDIA}" xmlns:tptz="{PTZ}" xmlns:tt="{SCHEMA}" '
        'xmlns:ter="http://www.onvif.org/ver10/error">'
        f"<env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


def _fault(code: str, subcode: str, reason: str) -> bytes:
    return _answer(
        f"<env:Fault><env:Code><env:Value>{code}</env:Value><env:Subcode><env:Value>{subcode}</env:Value>"
        f'</env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">{escape(reason)}</env:Text>'
        "</env:Reason></env:Fault>"
    )


class SimulatedPtzCamera:
    """An ONVIF device, media and PTZ service on one loopback port (see the module's description)."""

    def __init__(
        self,
        *,
        ptz: bool = True,
        username: str | None = None,
        password: str | None = None,
        clock_offset_s: float = 0.0,
        legacy: bool = False,
        http_digest: bool = False,
        absolute: bool = True,
        pan_tilt_limits: tuple[float, float, float, float] | None = None,
        zoom_limits: tuple[float, float] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.ptz, self.username, self.password = ptz, username, password
        self.clock_offset_s, self.legacy = clock_offset_s, legacy
        self.http_digest = http_digest
        """Ask for HTTP digest authentication instead of checking WS-Security tokens (as some cameras do)."""
        self.absolute = absolute
        """Whether its node offers absolute spaces (generic, and degrees listed first, as many cameras do)."""
        self.pan_tilt_limits, self.zoom_limits = pan_tilt_limits, zoom_limits
        """Its PTZ configuration's limits: (pan low, pan high, tilt low, tilt high) and (zoom low, high)."""
        self.nonce = secrets.token_hex(16)
        self.faults: dict[str, tuple[str, str]] = {}
        """Operation → (subcode, reason) to answer as a SOAP fault instead."""
        self.received: list[Received] = []
        self.presets: dict[str, tuple[str, tuple[float, float, float]]] = {
            "1": ("Home", (0.0, 0.0, 0.0)),
        }
        self._lock = threading.Lock()
        self._position = (0.0, 0.0, 0.0)
        self._velocity = (0.0, 0.0, 0.0)
        self._moving_until = 0.0
        self._moved_at = time.monotonic()
        self._next_token = 2
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = min(int(self.headers.get("Content-Length") or 0), 256 * 1024)
                body = self.rfile.read(size)
                if camera.http_digest and not camera.digest_valid(
                    self.headers.get("Authorization", ""), self.path
                ):
                    self.send_response(401)
                    self.send_header(
                        "WWW-Authenticate", f'Digest realm="{_REALM}", qop="auth", nonce="{camera.nonce}"'
                    )
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status, reply = camera.handle(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://{host}:{self.server.server_address[1]}"
        self.url = f"{self.base}/onvif/device_service"
        self._thread = threading.Thread(target=self.server.serve_forever, name="simulated-ptz", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stops answering."""
        self.server.shutdown()
        self.server.server_close()

    def operations(self) -> list[str]:
        """The operations received so far, in order."""
        with self._lock:
            return [r.operation for r in self.received]

    def last(self, operation: str) -> Received | None:
        """The last request of `operation`, if any."""
        with self._lock:
            return next((r for r in reversed(self.received) if r.operation == operation), None)

    # --- where it points ---------------------------------------------------------------------------

    def _advance(self) -> None:
        now = time.monotonic()
        until = min(now, self._moving_until)
        dt = max(0.0, until - self._moved_at)
        pan, tilt, zoom = self._position
        vp, vt, vz = self._velocity
        self._position = (
            max(-1.0, min(1.0, pan + vp * PAN_SPEED * dt)),
            max(-1.0, min(1.0, tilt + vt * PAN_SPEED * dt)),
            max(0.0, min(1.0, zoom + vz * PAN_SPEED * dt)),
        )
        self._moved_at = now

    def view(self) -> tuple[float, float, float]:
        """Where the camera points now: pan and tilt from -1 to 1, zoom from 0 (wide) to 1."""
        with self._lock:
            self._advance()
            return self._position

    def _move(self, velocity: tuple[float, float, float], seconds: float) -> None:
        self._advance()
        self._velocity = velocity
        self._moving_until = time.monotonic() + seconds

    # --- the SOAP side -----------------------------------------------------------------------------

    def handle(self, body: bytes) -> tuple[int, bytes]:
        """Answers one SOAP request: (HTTP status, reply)."""
        try:
            root = ElementTree.fromstring(body)
        except (ElementTree.ParseError, DefusedXmlException):
            return 400, _fault("env:Sender", "ter:WellFormed", "the request is not well-formed XML")
        soap_body = find(root, "Body")
        if soap_body is None or len(soap_body) == 0:
            return 400, _fault("env:Sender", "ter:WellFormed", "no SOAP body")
        request = soap_body[0]
        operation = local_name(request.tag)
        user = text_of(root, "Username")
        with self._lock:
            self.received.append(Received(operation, _values(request), user))
        secured = self.username and not self.http_digest
        if operation != "GetSystemDateAndTime" and secured and not self._authorised(root):
            return 400, _fault("env:Sender", "ter:NotAuthorized", "Sender not Authorized")
        if operation in self.faults:
            subcode, reason = self.faults[operation]
            return 500, _fault("env:Receiver", subcode, reason)
        answer = getattr(self, f"_op_{operation}", None)
        if answer is None or (operation == "GetServices" and self.legacy):
            return 400, _fault("env:Receiver", "ter:ActionNotSupported", f"{operation} is not supported")
        with self._lock:
            return answer(request)

    def _authorised(self, root: Element) -> bool:
        token = find(root, "UsernameToken")
        if token is None:
            return False
        nonce, created = text_of(token, "Nonce") or "", text_of(token, "Created") or ""
        try:
            stamp = datetime.strptime(created[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
            raw = base64.b64decode(nonce)
        except ValueError:
            return False
        if abs(stamp - (time.time() + self.clock_offset_s)) > _MAX_SKEW_S:
            return False
        expected = base64.b64encode(
            hashlib.sha1(raw + created.encode() + (self.password or "").encode()).digest()
        ).decode()
        return text_of(token, "Username") == self.username and text_of(token, "Password") == expected

    def digest_valid(self, header: str, uri: str) -> bool:
        """Whether an Authorization header answers this camera's HTTP digest challenge (RFC 7616, MD5)."""
        scheme, _, rest = header.partition(" ")
        if scheme.lower() != "digest":
            return False
        fields = {k.strip(): v.strip().strip('"') for k, _, v in (p.partition("=") for p in rest.split(","))}

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        known, asked = md5(f"{self.username}:{_REALM}:{self.password}"), md5(f"POST:{uri}")
        expected = md5(f"{known}:{self.nonce}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:auth:{asked}")
        return fields.get("username") == self.username and fields.get("response") == expected

    def _op_GetSystemDateAndTime(self, _: Element) -> tuple[int, bytes]:
        t = datetime.fromtimestamp(time.time() + self.clock_offset_s, UTC)
        return 200, _answer(
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:UTCDateTime>"
            f"<tt:Time><tt:Hour>{t.hour}</tt:Hour><tt:Minute>{t.minute}</tt:Minute>"
            f"<tt:Second>{t.second}</tt:Second></tt:Time><tt:Date><tt:Year>{t.year}</tt:Year>"
            f"<tt:Month>{t.month}</tt:Month><tt:Day>{t.day}</tt:Day></tt:Date></tt:UTCDateTime>"
            "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
        )

    def _op_GetServices(self, _: Element) -> tuple[int, bytes]:
        services = [(DEVICE, self.url), (MEDIA, f"{self.base}/onvif/media_service")]
        if self.ptz:
            services.append((PTZ, f"{self.base}/onvif/ptz_service"))
        listed = "".join(
            f"<tds:Service><tds:Namespace>{ns}</tds:Namespace><tds:XAddr>{url}</tds:XAddr>"
            "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>"
            for ns, url in services
        )
        return 200, _answer(f"<tds:GetServicesResponse>{listed}</tds:GetServicesResponse>")

    def _op_GetCapabilities(self, _: Element) -> tuple[int, bytes]:
        ptz = f"<tt:PTZ><tt:XAddr>{self.base}/onvif/ptz_service</tt:XAddr></tt:PTZ>" if self.ptz else ""
        return 200, _answer(
            "<tds:GetCapabilitiesResponse><tds:Capabilities>"
            f"<tt:Device><tt:XAddr>{self.url}</tt:XAddr></tt:Device>"
            f"<tt:Media><tt:XAddr>{self.base}/onvif/media_service</tt:XAddr></tt:Media>{ptz}"
            "</tds:Capabilities></tds:GetCapabilitiesResponse>"
        )

    def _op_GetProfiles(self, _: Element) -> tuple[int, bytes]:
        limits = ""
        if self.pan_tilt_limits is not None:
            x0, x1, y0, y1 = self.pan_tilt_limits
            limits += (
                f"<tt:PanTiltLimits><tt:Range><tt:URI>{GENERIC_PAN_TILT}</tt:URI>{_range('X', x0, x1)}"
                f"{_range('Y', y0, y1)}</tt:Range></tt:PanTiltLimits>"
            )
        if self.zoom_limits is not None:
            limits += (
                f"<tt:ZoomLimits><tt:Range><tt:URI>{GENERIC_ZOOM}</tt:URI>{_range('X', *self.zoom_limits)}"
                "</tt:Range></tt:ZoomLimits>"
            )
        ptz = (
            '<tt:PTZConfiguration token="ptz0"><tt:Name>PTZ</tt:Name><tt:NodeToken>node0</tt:NodeToken>'
            f"{limits}</tt:PTZConfiguration>"
            if self.ptz
            else ""
        )
        return 200, _answer(
            '<trt:GetProfilesResponse><trt:Profiles token="sub" fixed="true"><tt:Name>Sub</tt:Name>'
            '</trt:Profiles><trt:Profiles token="main" fixed="true"><tt:Name>Main</tt:Name>'
            f"{ptz}</trt:Profiles></trt:GetProfilesResponse>"
        )

    def _profile_ok(self, request: Element) -> bool:
        return self.ptz and text_of(request, "ProfileToken") == "main"

    def _bad_profile(self) -> tuple[int, bytes]:
        return 400, _fault("env:Sender", "ter:NoProfile", "no PTZ on that profile")

    @staticmethod
    def _vector(request: Element, name: str) -> tuple[float, float, float]:
        holder = find(request, name)
        if holder is None:
            return 0.0, 0.0, 0.0
        pan_tilt, zoom = find(holder, "PanTilt"), find(holder, "Zoom")
        return (
            float(attribute(pan_tilt, "x") or 0),
            float(attribute(pan_tilt, "y") or 0),
            float(attribute(zoom, "x") or 0),
        )

    def _op_ContinuousMove(self, request: Element) -> tuple[int, bytes]:
        if not self._profile_ok(request):
            return self._bad_profile()
        timeout = text_of(request, "Timeout") or "PT10S"
        try:
            seconds = float(timeout.removeprefix("PT").removesuffix("S"))
        except ValueError:
            return 400, _fault("env:Sender", "ter:InvalidArgVal", f"timeout {timeout} is not understood")
        self._move(self._vector(request, "Velocity"), seconds)
        return 200, _answer("<tptz:ContinuousMoveResponse/>")

    def _op_Stop(self, request: Element) -> tuple[int, bytes]:
        if not self._profile_ok(request):
            return self._bad_profile()
        self._move((0.0, 0.0, 0.0), 0.0)
        return 200, _answer("<tptz:StopResponse/>")

    def _op_RelativeMove(self, request: Element) -> tuple[int, bytes]:
        if not self._profile_ok(request):
            return self._bad_profile()
        self._advance()
        dp, dt, dz = self._vector(request, "Translation")
        pan, tilt, zoom = self._position
        self._position = (
            max(-1.0, min(1.0, pan + dp)),
            max(-1.0, min(1.0, tilt + dt)),
            max(0.0, min(1.0, zoom + dz)),
        )
        return 200, _answer("<tptz:RelativeMoveResponse/>")

    def _op_GetNode(self, request: Element) -> tuple[int, bytes]:
        if not self.ptz or text_of(request, "NodeToken") != "node0":
            return 400, _fault("env:Sender", "ter:NoEntity", "no such PTZ node")
        spaces = (
            "<tt:AbsolutePanTiltPositionSpace><tt:URI>http://www.onvif.org/ver10/tptz/PanTiltSpaces/"
            f"SphericalPositionSpaceDegrees</tt:URI>{_range('X', -180, 180)}{_range('Y', -90, 90)}"
            f"</tt:AbsolutePanTiltPositionSpace><tt:AbsolutePanTiltPositionSpace><tt:URI>{GENERIC_PAN_TILT}"
            f"</tt:URI>{_range('X', -1, 1)}{_range('Y', -1, 1)}</tt:AbsolutePanTiltPositionSpace>"
            f"<tt:AbsoluteZoomPositionSpace><tt:URI>{GENERIC_ZOOM}</tt:URI>{_range('X', 0, 1)}"
            "</tt:AbsoluteZoomPositionSpace>"
            if self.absolute
            else ""
        )
        return 200, _answer(
            '<tptz:GetNodeResponse><tptz:PTZNode token="node0"><tt:Name>PTZ</tt:Name><tt:SupportedPTZSpaces>'
            f"{spaces}<tt:ContinuousPanTiltVelocitySpace><tt:URI>http://www.onvif.org/ver10/tptz/PanTiltSpaces/"
            f"VelocityGenericSpace</tt:URI>{_range('X', -1, 1)}{_range('Y', -1, 1)}"
            "</tt:ContinuousPanTiltVelocitySpace></tt:SupportedPTZSpaces><tt:MaximumNumberOfPresets>100"
            "</tt:MaximumNumberOfPresets><tt:HomeSupported>true</tt:HomeSupported></tptz:PTZNode>"
            "</tptz:GetNodeResponse>"
        )

    def _op_GetStatus(self, request: Element) -> tuple[int, bytes]:
        if not self._profile_ok(request):
            return self._bad_profile()
        self._advance()
        pan, tilt, zoom = self._position
        moving = "MOVING" if time.monotonic() < self._moving_until and any(self._velocity) else "IDLE"
        return 200, _answer(
            "<tptz:GetStatusResponse><tptz:PTZStatus><tt:Position>"
            f'<tt:PanTilt x="{pan:.4f}" y="{tilt:.4f}" space="{GENERIC_PAN_TILT}"/>'
            f'<tt:Zoom x="{zoom:.4f}" space="{GENERIC_ZOOM}"/></tt:Position><tt:MoveStatus>'
            f"<tt:PanTilt>{moving}</tt:PanTilt><tt:Zoom>{moving}</tt:Zoom></tt:MoveStatus>"
            "</tptz:PTZStatus></tptz:GetStatusResponse>"
        )

    def _op_AbsoluteMove(self, request: Element) -> tuple[int, bytes]:
        if not self._profile_ok(request):
            return self._bad_profile()
        if not self.absolute:
            return 400, _fault("env:Sender", "ter:InvalidArgVal", "absolute moves are not supported")
        self._advance()
        pan, tilt, zoom = self._position
        pan_tilt, zoom_to = find(request, "PanTilt"), find(request, "Zoom")
        try:
            if pan_tilt is not None:
                pan, tilt = float(attribute(pan_tilt, "x") or ""), float(attribute(pan_tilt, "y") or "")
            if zoom_to is not None:
                zoom = float(attribute(zoom_to, "x") or "")
        except ValueError:
            return 400, _fault("env:Sender", "ter:InvalidArgVal", "the position is not a number")
        x0, x1, y0, y1 = self.pan_tilt_limits or (-1.0, 1.0, -1.0, 1.0)
        z0, z1 = self.zoom_limits or (0.0, 1.0)
        if not (x0 <= pan <= x1 and y0 <= tilt <= y1 and z0 <= zoom <= z1):
            return 400, _fault("env:Sender", "ter:InvalidPosition", "the position is beyond the limits")
        self._move((0.0, 0.0, 0.0), 0.0)
        self._position = (pan, tilt, zoom)
        return 200, _answer("<tptz:AbsoluteMoveResponse/>")

    def _op_GetPresets(self, request: Element) -> tuple[int, bytes]:
        if not self._profile_ok(request):
            return self._bad_profile()
        listed = "".join(
            f"<tptz:Preset token={quoteattr(token)}><tt:Name>{escape(name)}</tt:Name></tptz:Preset>"
            for token, (name, _) in self.presets.items()
        )
        return 200, _answer(f"<tptz:GetPresetsResponse>{listed}</tptz:GetPresetsResponse>")

    def _op_GotoPreset(self, request: Element) -> tuple[int, bytes]:
        if not self._profile_ok(request):
            return self._bad_profile()
        preset = self.presets.get(text_of(request, "PresetToken") or "")
        if preset is None:
            return 400, _fault("env:Sender", "ter:NoToken", "no preset with that token")
        self._move((0.0, 0.0, 0.0), 0.0)
        self._position = preset[1]
        return 200, _answer("<tptz:GotoPresetResponse/>")

    def _op_SetPreset(self, request: Element) -> tuple[int, bytes]:
        if not self._profile_ok(request):
            return self._bad_profile()
        self._advance()
        token = text_of(request, "PresetToken")
        if token and token not in self.presets:
            return 400, _fault("env:Sender", "ter:NoToken", "no preset with that token")
        if not token:
            token = str(self._next_token)
            self._next_token += 1
        self.presets[token] = (text_of(request, "PresetName") or token, self._position)
        return 200, _answer(
            f"<tptz:SetPresetResponse><tptz:PresetToken>{token}</tptz:PresetToken></tptz:SetPresetResponse>"
        )

    def _op_RemovePreset(self, request: Element) -> tuple[int, bytes]:
        if not self._profile_ok(request):
            return self._bad_profile()
        if self.presets.pop(text_of(request, "PresetToken") or "", None) is None:
            return 400, _fault("env:Sender", "ter:NoToken", "no preset with that token")
        return 200, _answer("<tptz:RemovePresetResponse/>")


def steer(camera_id: str, camera: SimulatedPtzCamera) -> None:
    """Makes `camera`'s pan, tilt and zoom choose what the synthetic camera `camera_id` shows."""
    _simulated[camera_id] = camera


def view_of(camera_id: str) -> tuple[float, float, float] | None:
    """Where the simulated PTZ steering `camera_id` points (pan, tilt, zoom), if one does."""
    camera = _simulated.get(camera_id)
    return camera.view() if camera is not None else None
