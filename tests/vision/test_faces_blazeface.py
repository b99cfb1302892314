"""Specification of the BlazeFace detector: small faces in whole frames, keypoints, passes, speed limits.

Frames are drawn here (a street-like backdrop with drawn faces pasted in at known places and sizes):
BlazeFace finds a plain drawn face, so recall and keypoints can be checked without any photo.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from safecity.vision.faces.blazeface import BlazeFaceDetector
from safecity.vision.faces.face import FaceBox
from safecity.vision.faces.onnx_models import drawn_face
from safecity.vision.faces.quality import yaw
from tests.conftest import need_shared_data

Image = npt.NDArray[np.uint8]
FACE_WIDTH_IN_DRAWING = 76  # the drawn face's oval is 76 px wide on its 192 px canvas


@pytest.fixture(scope="module")
def detector() -> Iterator[BlazeFaceDetector]:
    yield BlazeFaceDetector(min_face_px=20)


def street(width: int = 1280, height: int = 720, seed: int = 3) -> Image:
    """A backdrop of a gradient sky and random blocks (walls, cars, signs), with no face in it."""
    rng = np.random.default_rng(seed)
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    frame[:] = np.linspace(60, 180, width, dtype=np.uint8)[None, :, None]
    for _ in range(60):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(20, 220)), int(rng.integers(10, 140))
        cv2.rectangle(frame, (x, y), (x + w, y + h), rng.integers(0, 255, 3).tolist(), -1)
    return frame


def paste(frame: Image, faces: list[tuple[int, int, int]]) -> list[tuple[float, float, int]]:
    """Pastes a drawn face `size` px wide at each (x, y); returns each face's centre and size."""
    truth = []
    for x, y, size in faces:
        scale = size / FACE_WIDTH_IN_DRAWING
        patch = cv2.resize(drawn_face(), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frame[y : y + patch.shape[0], x : x + patch.shape[1]] = patch
        truth.append((x + patch.shape[1] / 2, y + 100 * scale, size))
    return truth


def found_at(faces: list[FaceBox], cx: float, cy: float, size: int) -> FaceBox | None:
    for face in faces:
        fx, fy = face.box[0] + face.box[2] / 2, face.box[1] + face.box[3] / 2
        if abs(fx - cx) < size / 2 and abs(fy - cy) < size / 2:
            return face
    return None


def test_faces_of_20_to_40_px_are_found_in_a_whole_720p_frame(detector: BlazeFaceDetector) -> None:
    frame = street()
    truth = paste(frame, [(60 + 150 * i, 80 + 90 * (i % 3), size) for i, size in enumerate(range(20, 44, 4))])
    faces = detector.detect(frame)
    assert all(found_at(faces, *t) is not None for t in truth), [f.box for f in faces]
    assert len(faces) == len(truth)  # and nothing in the blocks and gradients is taken for a face
    for face, (_, _, size) in zip(sorted(faces, key=lambda f: f.box[0]), truth, strict=True):
        assert 0.8 < face.box[2] / size < 1.6  # the box is the face's own size, not a tile's


def test_one_pass_alone_misses_small_faces_the_fine_pass_finds(detector: BlazeFaceDetector) -> None:
    frame = street(seed=5)
    truth = paste(frame, [(300, 300, 22), (800, 200, 26)])
    coarse = BlazeFaceDetector(min_face_px=60, session=detector._session)  # as if letterboxed whole
    assert not any(found_at(coarse.detect(frame), *t) for t in truth)
    assert all(found_at(detector.detect(frame), *t) for t in truth)


def test_large_faces_are_found_by_the_coarse_passes_beside_small_ones(detector: BlazeFaceDetector) -> None:
    frame = street(seed=7)
    truth = paste(frame, [(100, 100, 24), (500, 150, 200), (1000, 400, 90)])
    assert len(detector.scales(1280, 720)) >= 2
    faces = detector.detect(frame)
    assert all(found_at(faces, *t) for t in truth), [f.box for f in faces]


@pytest.mark.parametrize("refine", [False, True])
def test_keypoints_and_landmarks_sit_on_the_eyes_nose_and_mouth(
    detector: BlazeFaceDetector, refine: bool
) -> None:
    frame = street(seed=9)
    ((_, _, size),) = paste(frame, [(600, 300, 120)])
    (face,) = BlazeFaceDetector(refine=refine, session=detector._session).detect(frame)
    scale = size / FACE_WIDTH_IN_DRAWING
    left, top = 600, 300
    eyes = sorted(face.keypoints[0:2].tolist()) if face.keypoints is not None else []
    for (x, y), drawn_x in zip(eyes, (80, 112), strict=True):  # the drawing's eyes at (80, 90), (112, 90)
        assert abs(x - (left + drawn_x * scale)) < 0.1 * size and abs(y - (top + 90 * scale)) < 0.1 * size
    assert (
        face.keypoints is not None and face.keypoints[3][1] > face.keypoints[2][1] > eyes[0][1]
    )  # mouth below nose
    assert face.landmarks is not None and face.landmarks.shape == (5, 2)
    assert abs(yaw(face.landmarks)) < 0.15  # a frontal face reads as frontal to the quality rules


def test_an_empty_frame_a_tiny_image_and_a_tight_crop(detector: BlazeFaceDetector) -> None:
    assert detector.detect(street(seed=11)) == []
    assert detector.detect(np.zeros((10, 12, 3), dtype=np.uint8)) == []
    tight = drawn_face(192)[40:170, 48:144]  # the face with no margin around it
    assert len(detector.detect(np.ascontiguousarray(tight))) == 1


def test_passes_are_a_quarter_apart_until_no_face_can_be_too_large(detector: BlazeFaceDetector) -> None:
    assert detector.scales(1280, 720) == pytest.approx([0.7, 0.175, 0.04375])  # 720 px short side
    assert detector.scales(1920, 1080) == pytest.approx([0.7, 0.175, 0.04375])
    assert detector.scales(120, 100) == pytest.approx([0.7])
    assert BlazeFaceDetector(min_face_px=10, session=detector._session).scales(480, 270) == pytest.approx(
        [1.4, 0.35]
    )


@pytest.mark.shared_data
def test_every_cctv_probe_has_its_face_found(detector: BlazeFaceDetector) -> None:
    probes = sorted(need_shared_data("faces", "cctv", "images").rglob("*.jpg"))
    missed = []
    for path in probes:
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        if not detector.detect(image):
            missed.append(path.name)
    assert len(probes) == 41 and missed == []
