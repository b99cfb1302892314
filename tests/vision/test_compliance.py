"""Helmets and seat belts: riders paired with motorcycles, heads and windscreens cut out, judged, voted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from safecity.core.errors import InvalidInput
from safecity.vision import compliance, plugins, registry
from safecity.vision.compliance import (
    ComplianceCheck,
    ComplianceVoter,
    head_regions,
    judge_for,
    pair_riders,
    windscreen_regions,
)
from tests.vision.compliance_models import (
    CAR_BOX,
    MOTORCYCLE_BOX,
    PEDESTRIAN_BOX,
    RIDER_BOX,
    detections,
    detector_onnx,
    install_classifier,
    street,
)

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def plugin_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty plug-in folder of this test's own: nothing installed until the test installs it."""
    folder = tmp_path / "models"
    monkeypatch.setenv("SAFECITY_MODELS_DIR", str(folder))
    registry.forget_sessions()
    yield folder
    registry.forget_sessions()


def boxes(*items: tuple[int, int, int, int]) -> np.ndarray:
    return np.array(items, np.float32)


def test_a_rider_pairs_with_the_motorcycle_under_them_and_a_pedestrian_beside_it_does_not() -> None:
    persons = boxes(RIDER_BOX, PEDESTRIAN_BOX, (205, 20, 245, 120))  # rider, pedestrian, someone far above
    motorcycles = boxes(MOTORCYCLE_BOX, (600, 300, 700, 380))
    assert pair_riders(persons, motorcycles).tolist() == [0, -1, -1]
    assert pair_riders(persons, boxes()).tolist() == [-1, -1, -1]
    assert pair_riders(boxes(), motorcycles).tolist() == []


def test_a_pillion_rider_pairs_with_the_same_motorcycle() -> None:
    driver, pillion = (225, 150, 285, 330), (255, 140, 315, 335)
    assert pair_riders(boxes(driver, pillion), boxes(MOTORCYCLE_BOX)).tolist() == [0, 0]


def test_the_head_is_the_top_of_the_rider_and_the_windscreen_a_band_of_the_vehicle() -> None:
    (head,) = head_regions(boxes((100, 100, 160, 300)))
    # top 30% of a 200 px rider is 60 px; the middle 70% of 60 px is 42 px: the square takes 60.
    assert head.tolist() == pytest.approx([100.0, 100.0, 160.0, 160.0])
    car, bus = windscreen_regions(boxes((0, 0, 200, 100), (0, 0, 200, 100)), ["car", "bus"])
    assert car.tolist() == pytest.approx([20.0, 15.0, 180.0, 50.0])
    assert bus.tolist() == pytest.approx([20.0, 5.0, 180.0, 40.0])


def test_with_no_model_installed_nothing_judges_and_the_statement_says_how_to_install_one() -> None:
    assert judge_for("helmet") is None and judge_for("seat-belt") is None
    statement = compliance.missing_model_statement("helmet")
    assert statement.startswith("Helmet offences are not detected: no helmet model is installed")
    assert "safecity models install" in statement
    assert set(compliance.undetected_notes()) == {"helmet check", "seat-belt check"}
    with pytest.raises(InvalidInput, match="unknown compliance task"):
        judge_for("sunglasses")


def test_the_classifier_says_a_bare_head_offends_and_a_helmet_does_not(tmp_path: Path) -> None:
    install_classifier(tmp_path, "helmet-classifier")
    judge = judge_for("helmet")
    assert judge is not None and judge.model == "helmet-classifier" and judge.region == "head"
    bare = np.zeros((40, 30, 3), np.uint8)
    bare[..., 2] = 255
    helmet = np.full((40, 30, 3), 150, np.uint8)
    bare_p, helmet_p = judge.offence_probability([bare, helmet])
    assert bare_p > 0.99 and helmet_p < 0.01
    assert compliance.undetected_notes() == {
        "seat-belt check": compliance.missing_model_statement("seat-belt")
    }


def helmet_check(**options: object) -> ComplianceCheck:
    judge = judge_for("helmet")
    assert judge is not None
    return ComplianceCheck("helmet", judge, camera_id="cam-9", **options)  # type: ignore[arg-type]


def ride(check: ComplianceCheck, states: list[str], track_id: int = 7) -> None:
    """Shows the check one frame per state of a rider on a tracked motorcycle."""
    for i, state in enumerate(states):
        frame = street(riders=[(RIDER_BOX, state)])
        vehicles = detections([(MOTORCYCLE_BOX, "motorcycle")], [track_id])
        check.observe(frame, vehicles, detections([(RIDER_BOX, "person")]), T0 + timedelta(seconds=i / 5))


def test_a_rider_without_a_helmet_over_several_frames_is_a_verdict_with_the_surest_crop(
    tmp_path: Path,
) -> None:
    install_classifier(tmp_path, "helmet-classifier")
    check = helmet_check()
    ride(check, ["bare", "bare", "helmet", "bare"])
    verdict = check.finish(7)
    assert verdict is not None and verdict.offence == "no_helmet" and verdict.model == "helmet-classifier"
    assert (verdict.votes, verdict.offending_votes) == (4, 3) and 0.7 < verdict.confidence < 0.8
    assert verdict.vehicle_class == "motorcycle" and verdict.box == [200.0, 260.0, 320.0, 380.0]
    assert verdict.crop.shape[:2] == (54, 54) and verdict.crop[..., 2].mean() > 250  # the red head
    assert check.finish(7) is None  # finished once, forgotten


