"""Specification of the face pipeline: detection, quality rules, enrolment refusals, matching and voting."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from safecity.core.errors import InvalidInput
from safecity.vision.faces import (
    DEFAULT_THRESHOLD,
    DlibHogDetector,
    Face,
    FaceVoter,
    default_pipeline,
    enrolment_face,
    quality_check,
    similarity,
)
from safecity.vision.faces.pipeline import THRESHOLDS
from tests.conftest import SHARED_DATA

FACES = SHARED_DATA / "faces"
needs_faces = pytest.mark.skipif(not FACES.is_dir(), reason=f"shared face data not found at {FACES}")


def photo(relative: str) -> np.ndarray:
    image = cv2.imread(str(FACES / relative))
    assert image is not None, relative
    return image


def made_face(size_px: int = 120, sharpness: float = 0.3, yaw: float = 0.0) -> Face:
    return Face(
        box=(0, 0, size_px, size_px),
        score=1.0,
        landmarks=np.zeros((5, 2), dtype=np.float32),
        embedding=np.ones(128, dtype=np.float32) / np.sqrt(128),
        crop=np.zeros((150, 150, 3), dtype=np.uint8),
        size_px=size_px,
        sharpness=sharpness,
        yaw=yaw,
    )


def test_similarity_is_the_cosine_clipped_to_0_1() -> None:
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert similarity(a, a) == pytest.approx(1.0)
    assert similarity(a, b) == pytest.approx(0.0)
    assert similarity(a, -a) == 0.0
    assert similarity(a, np.array([0.6, 0.8])) == pytest.approx(0.6)
    assert similarity(3 * a, a) == pytest.approx(1.0)  # length does not matter
    assert THRESHOLDS["mobilefacenet"] == DEFAULT_THRESHOLD and 0 < DEFAULT_THRESHOLD < 1
    assert 0.8 < THRESHOLDS["dlib"] < 1.0  # dlib's embeddings lie in a narrow cone


def test_quality_check_names_the_reason_to_refuse() -> None:
    assert quality_check(made_face()) is None
    assert quality_check(made_face(size_px=16)) == "face too small: 16 px, need ≥ 24"
    assert quality_check(made_face(size_px=60), enrolment=True) == "face too small: 60 px, need ≥ 80"
    assert "too blurred" in (quality_check(made_face(sharpness=0.01)) or "")
    assert "turned away" in (quality_check(made_face(yaw=0.5)) or "")


def test_enrolment_refuses_a_photo_without_a_face() -> None:
    blank = np.full((900, 900, 3), 127, dtype=np.uint8)  # large: skips the slow small-image fallbacks
    cv2.circle(blank, (450, 450), 160, (30, 60, 200), -1)
    with pytest.raises(InvalidInput, match="no face found"):
        enrolment_face(blank)


def test_enrolment_refuses_a_thumbnail() -> None:
    with pytest.raises(InvalidInput, match="photo too small: 60×50 px"):
        enrolment_face(np.zeros((50, 60, 3), dtype=np.uint8))


def test_voter_decides_once_when_enough_frames_agree() -> None:
    voter = FaceVoter(threshold=0.8, min_votes=3)
    assert voter.update(7, "wanted", 0.85) is None
    assert voter.update(7, None, 0.0) is None  # a frame without a match does not count against
    assert voter.update(7, "wanted", 0.79) is None  # below threshold: not a vote
    assert voter.update(7, "wanted", 0.90) is None
    decision = voter.update(7, "wanted", 0.88)
    assert decision is not None
    assert (decision.entry_id, decision.votes, decision.frames) == ("wanted", 3, 5)
    assert decision.similarity == pytest.approx(0.90)
    assert voter.update(7, "wanted", 0.95) is None  # decided tracks stay quiet


def test_voter_waits_while_a_track_flips_between_entries() -> None:
    voter = FaceVoter(threshold=0.8, min_votes=3, min_share=0.7)
    assert all(voter.update(1, entry, 0.9) is None for entry in ["a", "b", "a", "b", "a", "b"])
    assert [voter.update(1, "a", 0.9) for _ in range(3)] == [None, None, None]  # a leads 6 of 9: < 70%
    decision = voter.update(1, "a", 0.9)  # 7 of 10
    assert decision is not None and decision.entry_id == "a" and decision.votes == 7
    assert voter.update(2, "a", 0.9) is None  # another track starts from nothing


@needs_faces
@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("detector", "encoder", "dim", "crop"),
    [("blazeface", "mobilefacenet", 192, 112), ("dlib", "dlib", 128, 150)],
)
def test_same_person_matches_and_different_people_do_not(
    detector: str, encoder: str, dim: int, crop: int
) -> None:
    pipeline = default_pipeline(detector=detector, encoder=encoder)
    obama_1 = pipeline.faces(photo("images/face_recognition/obama_1.jpg"))
    obama_2 = pipeline.faces(photo("images/face_recognition/obama_2.jpg"))
    biden = pipeline.faces(photo("images/face_recognition/biden_2.jpg"))
    assert len(obama_1) == len(obama_2) == len(biden) == 1
    face = obama_1[0]
    assert face.embedding.dtype == np.float32 and face.embedding.shape == (dim,)
    assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-5)
    assert face.crop.shape == (crop, crop, 3)
    assert similarity(face, obama_2[0]) >= pipeline.threshold
    assert similarity(face, biden[0]) < pipeline.threshold


@needs_faces
@pytest.mark.shared_data
def test_street_camera_faces_are_found_and_matched_to_the_watch_list_photo() -> None:
    pipeline = default_pipeline()
    missed_by_plain_hog = pipeline.faces(photo("cctv/images/face_recognition/biden_1.jpg"))
    assert len(missed_by_plain_hog) == 1 and missed_by_plain_hog[0].size_px < 60
    probe = pipeline.faces(photo("cctv/images/face_recognition/obama_4.jpg"))[0]  # 40 px, blurred, JPEG 35
    assert probe.size_px < 60
    assert (
        similarity(probe, pipeline.faces(photo("images/face_recognition/obama_1.jpg"))[0])
        >= DEFAULT_THRESHOLD
    )
    assert (
        similarity(probe, pipeline.faces(photo("images/face_recognition/biden_2.jpg"))[0]) < DEFAULT_THRESHOLD
    )


@needs_faces
@pytest.mark.shared_data
def test_enrolment_refuses_two_faces_a_small_face_and_a_blurred_photo() -> None:
    face = photo("images/face_recognition/obama_4.jpg")  # 240×320, one face ~104 px
    with pytest.raises(InvalidInput, match="2 faces found"):
        enrolment_face(np.hstack([face, face]))
    small = cv2.copyMakeBorder(
        cv2.resize(face, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
        60,
        60,
        60,
        60,
        cv2.BORDER_REPLICATE,
    )
    with pytest.raises(InvalidInput, match=r"face too small: \d+ px, need ≥ 80"):
        enrolment_face(small)
    with pytest.raises(InvalidInput, match="too blurred"):
        enrolment_face(cv2.GaussianBlur(face, (0, 0), 2.5))


@needs_faces
@pytest.mark.shared_data
def test_a_tight_face_crop_and_a_small_face_in_a_frame_are_both_found() -> None:
    pipeline = default_pipeline()
    image = photo("images/face_recognition/obama_4.jpg")
    x, y, w, h = pipeline.faces(image)[0].box
    tight = image[y : y + h, x : x + w]  # no margin at all around the face
    assert len(pipeline.faces(tight)) == 1
    probe = photo("cctv/images/face_recognition/obama_2.jpg")
    frame = cv2.copyMakeBorder(probe, 200, 200, 400, 400, cv2.BORDER_CONSTANT, value=(90, 90, 90))
    found = DlibHogDetector(upsample=1).detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    assert len(found) == 1 and found[0].width < 60
