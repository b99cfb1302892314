"""Measuring how far a camera's clock is from NTP, rather than taking someone's word for it.

A challan's time is the camera's time, so the court-readiness gate needs each camera's clock checked
against NTP. This module measures it over ONVIF: `GetSystemDateAndTime`, which every ONVIF camera
answers without credentials (clients need it to time-stamp their WS-Security tokens).

ONVIF reports whole seconds, so one request only says the offset lies in a 1 s window widened by the
round trip: if the request left at host time t0, the answer came back at t1 and the camera said S,
then the camera read its clock at some instant in [t0, t1] and read S, so `camera − host` lies in
[S − t1, S + 1 − t0]. Each further request narrows the window, and we *bisect* it: the next request
is timed so that, if the offset were the window's middle, the camera would read its clock exactly on
a second boundary — whether it answers S or S+1 then halves the window. Eight or so requests bring
a 1 s window down to the round trip (milliseconds on a city network).

The reference is the command centre's own clock, so that clock must itself be on NTP: either a
configured NTP server is queried (`ntp_server`; its offset is added, its round trip widens the window)
or the kernel must say it is synchronised (`adjtimex`), whose own error estimate widens the window.
A host that is not synchronised is refused: an offset from an unsynchronised clock proves nothing.

    reading = measure(camera_id, onvif_url, ntp_server="ntp.khi.gov.pk")
    reading.offset_s, reading.uncertainty_s   # camera minus NTP, and ± how sure
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from safecity.core.errors import SafeCityError
from safecity.video.onvif import OnvifError, camera_utc, envelope, parse_xml

SOAP_ACTION = "http://www.onvif.org/ver10/device/wsdl/GetSystemDateAndTime"
_REQUEST = envelope("<tds:GetSystemDateAndTime/>")
_MAX_REPLY_BYTES = 64 * 1024
"""A GetSystemDateAndTime answer is under 2 KB; anything far bigger is not a camera talking."""


class ClockProbeError(SafeCityError):
    """A clock could not be measured; the message says which and what to do."""

    status_code = 502
    code = "clock_probe_failed"


@dataclass(frozen=True)
class ClockReading:
    """One measurement of a camera's clock."""

    offset_s: float
    """Camera clock minus NTP, seconds (positive: the camera is ahead)."""
    uncertainty_s: float
    """The true offset is within ± this of `offset_s`."""
    measured_at: datetime
    """When it was measured (UTC, on the reference clock)."""
    method: str
    """`onvif`."""
    detail: str
    """How it was measured, in words (requests, round trip, reference)."""


@dataclass(frozen=True)
class Reference:
    """How far the host clock is from NTP: NTP minus host, and ± how sure, and where that came from."""

    correction_s: float
    uncertainty_s: float
    source: str


def parse_camera_utc(body: bytes, url: str) -> int:
    """The camera's UTC time (whole seconds since the epoch) from a GetSystemDateAndTime answer."""
    try:
        return camera_utc(parse_xml(body, url, max_bytes=_MAX_REPLY_BYTES), url)
    except OnvifError as exc:
        raise ClockProbeError(exc.message, hint=exc.hint) from exc


@dataclass
class _Window:
    """Where `camera − host` can lie, narrowed by each answer."""

    low: float = -math.inf
    high: float = math.inf

    def narrow(self, sent: float, received: float, camera_s: int) -> bool:
        low, high = max(self.low, camera_s - received), min(self.high, camera_s + 1 - sent)
        if low > high:
            return False
        self.low, self.high = low, high
        return True

    @property
    def middle(self) -> float:
        return (self.low + self.high) / 2

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def onvif_offset(
    url: str,
    *,
    client: httpx.Client | None = None,
    target_s: float = 0.02,
    max_requests: int = 12,
    timeout_s: float = 3.0,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[float, float, int, float]:
    """Camera minus host clock over ONVIF: (offset, ± uncertainty, requests, best round trip)."""
    own = client is None
    http = client or httpx.Client(timeout=timeout_s)
    window, requests, best_rtt, restarts = _Window(), 0, math.inf, 0
    try:
        while requests < max_requests:
            if requests:
                # Send so that, were the offset the window's middle, the camera would read its clock
                # exactly on a second boundary halfway through the round trip.
                now = clock()
                camera_at_arrival = now + best_rtt / 2 + window.middle
                wait = (math.ceil(camera_at_arrival) - camera_at_arrival) % 1.0
                sleep(wait)
            sent = clock()
            camera_s = _ask(http, url)
            received = clock()
            requests += 1
            best_rtt = min(best_rtt, received - sent)
            if not window.narrow(sent, received, camera_s):
                # The camera's clock stepped (an NTP correction) while we measured: start again once.
                restarts += 1
                if restarts > 1:
                    raise ClockProbeError(
                        f"{url}: the camera's clock jumped twice while it was measured",
                        hint="measure again later; a clock that keeps stepping is itself a fault",
                    )
                window = _Window()
                window.narrow(sent, received, camera_s)
            if window.half_width <= target_s:
                break
    finally:
        if own:
            http.close()
    return window.middle, window.half_width, requests, best_rtt


def _ask(http: httpx.Client, url: str) -> int:
    try:
        reply = http.post(
            url,
            content=_REQUEST,
            headers={"Content-Type": f'application/soap+xml; charset=utf-8; action="{SOAP_ACTION}"'},
        )
    except httpx.HTTPError as exc:
        raise ClockProbeError(
            f"camera ONVIF service {url} did not answer ({type(exc).__name__}: {exc})",
            hint="check the camera is on the network and the address (camera setting onvif_url)",
        ) from exc
    if reply.status_code >= 400 and b"UTCDateTime" not in reply.content:
        raise ClockProbeError(
            f"camera ONVIF service {url} answered HTTP {reply.status_code}",
            hint="check the address is the camera's ONVIF device service (camera setting onvif_url)",
        )
    return parse_camera_utc(reply.content, url)


# --- the reference: the host clock, itself checked against NTP ---------------------------------


class _Timex(ctypes.Structure):
    # struct timex (linux/timex.h): the fields up to `tolerance`, then padding for the rest.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("_rest", ctypes.c_byte * 256),
    ]