def test_a_helmeted_rider_is_no_verdict_and_neither_are_too_few_frames(tmp_path: Path) -> None:
    install_classifier(tmp_path, "helmet-classifier")
    check = helmet_check()
    ride(check, ["helmet"] * 5, track_id=1)
    ride(check, ["bare", "bare"], track_id=2)
    assert check.finish(1) is None and check.finish(2) is None


def test_a_motorcycle_without_a_rider_is_not_judged(tmp_path: Path) -> None:
    install_classifier(tmp_path, "helmet-classifier")
    check = helmet_check()
    for i in range(4):
        frame = street(riders=[(PEDESTRIAN_BOX, "bare")])
        check.observe(
            frame,
            detections([(MOTORCYCLE_BOX, "motorcycle")], [3]),
            detections([(PEDESTRIAN_BOX, "person")]),
            T0 + timedelta(seconds=i),
        )
    assert check.finish(3) is None


def test_votes_need_a_majority_and_a_mean_over_the_threshold() -> None:
    frame = np.zeros((10, 10, 3), np.uint8)
    voter = ComplianceVoter(threshold=0.7, min_votes=3)
    for track, probabilities in {
        1: [0.9, 0.9, 0.1, 0.1],
        2: [0.6, 0.6, 0.6],
        3: [0.95, 0.9, float("nan"), 0.8],
    }.items():
        for p in probabilities:
            voter.add(
                track,
                p,
                frame=frame,
                crop=frame,
                box=[0, 0, 1, 1],
                region=[0, 0, 1, 1],
                at=T0,
                vehicle_class="car",
            )
    assert voter.finish(1, offence="no_seat_belt", model="m") is None  # half the frames: no majority
    assert voter.finish(2, offence="no_seat_belt", model="m") is None  # a majority, but a mean under 0.7
    verdict = voter.finish(3, offence="no_seat_belt", model="m")
    assert verdict is not None and verdict.votes == 3  # NaN (nothing seen) is not a vote


def test_the_seat_belt_check_judges_each_cars_windscreen(tmp_path: Path) -> None:
    install_classifier(tmp_path, "seat-belt-classifier")
    judge = judge_for("seat-belt")
    assert judge is not None and judge.region == "windscreen"
    check = ComplianceCheck("seat-belt", judge, camera_id="cam-9")
    other = (20, 180, 260, 340)
    for i in range(3):
        frame = street(cars=[(CAR_BOX, "unbelted"), (other, "belted")])
        cars = detections([(CAR_BOX, "car"), (other, "car")], [11, 12])
        check.observe(frame, cars, detections([]), T0 + timedelta(seconds=i))
    unbelted = check.finish(11)
    assert unbelted is not None and unbelted.offence == "no_seat_belt" and unbelted.confidence > 0.99
    assert check.finish(12) is None


def test_buses_are_judged_only_when_asked(tmp_path: Path) -> None:
    install_classifier(tmp_path, "seat-belt-classifier")
    judge = judge_for("seat-belt")
    assert judge is not None
    for include, expected in ((False, None), (True, "no_seat_belt")):
        check = ComplianceCheck("seat-belt", judge, camera_id="cam-9", include_buses_and_trucks=include)
        for i in range(3):
            frame = np.full((480, 640, 3), 90, np.uint8)
            frame[185:310, 380:620] = (0, 0, 255)  # the band a cab's windscreen is looked for in
            check.observe(
                frame, detections([(CAR_BOX, "bus")], [5]), detections([]), T0 + timedelta(seconds=i)
            )
        verdict = check.finish(5)
        assert (verdict.offence if verdict else None) == expected


def test_a_detector_plug_in_finds_the_head_itself_on_the_rider_crop(tmp_path: Path) -> None:
    plugins.install("helmet-yolov12", accept_licence=True, onnx=detector_onnx(tmp_path / "helmet.onnx"))
    judge = judge_for("helmet")
    assert judge is not None and judge.model == "helmet-yolov12" and judge.region == "rider"
    bare = np.zeros((180, 70, 3), np.uint8)
    bare[..., 2] = 255
    helmet = np.zeros((180, 70, 3), np.uint8)
    bare_p, helmet_p = judge.offence_probability([bare, helmet])
    # The letterbox's grey border dilutes the crop's colour: red reads ~0.8, black ~0.15.
    assert bare_p > 0.7 and helmet_p < 0.3


def test_a_yolo_layout_detector_returns_named_classes_in_frame_pixels(tmp_path: Path) -> None:
    from safecity.vision.objects import YoloDetector

    plugins.install("helmet-yolov12", accept_licence=True, onnx=detector_onnx(tmp_path / "helmet.onnx"))
    detector = YoloDetector("helmet-yolov12", min_confidence=0.5)
    # A 320x320 frame is scaled 2x into the 640 input: the model's box (centre 320, 200; 120 square)
    # comes back at half size, centred at (160, 100).
    red = np.zeros((320, 320, 3), np.uint8)
    red[..., 2] = 255
    found = detector.detect(red)
    assert found.data["class_name"].tolist() == ["Without Helmet"]
    assert found.xyxy.tolist() == [pytest.approx([130.0, 70.0, 190.0, 130.0])]
    assert detector.detect(np.zeros((320, 320, 3), np.uint8)).data["class_name"].tolist() == ["With Helmet"]
    with pytest.raises(InvalidInput, match="has no class bicycle"):
        YoloDetector("helmet-yolov12", classes=["bicycle"])
