"""Camera clocks measured over ONVIF against NTP: a fake camera and a fake NTP server on loopback."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from safecity.cameras import service as cameras
from safecity.cameras.models import CameraPatch
from safecity.cli import app
from safecity.core.context import Context
from safecity.enforcement.models import EnforcementPolicy
from safecity.enforcement.readiness import clock_jobs
from safecity.enforcement.readiness import service as readiness
from safecity.enforcement.readiness.clock_probe import (
    ClockProbeError,
    Reference,
    measure,
    ntp_reference,
    onvif_offset,
    parse_camera_utc,
)
from safecity.enforcement.readiness.models import CameraClockCheck, ClockCheckIn
from safecity.video.onvif import onvif_url_for
from tests.enforcement.court import register_camera

HOST = Reference(0.0, 0.0, "test host")


def soap_time(seconds: int) -> bytes:
    t = datetime.fromtimestamp(seconds, UTC)
    return (
        '<?xml version="1.0"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema">'
        "<env:Body><tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
        "<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
        "<tt:TimeZone><tt:TZ>PKT-5</tt:TZ></tt:TimeZone><tt:UTCDateTime>"
        f"<tt:Time><tt:Hour>{t.hour}</tt:Hour><tt:Minute>{t.minute}</tt:Minute><tt:Second>{t.second}</tt:Second>"
        f"</tt:Time><tt:Date><tt:Year>{t.year}</tt:Year><tt:Month>{t.month}</tt:Month><tt:Day>{t.day}</tt:Day>"
        "</tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
        "</env:Body></env:Envelope>"
    ).encode()


class FakeCamera:
    """An ONVIF device service on loopback whose clock runs `offset_s` ahead of this host's."""

    def __init__(self, offset_s: float) -> None:
        self.offset_s = offset_s
        self.reply: bytes | None = None  # a fixed (hostile or broken) answer instead of the time
        self.requests = 0
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                camera.requests += 1
                body = camera.reply or soap_time(int(time.time() + camera.offset_s))
                self.send_response(200)
                self.send_header("Content-Type", "application/soap+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/onvif/device_service"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def camera() -> Iterator[FakeCamera]:
    fake = FakeCamera(offset_s=2.37)
    yield fake
    fake.close()


NTP_EPOCH = 2_208_988_800


class FakeNtp:
    """An NTP server on loopback whose time is `ahead_s` ahead of this host's, at `stratum`."""

    def __init__(self, ahead_s: float, stratum: int = 2) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.ahead_s, self.stratum = ahead_s, stratum
        threading.Thread(target=self._serve, daemon=True).start()

    @staticmethod
    def _stamp(t: float) -> tuple[int, int]:
        t += NTP_EPOCH
        return int(t), int((t % 1) * 2**32)

    def _serve(self) -> None:
        while True:
            try:
                request, peer = self.sock.recvfrom(512)
            except OSError:
                return
            now = time.time() + self.ahead_s
            origin = request[40:48]
            leap_version_mode = (0 << 6) | (4 << 3) | 4
            header = struct.pack("!BBbb", leap_version_mode, self.stratum, 6, -20)
            header += struct.pack("!II", 0, 0) + b"GPS\0"
            reply = header + struct.pack("!II", *self._stamp(now)) + origin
            reply += struct.pack("!IIII", *self._stamp(now), *self._stamp(now))
            try:
                self.sock.sendto(reply, peer)
            except OSError:  # closed while answering
                return

    def close(self) -> None:
        self.sock.close()


def test_a_camera_clock_is_measured_to_a_few_hundredths_of_a_second_though_onvif_says_whole_seconds(
    camera: FakeCamera,
) -> None:
    reading = measure(camera.url, reference=Reference(0.25, 0.002, "fake NTP"))
    # Camera minus NTP: the host is 0.25 s behind NTP, so the camera is 0.25 s less ahead of NTP.
    assert abs(reading.offset_s - 2.12) <= reading.uncertainty_s + 0.01
    assert reading.uncertainty_s < 0.05 + 0.002 and camera.requests <= 12
    assert reading.method == "onvif" and "requests" in reading.detail and "fake NTP" in reading.detail


def test_the_host_clock_is_corrected_by_an_ntp_server_and_an_unsynchronised_one_is_refused() -> None:
    good, lost = FakeNtp(ahead_s=0.5), FakeNtp(ahead_s=0.0, stratum=16)
    try:
        reference = ntp_reference(good.address)
        assert abs(reference.correction_s - 0.5) < 0.05 and reference.uncertainty_s < 0.05
        assert good.address in reference.source
        with pytest.raises(ClockProbeError, match="not synchronised itself"):
            ntp_reference(lost.address)
    finally:
        good.close(), lost.close()
    with pytest.raises(ClockProbeError, match="did not answer"):
        ntp_reference(good.address, timeout_s=0.3)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><x>&b;</x>',
            "did not answer ONVIF XML",
        ),
        (b"<html>login</html>", "sent no UTCDateTime"),
        (
            b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><e:Fault><e:Reason>'
            b"<e:Text>Sender not authorized</e:Text></e:Reason></e:Fault></e:Body></e:Envelope>",
            "Sender not authorized",
        ),
        (
            soap_time(0).replace(b"<tt:Month>1</tt:Month>", b"<tt:Month>13</tt:Month>"),
            "unreadable UTCDateTime",
        ),
        (b"<x>" + b"a" * 100_000 + b"</x>", "not an ONVIF reply"),
    ],
)
def test_a_hostile_or_broken_camera_answer_is_a_clear_error(
    camera: FakeCamera, reply: bytes, message: str
) -> None:
    camera.reply = reply
    with pytest.raises(ClockProbeError, match=message):
        onvif_offset(camera.url)


