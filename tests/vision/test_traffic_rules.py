"""Worker-side rules: stop line during red, signal head colour, calibrated spot speed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest

from safecity.core.errors import InvalidInput
from safecity.vision.traffic import (
    SignalPhases,
    SpeedLimit,
    SpotSpeed,
    StopLineRule,
    check_geometry,
    classify_signal_head,
)

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


def _rule(phases: SignalPhases) -> StopLineRule:
    # A horizontal stop line at y=400; vehicles wait below it (y > 400) and drive up the image.
    return StopLineRule(
        ((100, 400), (500, 400)), phases, junction="J1", camera_id="cam-7", approach_point=(300, 600)
    )


def test_crossing_the_stop_line_during_red_is_a_candidate_with_the_phase_as_evidence() -> None:
    phases = SignalPhases()
    phases.set("J1", "green", at=T0)
    phases.set("J1", "red", at=T0 + timedelta(seconds=30))
    candidate = _rule(phases).check(
        5,
        (300, 410),
        (300, 390),
        T0 + timedelta(seconds=32),
        plate="ABC123",
        frames_before=["sha256:" + "a" * 64 + ".jpg"],
    )
    assert candidate is not None
    assert candidate.offence == "red_light" and candidate.plate == "ABC123"
    assert candidate.measured == 2.0
    assert candidate.detail["phase"] == "red" and candidate.detail["junction"] == "J1"


def test_crossing_during_green_or_away_from_the_line_is_not_an_offence() -> None:
    phases = SignalPhases()
    phases.set("J1", "green", at=T0)
    rule = _rule(phases)
    assert rule.check(1, (300, 410), (300, 390), T0 + timedelta(seconds=1)) is None
    assert rule.check(2, (50, 410), (50, 390), T0 + timedelta(seconds=1)) is None  # beside the line


def test_a_crossing_is_judged_by_the_phase_at_that_moment_not_the_phase_now() -> None:
    phases = SignalPhases()
    phases.set("J1", "red", at=T0 + timedelta(seconds=10))
    phases.set("J1", "green", at=T0)  # reported late, placed in time
    assert _rule(phases).check(3, (300, 410), (300, 390), T0 + timedelta(seconds=5)) is None
    assert _rule(phases).check(4, (300, 410), (300, 390), T0 + timedelta(seconds=11)) is not None


def test_vehicles_crossing_from_the_far_side_and_repeat_crossings_are_ignored() -> None:
    phases = SignalPhases()
    phases.set("J1", "red", at=T0)
    rule = _rule(phases)
    assert rule.check(8, (300, 390), (300, 410), T0 + timedelta(seconds=1)) is None  # oncoming direction
    assert rule.check(9, (300, 410), (300, 390), T0 + timedelta(seconds=1)) is not None
    assert rule.check(9, (300, 410), (300, 390), T0 + timedelta(seconds=2)) is None  # once per track


def test_a_degenerate_stop_line_is_refused() -> None:
    with pytest.raises(InvalidInput):
        StopLineRule(((1, 1), (1, 1)), SignalPhases(), junction="J", camera_id="c", approach_point=(0, 5))
    with pytest.raises(InvalidInput):
        SignalPhases().set("J", "purple", at=T0)


@pytest.mark.parametrize(
    ("bgr", "phase"), [((0, 0, 255), "red"), ((0, 255, 0), "green"), ((0, 190, 255), "amber")]
)
def test_the_signal_head_phase_is_read_from_the_lit_lamp(bgr: tuple[int, int, int], phase: str) -> None:
    frame = np.full((200, 200, 3), 30, np.uint8)
    cv2.circle(frame, (50, 50), 12, bgr, -1)
    assert classify_signal_head(frame, (30, 30, 40, 40)) == phase
    phases = SignalPhases()
    assert phases.read_head("J2", frame, (30, 30, 40, 40), at=T0) == phase
    record = phases.phase_at("J2", T0)
    assert record is not None and record.source == "camera"


def test_a_dark_signal_head_reads_as_off() -> None:
    assert classify_signal_head(np.full((100, 100, 3), 20, np.uint8), (10, 10, 30, 30)) == "off"


IMAGE = [(100, 700), (540, 700), (400, 200), (240, 200)]
GROUND = [(0, 0), (7, 0), (7, 40), (0, 40)]


def test_spot_speed_maps_image_positions_to_metres_and_gives_kmh() -> None:
    speed = SpotSpeed(IMAGE, GROUND, calibration_id=3)
    ground = np.array([[3.5, 5.0], [3.5, 15.0], [3.5, 25.0]])
    image = cv2.perspectiveTransform(ground.reshape(-1, 1, 2), np.linalg.inv(speed.homography)).reshape(-1, 2)
    times = [T0, T0 + timedelta(seconds=0.5), T0 + timedelta(seconds=1.0)]  # 20 m in 1 s: 72 km/h
    points = [(float(x), float(y)) for x, y in image]
    assert speed.speed_kmh(points, times) == pytest.approx(72.0, abs=0.1)
    limit = SpeedLimit(default_kmh=60, by_class={"bus": 50}, tolerance_kmh=5)
    candidate = speed.check(
        11, points, times, camera_id="cam-9", limit=limit, plate="XYZ9", vehicle_class="car"
    )
    assert (
        candidate is not None and candidate.measured == pytest.approx(72.0, abs=0.1) and candidate.limit == 60
    )
    assert candidate.detail["calibration"]["ground_points"][2] == [7.0, 40.0]
    assert candidate.detail["calibration_id"] == 3
    assert (
        speed.check(12, points, times, camera_id="cam-9", limit=SpeedLimit(default_kmh=70, tolerance_kmh=5))
        is None
    )


@pytest.mark.parametrize(
    ("image", "ground", "message"),
    [
        ([(0, 0), (1, 1), (2, 2), (0, 5)], GROUND, "image points 1, 2, 3 are collinear"),
        ([(100, 700), (100, 700), (400, 200), (240, 200)], GROUND, "image points 1 and 2 are the same point"),
        ([(100, 700), (540, 700), (400, 200), (396, 208)], GROUND, "nearly collinear"),
        ([(100, 700), (540, 700), (240, 200), (400, 200)], GROUND, "do not go round a convex quadrilateral"),
        (IMAGE, [(0, 0), (7, 0), (7, 40), (7, 40)], "road points 3 and 4 are the same point"),
        (IMAGE, [(0, 0), (7, 0), (7, 40), (0, float("inf"))], "four finite"),
    ],
)
def test_degenerate_calibration_points_are_refused_with_what_to_measure_again(
    image: list[tuple[float, float]], ground: list[tuple[float, float]], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        SpotSpeed(image, ground)


def test_a_reference_measurement_the_calibration_does_not_reproduce_refutes_it() -> None:
    homography = check_geometry(IMAGE, GROUND)
    ground = np.array([[[0.0, 10.0]], [[0.0, 30.0]]])
    start, end = cv2.perspectiveTransform(ground, np.linalg.inv(homography)).reshape(2, 2)
    taped = ((float(start[0]), float(start[1])), (float(end[0]), float(end[1])))
    check_geometry(IMAGE, GROUND, [(taped[0], taped[1], 20.0)])  # 20 m on the road, 20 m through it
    with pytest.raises(InvalidInput, match=r"reference measurement 1 reads 20.00 m .* 22 m were measured"):
        check_geometry(IMAGE, GROUND, [(taped[0], taped[1], 22.0)])


def test_times_not_advancing_give_no_speed() -> None:
    with pytest.raises(InvalidInput, match="do not advance"):
        SpotSpeed(IMAGE, GROUND).speed_kmh([(300, 600), (300, 500)], [T0, T0])
