"""Click-to-centre: a point of the live picture becomes a turn of the camera, from its lens and zoom."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from safecity.core.camera_config import AnalysisSettings
from safecity.core.context import Context
from safecity.demo.ptz import SimulatedPtzCamera
from safecity.video.ptz import GENERIC_PAN_TILT, AbsoluteSpaces, Optics, Position, Range, aim, turn_to_centre
from tests.cameras.test_ptz_api import actions, ptz_at, register
from tests.conftest import auth_headers

LENS = {"ptz_fov_wide_deg": 60.0, "ptz_fov_tele_deg": 3.0}


@pytest.fixture
def ptz_camera() -> Iterator[SimulatedPtzCamera]:
    fake = SimulatedPtzCamera(username="ptz", password="s3cret")
    yield fake
    fake.close()


def degrees_right_of_centre(x: float, fov_deg: float) -> float:
    """Where a pinhole camera `fov_deg` wide sees the picture's column `x` (0..1), in degrees right."""
    return math.degrees(math.atan((2 * x - 1) * math.tan(math.radians(fov_deg / 2))))


def test_clicking_right_of_centre_pans_right_by_the_angle_the_lens_sees_there_and_is_audited(
    ctx: Context, client: TestClient, ptz_camera: SimulatedPtzCamera
) -> None:
    register(ctx, "gate", **ptz_at(ptz_camera, **LENS))
    operator = auth_headers(ctx, "operator", "asif")

    turned = client.post("/api/cameras/gate/ptz/centre", headers=operator, json={"x": 0.75, "y": 0.5})

    assert turned.status_code == 200, turned.text
    assert turned.json()["controller"]["username"] == "asif"
    pan, tilt, zoom = ptz_camera.view()
    # The generic space's -1..1 turns through 360°: one unit is 180°.
    assert pan == pytest.approx(degrees_right_of_centre(0.75, 60) / 180, abs=1e-4)
    assert pan == pytest.approx(0.0895, abs=1e-4) and tilt == 0 and zoom == 0
    (row,) = actions(ctx, "camera.ptz_centre")
    assert row.actor == "asif" and row.target == "gate"
    assert row.detail["pan_deg"] == pytest.approx(16.102, abs=1e-3) and row.detail["fov_deg"] == 60
    assert row.detail["from"] == {"pan": 0, "tilt": 0, "zoom": 0}


def test_the_same_click_turns_less_at_the_longest_zoom_and_a_click_above_centre_tilts_up(
    ctx: Context, client: TestClient, ptz_camera: SimulatedPtzCamera
) -> None:
    register(ctx, "gate", **ptz_at(ptz_camera, **LENS))
    operator = auth_headers(ctx, "operator")
    client.post("/api/cameras/gate/ptz/absolute", headers=operator, json={"zoom": 1}).raise_for_status()

    client.post(
        "/api/cameras/gate/ptz/centre", headers=operator, json={"x": 0.75, "y": 0.5}
    ).raise_for_status()
    pan, _, zoom = ptz_camera.view()
    assert pan == pytest.approx(degrees_right_of_centre(0.75, 3) / 180, abs=1e-4) and zoom == 1

    client.post("/api/cameras/gate/ptz/absolute", headers=operator, json={"zoom": 0}).raise_for_status()
    body = {"x": 0.5, "y": 0.25, "aspect": 16 / 9}
    client.post("/api/cameras/gate/ptz/centre", headers=operator, json=body).raise_for_status()
    _, tilt, _ = ptz_camera.view()
    # A quarter of the way down a 16:9 picture 60° wide: atan(0.5 · tan 30° · 9/16) up; -1..1 is 180°.
    expected = math.degrees(math.atan(0.5 * math.tan(math.radians(30)) * 9 / 16)) / 90
    assert tilt == pytest.approx(expected, abs=1e-4) and tilt > 0


def test_a_click_on_a_camera_without_ptz_or_without_positions_answers_409_and_nothing_moves(
    ctx: Context, client: TestClient
) -> None:
    fixed, no_positions = SimulatedPtzCamera(ptz=False), SimulatedPtzCamera(absolute=False)
    try:
        register(ctx, "fixed", stream_url="synthetic://road/f", analysis={"onvif_url": fixed.url})
        register(ctx, "synthetic", stream_url="synthetic://road/s")
        register(ctx, "dome", stream_url="synthetic://road/d", analysis={"onvif_url": no_positions.url})
        operator = auth_headers(ctx, "operator")
        click = {"x": 0.8, "y": 0.3}

        refused = client.post("/api/cameras/fixed/ptz/centre", headers=operator, json=click)
        assert refused.status_code == 409 and refused.json()["error"] == "no_ptz"
        assert "offers no PTZ service" in refused.json()["detail"]
        no_address = client.post("/api/cameras/synthetic/ptz/centre", headers=operator, json=click)
        assert no_address.status_code == 409 and "no ONVIF address" in no_address.json()["detail"]
        unsupported = client.post("/api/cameras/dome/ptz/centre", headers=operator, json=click)
        assert unsupported.status_code == 409 and unsupported.json()["error"] == "no_absolute_ptz"
        assert "cannot be turned to a point" in unsupported.json()["detail"]
        assert "AbsoluteMove" not in no_positions.operations()
        assert actions(ctx, "camera.ptz_centre") == [] and actions(ctx, "camera.ptz_control") == []
    finally:
        fixed.close()
        no_positions.close()