def test_a_camera_that_does_not_answer_is_a_clear_error() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(ClockProbeError, match="did not answer") as caught:
        onvif_offset(f"http://127.0.0.1:{port}/onvif/device_service", timeout_s=0.5)
    assert "onvif_url" in (caught.value.hint or "")


def test_a_parsed_answer_is_the_cameras_utc_second() -> None:
    assert parse_camera_utc(soap_time(1_750_000_000), "cam") == 1_750_000_000


def test_the_onvif_address_is_the_setting_or_the_standard_path_on_the_stream_host() -> None:
    assert onvif_url_for("rtsp://user:pw@10.1.2.3:554/stream1") == "http://10.1.2.3/onvif/device_service"
    assert onvif_url_for("rtsp://[fd00::5]/s") == "http://[fd00::5]/onvif/device_service"
    assert onvif_url_for("rtsp://10.1.2.3/s", "http://10.1.2.3:8080/onvif") == "http://10.1.2.3:8080/onvif"
    assert onvif_url_for("synthetic://junction") is None and onvif_url_for("") is None


def _check(ctx: Context, camera_id: str, offset: float, uncertainty: float | None, at: datetime) -> str:
    with ctx.db.session() as session:
        data = ClockCheckIn(offset_s=offset, uncertainty_s=uncertainty, measured_at=at, method="onvif")
        readiness.record_clock_check(session, camera_id, data, actor="test")
        context = readiness._Context.read(
            session, [{"camera_id": camera_id, "at": at, "evidence": {}}], EnforcementPolicy()
        )
        found = context._clock(camera_id, at + timedelta(minutes=1))
        return ("ok: " if found.ok else "held: ") + found.detail


def test_the_gate_counts_what_a_measurement_could_not_rule_out(ctx: Context) -> None:
    at = datetime(2025, 6, 1, 8, tzinfo=UTC)
    register_camera(ctx, "cam-u")
    assert _check(ctx, "cam-u", 0.7, 0.2, at).startswith("ok: camera cam-u +0.700 s ± 0.200 s")
    held = _check(ctx, "cam-u", 0.7, 0.4, at + timedelta(minutes=2))
    assert held.startswith("held: ") and "+0.700 s ± 0.400 s off NTP" in held and "tolerance 1 s" in held


def test_the_cli_probes_a_camera_and_records_the_measurement(
    ctx: Context, camera: FakeCamera, monkeypatch: pytest.MonkeyPatch
) -> None:
    ntp = FakeNtp(ahead_s=0.0)
    register_camera(ctx, "cam-p")
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("SAFECITY_NTP_SERVER", ntp.address)
    try:
        result = CliRunner().invoke(
            app, ["enforcement", "clock-check", "cam-p", "--probe", "--url", camera.url]
        )
    finally:
        ntp.close()
    assert result.exit_code == 0, result.output
    assert "cam-p: +2.3" in result.output and "±" in result.output
    with ctx.db.session() as session:
        row = session.scalars(select(CameraClockCheck).where(CameraClockCheck.camera_id == "cam-p")).one()
        assert row.method == "onvif" and abs(row.offset_s - 2.37) < 0.1 and row.uncertainty_s is not None

    vague = CliRunner().invoke(app, ["enforcement", "clock-check", "cam-p"])
    assert vague.exit_code != 0 and "--probe" in vague.output
    no_host = CliRunner().invoke(app, ["enforcement", "clock-check", "cam-p", "--probe"])
    assert no_host.exit_code != 0 and "no ONVIF address" in no_host.output


def test_the_job_measures_every_camera_it_can_and_records_nothing_for_one_it_cannot(
    ctx: Context, camera: FakeCamera
) -> None:
    ntp = FakeNtp(ahead_s=0.0)
    ctx.settings.ntp_server = ntp.address
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{free.getsockname()[1]}/onvif/device_service"
    for camera_id, url in (("cam-a", camera.url), ("cam-dead", dead)):
        register_camera(ctx, camera_id)
        with ctx.db.session() as session:
            cameras.update(
                session, camera_id, CameraPatch.model_validate({"analysis": {"onvif_url": url}}), actor="test"
            )
    register_camera(ctx, "cam-synthetic")  # no stream host, no ONVIF address: not probed
    try:
        outcomes = {o.camera_id: o for o in clock_jobs.probe_cameras(ctx)}
    finally:
        ntp.close()
    assert set(outcomes) == {"cam-a", "cam-dead"}
    assert outcomes["cam-a"].reading is not None and "did not answer" in (outcomes["cam-dead"].error or "")
    with ctx.db.session() as session:
        rows = session.scalars(select(CameraClockCheck)).all()
        assert [(r.camera_id, r.recorded_by) for r in rows] == [("cam-a", "clock-probe")]