_TIME_ERROR = 5
"""adjtimex's answer when the clock is not synchronised."""


def kernel_clock_state() -> tuple[bool, float] | None:
    """Whether the kernel says this host's clock is NTP-synchronised, and its maximum error (s).

    None where that cannot be read (not Linux).
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        adjtimex = ctypes.CDLL(name, use_errno=True).adjtimex
    except (OSError, AttributeError):
        return None
    timex = _Timex()
    state = adjtimex(ctypes.byref(timex))
    if state < 0:
        return None
    return state != _TIME_ERROR, timex.maxerror / 1e6


def ntp_reference(server: str, *, timeout_s: float = 2.0) -> Reference:
    """NTP minus this host's clock, asked of `server`."""
    import ntplib

    host, port = server, 123
    if server.count(":") == 1:  # host:port (an IPv6 address has several colons and no port here)
        name, _, number = server.partition(":")
        if number.isdigit():
            host, port = name, int(number)
    try:
        stats = ntplib.NTPClient().request(host, version=4, port=port, timeout=timeout_s)
    except (ntplib.NTPException, OSError) as exc:
        raise ClockProbeError(
            f"NTP server {server} did not answer ({exc})",
            hint="check the ntp_server setting and that UDP port 123 is open to it",
        ) from exc
    if stats.leap == 3 or stats.stratum == 0 or stats.stratum >= 16:
        raise ClockProbeError(
            f"NTP server {server} is not synchronised itself (stratum {stats.stratum}, leap {stats.leap})",
            hint="point ntp_server at a synchronised server",
        )
    return Reference(
        correction_s=stats.offset,
        uncertainty_s=stats.delay / 2 + stats.root_delay / 2 + stats.root_dispersion,
        source=f"NTP {server} (stratum {stats.stratum}, host {-stats.offset:+.4f} s)",
    )


def host_reference(ntp_server: str | None) -> Reference:
    """How host time becomes NTP time: ask `ntp_server`, or trust a kernel that says it is synchronised."""
    if ntp_server:
        return ntp_reference(ntp_server)
    state = kernel_clock_state()
    if state is None or not state[0]:
        raise ClockProbeError(
            "this host's clock is not NTP-synchronised (the kernel says so), so a camera's offset from it "
            "proves nothing",
            hint="synchronise it (chrony or systemd-timesyncd), or set SAFECITY_NTP_SERVER to query one",
        )
    return Reference(0.0, state[1], f"host clock, kernel-synchronised (max error {state[1] * 1000:.0f} ms)")


def measure(
    url: str,
    *,
    ntp_server: str | None = None,
    reference: Reference | None = None,
    client: httpx.Client | None = None,
    timeout_s: float = 3.0,
) -> ClockReading:
    """Measures a camera's clock over ONVIF against NTP."""
    ref = reference or host_reference(ntp_server)
    offset, half, requests, rtt = onvif_offset(url, client=client, timeout_s=timeout_s)
    return ClockReading(
        offset_s=round(offset - ref.correction_s, 4),
        uncertainty_s=round(half + ref.uncertainty_s, 4),
        measured_at=datetime.now(UTC),
        method="onvif",
        detail=f"ONVIF {url}: {requests} requests, best round trip {rtt * 1000:.0f} ms; "
        f"reference {ref.source}",
    )
