"""The NanoDet object detector: decoding, letterboxing back to frame pixels, NMS, the shipped model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest
import supervision as sv

from safecity.core.errors import InvalidInput
from safecity.vision.objects import (
    COCO_CLASSES,
    NANODET_BINS,
    SECOND_LOOK_PAD,
    VEHICLE_CLASSES,
    MotionGatedDetector,
    NanoDetDetector,
    anchor_centres,
    class_ids,
    class_nms,
    decode_nanodet,
    default_thresholds,
    smoke_image,
)
from tests.conftest import need_shared_data

CAR = COCO_CLASSES.index("car")
PERSON = COCO_CLASSES.index("person")


def peaked(bins: list[float]) -> np.ndarray:
    """Distance logits whose distribution sits (almost) all on one bin per side: left, top, right, bottom."""
    logits = np.full((4, NANODET_BINS), -30.0, np.float32)
    for side, b in enumerate(bins):
        logits[side, int(b)] = 30.0
    return logits.reshape(-1)


def test_anchor_centres_sit_in_the_middle_of_each_cell_row_by_row() -> None:
    centres, strides = anchor_centres(64, 96)
    assert len(centres) == 8 * 12 + 4 * 6 + 2 * 3
    assert centres[0].tolist() == [4.0, 4.0] and centres[1].tolist() == [12.0, 4.0]
    assert centres[12].tolist() == [4.0, 12.0]  # second row of the stride-8 grid
    assert centres[96].tolist() == [8.0, 8.0] and strides[96] == 16
    assert strides[-1] == 32


def test_decoding_turns_bin_distributions_into_a_box_around_the_anchor() -> None:
    centres, strides = anchor_centres(64, 64)
    scores = np.zeros((len(centres), 80), np.float32)
    distances = np.zeros((len(centres), 4 * NANODET_BINS), np.float32)
    anchor = 2 * 8 + 3  # stride 8, row 2, column 3: centre (28, 20)
    scores[anchor, CAR] = 0.9
    distances[anchor] = peaked([2, 1, 3, 4])  # 16 left, 8 up, 24 right, 32 down
    xyxy, score, cls = decode_nanodet(scores, distances, centres, strides, min_score=0.5)
    assert cls.tolist() == [CAR] and score.tolist() == pytest.approx([0.9])
    assert xyxy[0].tolist() == pytest.approx([12.0, 12.0, 52.0, 52.0], abs=1e-3)


def test_decoding_takes_the_mean_of_the_distribution_and_one_threshold_per_class() -> None:
    centres, strides = anchor_centres(32, 32)
    scores = np.zeros((len(centres), 80), np.float32)
    distances = np.full((len(centres), 4 * NANODET_BINS), -30.0, np.float32)
    scores[0, CAR], scores[0, PERSON] = 0.4, 0.4
    # Half on bin 1, half on bin 2: 1.5 strides on each side of the stride-8 anchor at (4, 4).
    for side in range(4):
        distances[0, side * NANODET_BINS + 1] = distances[0, side * NANODET_BINS + 2] = 5.0
    thresholds = np.full(80, 0.5, np.float32)
    thresholds[CAR] = 0.3
    xyxy, _, cls = decode_nanodet(scores, distances, centres, strides, min_score=thresholds)
    assert cls.tolist() == [CAR]
    assert xyxy[0].tolist() == pytest.approx([-8.0, -8.0, 16.0, 16.0], abs=1e-3)
    _, _, only_people = decode_nanodet(
        scores, distances, centres, strides, min_score=0.1, classes=np.array([PERSON])
    )
    assert only_people.tolist() == [PERSON]


def test_class_wise_nms_keeps_one_box_per_object_and_class() -> None:
    xyxy = np.array([[0, 0, 10, 20], [1, 0, 11, 20], [0, 0, 10, 20], [0, 0, 10, 9]], np.float32)
    score = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    cls = np.array([PERSON, PERSON, CAR, PERSON])
    assert class_nms(xyxy, score, cls, 0.6).tolist() == [0, 2, 3]
    # With tiles, the half of a person cut by a tile edge goes with the whole person.
    assert class_nms(xyxy, score, cls, 0.6, inside=0.7).tolist() == [0, 2]


def test_unknown_class_names_are_refused_with_the_names_to_use() -> None:
    assert class_ids(["car", "Person", "traffic_light"]).tolist() == [0, 2, 9]  # type: ignore[union-attr]
    with pytest.raises(InvalidInput, match="'lorry'") as caught:
        class_ids(["car", "lorry"])
    assert "truck" in str(caught.value)


def test_vehicles_and_people_have_fitted_thresholds() -> None:
    thresholds = default_thresholds()
    assert thresholds[CAR] == thresholds[COCO_CLASSES.index("bus")] < 1
    assert 0 < thresholds[PERSON] < 1 and thresholds[COCO_CLASSES.index("handbag")] == thresholds[PERSON]
    assert default_thresholds(352)[PERSON] == default_thresholds(320)[PERSON]  # the nearest size fitted
    assert default_thresholds(416, tiled=True)[PERSON] != thresholds[PERSON]


class OneCarSession:
    """Stands in for the model: one car 64 x 48 input pixels at the first stride-8 anchor of row 3."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        batch = feeds["image"]
        self.shapes.append(batch.shape)
        n, _, h, w = batch.shape
        outputs = []
        for kind in ("cls", "box"):
            for stride in (8, 16, 32):
                cells = (h // stride) * (w // stride)
                out = np.zeros((n, cells, 80 if kind == "cls" else 4 * NANODET_BINS), np.float32)
                if stride == 8:
                    cols = w // 8
                    if kind == "cls":
                        out[:, 3 * cols, CAR] = 0.8
                    else:
                        out[:, 3 * cols] = peaked([0, 0, 8, 6])  # from its centre (4, 28) to (68, 76)
                outputs.append(out)
        return outputs


def test_boxes_come_back_in_the_pixels_of_the_original_frame() -> None:
    session = OneCarSession()
    detector = NanoDetDetector(session=session, classes=VEHICLE_CLASSES, input_size=416)  # type: ignore[arg-type]
    frame = np.zeros((480, 832, 3), np.uint8)  # scaled by 0.5 to 416 x 240, padded to 416 x 256
    found = detector.detect(frame)
    assert session.shapes == [(1, 3, 256, 416)]
    assert found.data["class_name"].tolist() == ["car"]
    # Input box (4 - 0, 28 - 0, 4 + 64, 28 + 48) at scale 0.5.
    assert found.xyxy[0].tolist() == pytest.approx([8.0, 56.0, 136.0, 152.0], abs=1e-3)


def test_frames_of_one_shape_run_as_one_batch_and_tiles_add_views() -> None:
    session = OneCarSession()
    detector = NanoDetDetector(session=session, input_size=416)  # type: ignore[arg-type]
    results = detector.detect_many([np.zeros((480, 640, 3), np.uint8)] * 3)
    assert session.shapes == [(3, 3, 320, 416)] and [len(r) for r in results] == [1, 1, 1]
    tiled = NanoDetDetector(session=session, tiles=(2, 2))  # type: ignore[arg-type]
    session.shapes.clear()
    tiled.detect(np.zeros((480, 640, 3), np.uint8))
    assert sum(shape[0] for shape in session.shapes) == 5  # the whole frame and four tiles


class CarOnlyWhenZoomedOutSession:
    """Stands in for the model: sees a car only in a picture with a grey border (the zoomed-out copy).

    The car is the stride-8 anchor of row 12, column 16 (centre (132, 100) input pixels), reaching 6
    strides out (from (84, 52) to (180, 148)); both looks see a person at the first anchor ((4, 4) to
    (20, 36) input pixels). `everywhere=True`: in every look, a car at row 10, column 10 (centre
    (84, 84)) reaching 10 strides out each way. `reach`: the zoomed-out car's strides out instead of 6.
    """

    def __init__(self, everywhere: bool = False, reach: int = 6) -> None:
        self.shapes: list[tuple[int, ...]] = []
        self.everywhere = everywhere
        self.reach = reach

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        batch = feeds["image"]
        self.shapes.append(batch.shape)
        n, _, h, w = batch.shape
        outputs = []
        for kind in ("cls", "box"):
            for stride in (8, 16, 32):
                out = np.zeros((n, (h // stride) * (w // stride), 80 if kind == "cls" else 4 * NANODET_BINS))
                if stride == 8:
                    anchor = 10 * (w // 8) + 10 if self.everywhere else 12 * (w // 8) + 16
                    for row in range(n):
                        grey_border = abs(float(batch[row, 0, 2, 2]) - (114 - 103.53) / 57.375) < 1e-3
                        if kind == "cls":
                            out[row, anchor, CAR] = 0.9 if grey_border or self.everywhere else 0.0
                            out[row, 0, PERSON] = 0.8
                        else:
                            out[row, anchor] = peaked([10 if self.everywhere else self.reach] * 4)
                            out[row, 0] = peaked([0, 0, 2, 4])
                outputs.append(out.astype(np.float32))
        return outputs


def test_a_second_look_at_a_zoomed_out_copy_finds_the_vehicle_in_original_pixels() -> None:
    session = CarOnlyWhenZoomedOutSession()
    detector = NanoDetDetector(session=session, input_size=320, second_look=True)  # type: ignore[arg-type]
    frame = np.full((200, 320, 3), 60, np.uint8)
    found = detector.detect(frame)
    # The first look (320 x 200 at scale 1, padded to 224) found no vehicle, so the frame was padded by
    # 96 and 60 pixels on each side (512 x 320), scaled by 320 / 512 to 320 x 200, and looked at again.
    assert session.shapes == [(1, 3, 224, 320), (1, 3, 224, 320)] and detector.second_looks == 1
    px, py, scale = round(SECOND_LOOK_PAD * 320), round(SECOND_LOOK_PAD * 200), 320 / 512
    cars = found.xyxy[found.data["class_name"] == "car"]
    expected = [84 / scale - px, 52 / scale - py, 180 / scale - px, 148 / scale - py]
    assert cars.tolist() == [pytest.approx(expected, abs=1e-3)]  # (38.4, 23.2) to (192, 176.8)
    # The person comes from the first look only: the zoomed-out copy adds vehicles, nothing else.
    assert found.xyxy[found.data["class_name"] == "person"].tolist() == [pytest.approx([4, 4, 20, 36])]


def test_the_second_look_keeps_only_vehicles_large_in_the_frame() -> None:
    session: Any = CarOnlyWhenZoomedOutSession(reach=2)  # 32 x 32 input pixels: 51 x 51 of 320 x 200
    found = NanoDetDetector(session=session, input_size=320, second_look=True).detect(
        np.full((200, 320, 3), 60, np.uint8)
    )
    assert len(session.shapes) == 2 and "car" not in found.data["class_name"].tolist()


def test_no_second_look_when_a_large_vehicle_was_found_or_none_was_asked_for() -> None:
    filled: Any = CarOnlyWhenZoomedOutSession(everywhere=True)
    big_car = NanoDetDetector(session=filled, input_size=160, second_look=True)
    big_car.detect(np.zeros((100, 160, 3), np.uint8))  # the car: (4, 4) to (160, 100), 94% of the frame
    assert big_car.second_looks == 0 and len(filled.shapes) == 1
    session: Any = OneCarSession()
    people = NanoDetDetector(session=session, classes=["person"], second_look=True)
    people.detect(np.zeros((480, 640, 3), np.uint8))
    assert people.second_looks == 0 and len(session.shapes) == 1
    small_car = NanoDetDetector(session=session, input_size=416, second_look=True)
    small_car.detect(np.zeros((480, 640, 3), np.uint8))  # a car of 64 x 48 in 416 x 312: too small
    assert small_car.second_looks == 1 and len(session.shapes) == 3


def test_a_head_and_shoulders_box_inside_a_person_is_the_same_person_but_cars_stay_apart() -> None:
    session: Any = OneCarSession()
    detector = NanoDetDetector(session=session)
    whole, part, beside = [100, 100, 140, 200], [104, 98, 138, 140], [150, 100, 190, 200]
    parts = [
        (
            np.array([whole, part, beside, whole, part], np.float32),
            np.array([0.9, 0.6, 0.5, 0.9, 0.6], np.float32),
            np.array([PERSON, PERSON, PERSON, CAR, CAR]),
        )
    ]
    merged = detector._merge(parts, (480, 640))
    assert sorted(merged.data["class_name"].tolist()) == ["car", "car", "person", "person"]
    plain = NanoDetDetector(session=session, merge_person_parts=False)._merge(parts, (480, 640))
    assert (plain.data["class_name"] == "person").sum() == 3


def test_bad_options_are_refused() -> None:
    session: Any = OneCarSession()
    for options in ({"input_size": 400}, {"min_confidence": 0.0}, {"tiles": (0, 2)}):
        with pytest.raises(InvalidInput):
            NanoDetDetector(session=session, **options)
    with pytest.raises(InvalidInput, match="BGR colour image"):
        NanoDetDetector(session=session).detect(np.zeros((10, 10), np.uint8))


class StaticDetector:
    """Always finds the same two cars: one where the test moves a block, one parked."""

    def detect(self, image: np.ndarray) -> sv.Detections:
        return sv.Detections(
            xyxy=np.array([[100, 100, 200, 180], [400, 100, 500, 180]], np.float32),
            confidence=np.array([0.9, 0.9], np.float32),
            class_id=np.array([CAR, CAR]),
        )


def test_the_motion_gate_runs_the_model_only_on_motion_and_keeps_what_moved() -> None:
    gated = MotionGatedDetector(StaticDetector())
    background = np.full((360, 640, 3), 90, np.uint8)
    for _ in range(30):
        assert len(gated.detect(background)) == 0
    assert gated.detected == 0
    moved = background.copy()
    cv2.rectangle(moved, (110, 105), (195, 175), (30, 30, 200), -1)
    found = gated.detect(moved)
    assert gated.detected == 1 and found.xyxy.tolist() == [[100, 100, 200, 180]]


@pytest.fixture(scope="module")
def detector() -> Iterator[NanoDetDetector]:
    yield NanoDetDetector()


def test_the_shipped_model_runs_on_a_built_in_picture(detector: NanoDetDetector) -> None:
    image = smoke_image()
    one = detector.detect(image)
    batch = detector.detect_many([image, image[:, ::-1].copy()])
    assert len(batch) == 2 and len(batch[0]) == len(one)
    assert np.allclose(batch[0].xyxy, one.xyxy, atol=1e-3)
    assert set(one.data["class_name"]) <= set(COCO_CLASSES)


@pytest.mark.shared_data
def test_on_real_photos_the_car_holds_its_plate_and_the_mall_has_people(detector: NanoDetDetector) -> None:
    photo = need_shared_data("plates", "us", "0b86cecf-67d1-4fc0-87c9-b36b0ee228bb.jpg")
    label = photo.with_suffix(".txt").read_text().split("\t")
    x, y, w, h = (float(v) for v in label[1:5])
    found = detector.detect(cv2.imread(str(photo)))
    cars = found.xyxy[found.data["class_name"] == "car"]
    assert any(x1 <= x and y1 <= y and x + w <= x2 and y + h <= y2 for x1, y1, x2, y2 in cars)
    mall = need_shared_data("crowd", "mall", "seq_000001.jpg")
    people = detector.detect(cv2.imread(str(mall)))
    assert (people.data["class_name"] == "person").sum() >= 10


def test_every_detector_in_a_process_shares_one_session_safely_across_threads(
    detector: NanoDetDetector,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sensitive = NanoDetDetector(min_confidence=0.1)  # the built-in picture's faint objects, to compare
    assert sensitive.session is detector.session
    image = smoke_image()
    expected = sensitive.detect(image).xyxy
    assert len(expected) > 5
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: sensitive.detect(image).xyxy, range(8)))
    assert all(r.shape == expected.shape and np.allclose(r, expected, atol=1e-4) for r in results)
