"""ONVIF over SOAP: the one way SafeCity talks to a camera's control services (clock, capabilities, PTZ).

A request is a SOAP 1.2 envelope posted to a service address; when the camera has credentials it
carries a WS-Security UsernameToken with a password digest (SHA-1 of nonce, creation time and
password), and HTTP digest authentication answers a camera that asks for it instead. Answers are
parsed with defusedxml under a size limit, and every failure becomes an error a person can act on:
the camera did not answer, refused the user name and password, or sent a SOAP fault (its own words).

    device = OnvifDevice("http://10.0.0.7/onvif/device_service", username="ptz", password="…")
    services = device.services()          # namespace → address, e.g. the PTZ service's
    reply = device.call(services[PTZ], PTZ, "<tptz:Stop>…</tptz:Stop>")

A camera checks the token's creation time against its own clock, so a camera whose clock is far off
refuses a correct password: on such a refusal the device is asked its time (which needs no
credentials) and the request is sent once more stamped in the camera's time.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

import httpx
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from safecity.core.errors import SafeCityError

SOAP = "http://www.w3.org/2003/05/soap-envelope"
DEVICE = "http://www.onvif.org/ver10/device/wsdl"
MEDIA = "http://www.onvif.org/ver10/media/wsdl"
PTZ = "http://www.onvif.org/ver20/ptz/wsdl"
SCHEMA = "http://www.onvif.org/ver10/schema"
_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
_NONCE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"

# The prefixes requests are written with: `tptz:ContinuousMove`, `tt:PanTilt`.
PREFIXES = {"tds": DEVICE, "trt": MEDIA, "tptz": PTZ, "tt": SCHEMA}
MAX_REPLY_BYTES = 1024 * 1024
"""A camera's largest ordinary answer (profiles, a few hundred presets) is well under this."""


class OnvifError(SafeCityError):
    """A camera's ONVIF service failed a request; the message says how and the hint what to do."""

    status_code = 502
    code = "onvif_failed"


class OnvifUnreachable(OnvifError):
    """The camera's ONVIF service did not answer at all."""

    status_code = 503
    code = "camera_unreachable"


class OnvifAuthRefused(OnvifError):
    """The camera refused the user name and password it was sent (not the operator's sign-in)."""

    code = "camera_auth_refused"


