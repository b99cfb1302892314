"""Moving a camera over ONVIF PTZ, against a simulated ONVIF camera on loopback started by each test."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from safecity.demo.ptz import SimulatedPtzCamera
from safecity.video.onvif import OnvifAuthRefused, OnvifDevice, OnvifFault, OnvifUnreachable
from safecity.video.ptz import PresetNotFound, PtzCamera, PtzUnsupported
from tests.browser import free_port


@pytest.fixture
def camera() -> Iterator[SimulatedPtzCamera]:
    fake = SimulatedPtzCamera(username="ptz", password="s3cret")
    yield fake
    fake.close()


def test_a_continuous_move_is_sent_with_its_velocities_and_a_timeout_and_stop_stops_it(
    camera: SimulatedPtzCamera,
) -> None:
    ptz = PtzCamera.of(OnvifDevice(camera.url, username="ptz", password="s3cret"))
    assert ptz.endpoint.service_url.endswith("/onvif/ptz_service") and ptz.endpoint.profile_token == "main"
    ptz.continuous_move(pan=0.8, tilt=-0.25, zoom=0.5, timeout_s=5)
    move = camera.last("ContinuousMove")
    assert move is not None and move.user == "ptz"
    assert move.values == {
        "ProfileToken": "main",
        "Velocity.PanTilt.x": "0.8",
        "Velocity.PanTilt.y": "-0.25",
        "Velocity.Zoom.x": "0.5",
        "Timeout": "PT5S",
    }
    time.sleep(0.4)
    ptz.stop()
    pan, tilt, zoom = camera.view()
    time.sleep(0.2)
    assert camera.view() == (pan, tilt, zoom)  # stopped: it no longer moves
    assert 0.1 < pan < 0.3 and -0.1 < tilt < 0 and 0.05 < zoom < 0.2
    assert camera.operations()[-2:] == ["ContinuousMove", "Stop"]


def test_presets_are_listed_saved_gone_to_and_removed(camera: SimulatedPtzCamera) -> None:
    ptz = PtzCamera.of(OnvifDevice(camera.url, username="ptz", password="s3cret"))
    ptz.relative_move(pan=0.5, tilt=0.2, zoom=0.3)
    token = ptz.set_preset("Gate <3> & market")
    assert [(p.token, p.name) for p in ptz.presets()] == [("1", "Home"), (token, "Gate <3> & market")]
    ptz.goto_preset("1")
    assert camera.view() == (0.0, 0.0, 0.0)
    ptz.goto_preset(token)
    assert camera.view() == pytest.approx((0.5, 0.2, 0.3))
    ptz.remove_preset(token)
    assert [p.token for p in ptz.presets()] == ["1"]
    with pytest.raises(PresetNotFound, match="no preset '99'"):
        ptz.goto_preset("99")


def test_a_camera_whose_clock_is_an_hour_off_still_accepts_the_right_password(
    camera: SimulatedPtzCamera,
) -> None:
    camera.clock_offset_s = 3600
    device = OnvifDevice(camera.url, username="ptz", password="s3cret")
    PtzCamera.of(device).stop()
    assert abs(device.clock_offset_s - 3600) < 2
    assert "GetSystemDateAndTime" in camera.operations() and camera.operations()[-1] == "Stop"


def test_a_wrong_password_and_missing_credentials_say_the_camera_refused_them(
    camera: SimulatedPtzCamera,
) -> None:
    with pytest.raises(OnvifAuthRefused, match="NotAuthorized") as wrong:
        PtzCamera.of(OnvifDevice(camera.url, username="ptz", password="guess"))
    assert wrong.value.hint and "user name and password" in wrong.value.hint
    with pytest.raises(OnvifAuthRefused) as none:
        PtzCamera.of(OnvifDevice(camera.url))
    assert none.value.hint and "needs a user name and password" in none.value.hint


def test_a_camera_that_asks_for_http_digest_gets_it() -> None:
    digest = SimulatedPtzCamera(username="ptz", password="s3cret", http_digest=True)
    try:
        PtzCamera.of(OnvifDevice(digest.url, username="ptz", password="s3cret")).stop()
        assert digest.operations()[-1] == "Stop"
        with pytest.raises(OnvifAuthRefused, match="HTTP 401"):
            PtzCamera.of(OnvifDevice(digest.url, username="ptz", password="guess"))
    finally:
        digest.close()


def test_a_fixed_camera_says_it_has_no_ptz() -> None:
    fixed = SimulatedPtzCamera(ptz=False)
    try:
        with pytest.raises(PtzUnsupported, match="offers no PTZ service"):
            PtzCamera.of(OnvifDevice(fixed.url))
    finally:
        fixed.close()


def test_an_onvif_1_camera_without_get_services_is_found_through_its_capabilities() -> None:
    old = SimulatedPtzCamera(legacy=True)
    try:
        ptz = PtzCamera.of(OnvifDevice(old.url))
        ptz.stop()
        assert old.operations() == ["GetServices", "GetCapabilities", "GetProfiles", "Stop"]
    finally:
        old.close()


def test_a_fault_is_reported_in_the_cameras_own_words(camera: SimulatedPtzCamera) -> None:
    camera.faults["ContinuousMove"] = ("ter:TooManyMoves", "PTZ is locked by the local keyboard")
    ptz = PtzCamera.of(OnvifDevice(camera.url, username="ptz", password="s3cret"))
    with pytest.raises(OnvifFault, match="PTZ is locked by the local keyboard") as refused:
        ptz.continuous_move(pan=1, tilt=0, zoom=0, timeout_s=2)
    assert "ter:TooManyMoves" in refused.value.codes


def test_a_camera_that_does_not_answer_is_unreachable_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(OnvifUnreachable, match="did not answer"):
        PtzCamera.of(OnvifDevice(f"http://127.0.0.1:{free_port()}/onvif/device_service", timeout_s=1))
    assert time.monotonic() - started < 3