def test_a_camera_that_does_not_say_where_it_points_answers_409(
    ctx: Context, client: TestClient, ptz_camera: SimulatedPtzCamera
) -> None:
    register(ctx, "gate", **ptz_at(ptz_camera))
    ptz_camera.faults["GetStatus"] = ("ter:ActionNotSupported", "GetStatus is not supported")
    answer = client.post(
        "/api/cameras/gate/ptz/centre", headers=auth_headers(ctx, "operator"), json={"x": 1, "y": 0}
    )
    assert answer.status_code == 409 and answer.json()["error"] == "ptz_position_unknown"
    assert "AbsoluteMove" not in ptz_camera.operations()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"x": 1.5, "y": 0.5}, "less than or equal to 1"),
        ({"x": -0.1, "y": 0.5}, "greater than or equal to 0"),
        ({"x": 0.5}, "y"),
        ({"x": 0.5, "y": 0.5, "aspect": 0}, "aspect"),
        ({"x": 0.5, "y": 0.5, "zoom": 1}, "zoom"),
    ],
)
def test_a_point_outside_the_picture_is_refused_with_422(
    ctx: Context, client: TestClient, ptz_camera: SimulatedPtzCamera, body: dict[str, float], says: str
) -> None:
    register(ctx, "gate", **ptz_at(ptz_camera))
    answer = client.post("/api/cameras/gate/ptz/centre", headers=auth_headers(ctx, "operator"), json=body)
    assert answer.status_code == 422 and says in answer.text, answer.text
    assert ptz_camera.operations() == []


def test_only_roles_that_may_move_cameras_can_centre_them(
    ctx: Context, client: TestClient, ptz_camera: SimulatedPtzCamera
) -> None:
    register(ctx, "gate", **ptz_at(ptz_camera))
    for role in ("traffic_officer", "auditor", "investigator"):
        answer = client.post(
            "/api/cameras/gate/ptz/centre", headers=auth_headers(ctx, role), json={"x": 1, "y": 1}
        )
        assert answer.status_code == 403
    assert ptz_camera.operations() == []


GENERIC = AbsoluteSpaces(pan_tilt_space=GENERIC_PAN_TILT, pan=Range(-1, 1), tilt=Range(-1, 1))


def test_a_pan_past_the_end_of_a_camera_that_turns_all_the_way_round_wraps() -> None:
    to = aim(Position(0.95, 0.0), GENERIC, Optics(60, 3), pan_deg=18, tilt_deg=0)
    assert to.pan == pytest.approx(-0.95)  # 0.95 + 0.1 is 189° round, i.e. -171°


def test_a_camera_with_limits_or_less_than_a_full_turn_stops_at_its_ends() -> None:
    limited = AbsoluteSpaces(pan_tilt_space=GENERIC_PAN_TILT, pan=Range(-0.5, 0.5), tilt=Range(-1, 0))
    to = aim(Position(0.45, -0.05), limited, Optics(60, 3), pan_deg=18, tilt_deg=9)
    assert (to.pan, to.tilt) == (0.5, 0.0)
    half_turn = aim(Position(0.95, 0.0), GENERIC, Optics(60, 3, pan_span_deg=340), pan_deg=18, tilt_deg=0)
    assert half_turn.pan == 1.0


def test_the_degrees_a_camera_turns_come_from_its_degrees_space_unless_its_settings_say() -> None:
    narrow = AbsoluteSpaces(
        pan_tilt_space=GENERIC_PAN_TILT,
        pan=Range(-1, 1),
        tilt=Range(-1, 1),
        degrees=(Range(-170, 170), Range(-45, 45)),
    )
    to = aim(Position(0.0, 0.0), narrow, Optics(60, 3), pan_deg=34, tilt_deg=9)
    assert (to.pan, to.tilt) == pytest.approx((0.2, 0.2))  # 34° of 340°, 9° of 90°, over -1..1
    told = aim(Position(0.0, 0.0), narrow, Optics(60, 3, 360, 180), pan_deg=36, tilt_deg=9)
    assert (told.pan, told.tilt) == pytest.approx((0.2, 0.1))


def test_the_centre_of_the_picture_is_no_turn_and_a_corner_is_half_the_field_of_view_across() -> None:
    assert turn_to_centre(0.5, 0.5, fov_deg=60, aspect=16 / 9) == (0.0, 0.0)
    right, up = turn_to_centre(1.0, 0.5, fov_deg=60, aspect=16 / 9)
    assert right == pytest.approx(30.0) and up == 0
    assert Optics(60, 3).fov_at(0) == pytest.approx(60) and Optics(60, 3).fov_at(1) == pytest.approx(3)
    assert 3 < Optics(60, 3).fov_at(0.5) < 31.5  # the focal length, not the angle, goes linearly


def test_a_lens_whose_longest_zoom_sees_more_than_its_widest_is_refused_naming_both() -> None:
    with pytest.raises(ValidationError, match=r"ptz_fov_tele_deg .*wider than ptz_fov_wide_deg"):
        AnalysisSettings.model_validate({"ptz_fov_wide_deg": 40, "ptz_fov_tele_deg": 50})
    assert AnalysisSettings().ptz_fov_wide_deg == 60 and AnalysisSettings().ptz_pan_span_deg is None