class OnvifFault(OnvifError):
    """The camera answered with a SOAP fault: its codes (`ter:NoToken`) and its reason in its words."""

    code = "camera_fault"

    def __init__(self, message: str, *, codes: tuple[str, ...], reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.codes = codes
        self.reason = reason


def onvif_url_for(stream_url: str, configured: str | None = None) -> str | None:
    """The camera's ONVIF device service: the configured one, or the standard path on its stream's host."""
    if configured:
        return configured
    parts = urlsplit(stream_url or "")
    if parts.scheme not in ("rtsp", "rtsps", "http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"http://{host}/onvif/device_service"


def local_name(tag: str) -> str:
    """An element's name without its namespace (`{…/schema}PanTilt` → `PanTilt`)."""
    return tag.rsplit("}", 1)[-1]


def find(root: Element, name: str) -> Element | None:
    """The first element named `name` (any namespace) at or below `root`."""
    return next((el for el in root.iter() if local_name(el.tag) == name), None)


def text_of(root: Element, name: str) -> str | None:
    """The stripped text of the first element named `name` below `root`, if there is one."""
    found = find(root, name)
    return (found.text or "").strip() if found is not None else None


def parse_xml(body: bytes, url: str, *, max_bytes: int = MAX_REPLY_BYTES) -> Element:
    """The root of an answer's XML, refused when it is too big or not XML (entities and DTDs refused)."""
    if len(body) > max_bytes:
        raise OnvifError(f"{url} answered {len(body):,} bytes, not an ONVIF reply")
    try:
        root: Element = ElementTree.fromstring(body)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise OnvifError(
            f"{url} did not answer ONVIF XML ({exc})",
            hint="check the address is the camera's ONVIF service and ONVIF is enabled on it",
        ) from exc
    return root


def fault_of(root: Element) -> tuple[tuple[str, ...], str] | None:
    """A SOAP fault's codes (outermost first, prefixes kept: `env:Sender`, `ter:NoToken`) and its reason."""
    fault = find(root, "Fault")
    if fault is None:
        return None
    codes = tuple((el.text or "").strip() for el in fault.iter() if local_name(el.tag) == "Value")
    reason = text_of(fault, "Text") or text_of(fault, "faultstring") or ""
    return codes, reason


def envelope(body: str, header: str = "") -> bytes:
    """A SOAP 1.2 envelope around `body` (written with the `PREFIXES`), with an optional header."""
    namespaces = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in PREFIXES.items())
    head = f"<s:Header>{header}</s:Header>" if header else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{SOAP}" {namespaces}>'
        f"{head}<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def username_token(username: str, password: str, *, created: datetime, nonce: bytes) -> str:
    """A WS-Security UsernameToken header with a password digest (ONVIF Core §5.12)."""
    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    digest = base64.b64encode(hashlib.sha1(nonce + stamp.encode() + password.encode()).digest()).decode()
    return (
        f'<wsse:Security xmlns:wsse="{_WSSE}" xmlns:wsu="{_WSU}" s:mustUnderstand="1"><wsse:UsernameToken>'
        f"<wsse:Username>{escape(username)}</wsse:Username>"
        f'<wsse:Password Type="{_DIGEST}">{digest}</wsse:Password>'
        f'<wsse:Nonce EncodingType="{_NONCE}">{base64.b64encode(nonce).decode()}</wsse:Nonce>'
        f"<wsu:Created>{stamp}</wsu:Created></wsse:UsernameToken></wsse:Security>"
    )


def camera_utc(root: Element, url: str) -> int:
    """The camera's UTC time (whole seconds since the epoch) in a GetSystemDateAndTime answer."""
    utc = find(root, "UTCDateTime")
    if utc is None:
        fault = fault_of(root)
        why = f": {fault[1]}" if fault and fault[1] else ""
        raise OnvifError(
            f"{url} sent no UTCDateTime in its GetSystemDateAndTime answer{why}",
            hint="check the address is the camera's ONVIF device service and ONVIF is enabled on it",
        )
    fields = {local_name(el.tag): (el.text or "").strip() for el in utc.iter()}
    try:
        when = datetime(
            int(fields["Year"]),
            int(fields["Month"]),
            int(fields["Day"]),
            int(fields["Hour"]),
            int(fields["Minute"]),
            int(fields["Second"]),
            tzinfo=UTC,
        )
    except (KeyError, ValueError) as exc:
        raise OnvifError(f"{url} sent an unreadable UTCDateTime ({exc}): {fields}") from exc
    return int(when.timestamp())


def _operation(body: str) -> str:
    """The operation a request body asks for: `<tptz:Stop>…` → `Stop`."""
    return body.split(">", 1)[0].lstrip("<").split()[0].split(":")[-1].rstrip("/")


@dataclass
class OnvifDevice:
    """One camera's ONVIF services, reached through its device service address."""

    url: str
    username: str | None = None
    password: str | None = None
    timeout_s: float = 3.0
    client: httpx.Client | None = None
    clock: Callable[[], float] = time.time
    clock_offset_s: float = 0.0
    """The camera's clock minus ours, learnt when the camera refused a token stamped in our time."""

    def _http(self) -> httpx.Client:
        if self.client is None:
            auth = httpx.DigestAuth(self.username, self.password or "") if self.username else None
            self.client = httpx.Client(timeout=self.timeout_s, auth=auth)
        return self.client

    def close(self) -> None:
        """Closes the HTTP connections this device opened."""
        if self.client is not None:
            self.client.close()
            self.client = None

    def post(self, url: str, namespace: str, body: str, *, secured: bool = True) -> tuple[int, bytes]:
        """Posts one SOAP request; returns the HTTP status and the answer's bytes."""
        header = ""
        if secured and self.username:
            created = datetime.fromtimestamp(self.clock() + self.clock_offset_s, UTC)
            header = username_token(self.username, self.password or "", created=created, nonce=os.urandom(16))
        action = f"{namespace}/{_operation(body)}"
        try:
            reply = self._http().post(
                url,
                content=envelope(body, header),
                headers={"Content-Type": f'application/soap+xml; charset=utf-8; action="{action}"'},
            )
        except httpx.HTTPError as exc:
            raise OnvifUnreachable(
                f"camera ONVIF service {url} did not answer ({type(exc).__name__}: {exc})",
                hint="check the camera is on the network and its address (camera setting onvif_url)",
            ) from exc
        return reply.status_code, reply.content

    def call(self, url: str, namespace: str, body: str) -> Element:
        """Sends one request to the service at `url`; returns the answer's body element or raises."""
        status, content = self.post(url, namespace, body)
        try:
            return self._answer(url, body, status, content)
        except OnvifAuthRefused:
            if not self.username or not self._learn_clock():
                raise
        status, content = self.post(url, namespace, body)
        return self._answer(url, body, status, content)

    def _learn_clock(self) -> bool:
        """Reads the camera's clock; returns whether it is far enough off ours to explain a refusal."""
        try:
            _, content = self.post(self.url, DEVICE, "<tds:GetSystemDateAndTime/>", secured=False)
            offset = camera_utc(parse_xml(content, self.url), self.url) - self.clock()
        except OnvifError:
            return False
        if abs(offset - self.clock_offset_s) < 5:
            return False
        self.clock_offset_s = offset
        return True

    def _answer(self, url: str, request: str, status: int, content: bytes) -> Element:
        operation = _operation(request)
        if status == 401 or status == 403:
            raise OnvifAuthRefused(
                f"camera ONVIF service {url} refused {operation}: HTTP {status}",
                hint=self._auth_hint(),
            )
        if not content and status >= 400:
            raise OnvifError(
                f"camera ONVIF service {url} answered {operation} with HTTP {status}",
                hint="check the address is the camera's ONVIF service (camera setting onvif_url)",
            )
        root = parse_xml(content, url)
        fault = fault_of(root)
        if fault is not None:
            codes, reason = fault
            said = f": {reason}" if reason else ""
            named = " / ".join(code for code in codes if code)
            if any(code.split(":")[-1] in ("NotAuthorized", "FailedAuthentication") for code in codes):
                raise OnvifAuthRefused(f"camera refused {operation} ({named}){said}", hint=self._auth_hint())
            raise OnvifFault(f"camera refused {operation} ({named}){said}", codes=codes, reason=reason)
        if status >= 400:
            raise OnvifError(f"camera ONVIF service {url} answered {operation} with HTTP {status}")
        body = find(root, "Body")
        if body is None or len(body) == 0:
            raise OnvifError(f"{url} answered {operation} with an empty SOAP body")
        return body[0]

    def _auth_hint(self) -> str:
        if not self.username:
            return "the camera needs a user name and password: set them on the camera (its stream's user)"
        return "check the camera's user name and password, and that the user may use ONVIF (operator level)"

    def services(self) -> dict[str, str]:
        """The camera's services by namespace (GetServices; GetCapabilities for cameras without it)."""
        try:
            answer = self.call(
                self.url,
                DEVICE,
                "<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>",
            )
            found = {}
            for service in answer:
                namespace, address = text_of(service, "Namespace"), text_of(service, "XAddr")
                if namespace and address:
                    found[namespace] = address
            if found:
                return found
        except OnvifFault:
            pass  # an ONVIF 1.0 camera: GetCapabilities says the same
        answer = self.call(
            self.url, DEVICE, "<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>"
        )
        by_name = {"Device": DEVICE, "Media": MEDIA, "PTZ": PTZ}
        found = {}
        for section in answer.iter():
            namespace = by_name.get(local_name(section.tag))
            address = next((el.text for el in section if local_name(el.tag) == "XAddr"), None)
            if namespace and address:
                found.setdefault(namespace, address.strip())
        return found


def attribute(element: Element | None, name: str) -> str | None:
    """An attribute of `element` by its local name, if both are there."""
    if element is None:
        return None
    return next((v for k, v in element.attrib.items() if local_name(k) == name), None)


def children(element: Element, name: str) -> list[Element]:
    """The elements named `name` (any namespace) at any depth below `element`."""
    return [el for el in element.iter() if local_name(el.tag) == name and el is not element]
