"""Moving a camera over ONVIF PTZ, against a simulated ONVIF camera on loopback started by each test."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from safecity.core.errors import InvalidInput
from safecity.demo.ptz import SimulatedPtzCamera
from safecity.video.onvif import OnvifAuthRefused, OnvifDevice, OnvifFault, OnvifUnreachable
from safecity.video.ptz import (
    GENERIC_PAN_TILT,
    GENERIC_ZOOM,
    AbsoluteUnsupported,
    Position,
    PositionOutOfRange,
    PresetNotFound,
    PtzCamera,
    PtzUnsupported,
    Range,
)
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


def test_absolute_spaces_are_read_from_the_node_and_narrowed_by_the_configurations_limits() -> None:
    camera = SimulatedPtzCamera(pan_tilt_limits=(-0.5, 0.5, -1.0, 0.2), zoom_limits=(0.0, 0.6))
    try:
        spaces = PtzCamera.of(OnvifDevice(camera.url)).absolute_spaces()
    finally:
        camera.close()
    # The node lists a degrees space first: the generic one is chosen, within the configuration's limits.
    assert spaces.pan_tilt_space == GENERIC_PAN_TILT and spaces.zoom_space == GENERIC_ZOOM
    assert (spaces.pan, spaces.tilt, spaces.zoom) == (Range(-0.5, 0.5), Range(-1.0, 0.2), Range(0.0, 0.6))


def test_an_absolute_move_sends_the_camera_to_the_position_and_reads_it_back(
    camera: SimulatedPtzCamera,
) -> None:
    ptz = PtzCamera.of(OnvifDevice(camera.url, username="ptz", password="s3cret"))
    ptz.absolute_move(Position(pan=0.25, tilt=-0.5, zoom=0.75))
    sent = camera.last("AbsoluteMove")
    assert sent is not None and sent.values["Position.PanTilt.x"] == "0.25"
    assert sent.values["Position.PanTilt.space"] == GENERIC_PAN_TILT
    assert camera.view() == pytest.approx((0.25, -0.5, 0.75))
    assert ptz.position() == Position(pan=0.25, tilt=-0.5, zoom=0.75)
    ptz.absolute_move(Position(zoom=0.1))  # the zoom alone: pan and tilt stay
    assert camera.view() == pytest.approx((0.25, -0.5, 0.1))


def test_an_absolute_move_out_of_range_or_to_a_camera_without_absolute_spaces_is_refused_before_sending(
    camera: SimulatedPtzCamera,
) -> None:
    ptz = PtzCamera.of(OnvifDevice(camera.url, username="ptz", password="s3cret"))
    with pytest.raises(PositionOutOfRange, match=r"pan 1\.5 is outside this camera's range -1 to 1"):
        ptz.absolute_move(Position(pan=1.5, tilt=0, zoom=0.5))
    with pytest.raises(PositionOutOfRange, match=r"zoom -0\.2 is outside"):
        ptz.absolute_move(Position(zoom=-0.2))
    with pytest.raises(InvalidInput, match="pan and tilt go together"):
        ptz.absolute_move(Position(pan=0.2))
    assert "AbsoluteMove" not in camera.operations()
    flat = SimulatedPtzCamera(absolute=False)
    try:
        fixed_spaces = PtzCamera.of(OnvifDevice(flat.url))
        assert not fixed_spaces.absolute_spaces().any
        with pytest.raises(AbsoluteUnsupported, match="no absolute pan/tilt space"):
            fixed_spaces.absolute_move(Position(pan=0, tilt=0))
        assert "AbsoluteMove" not in flat.operations()
    finally:
        flat.close()
