"""The face pipeline: detect, judge quality, align, encode and compare faces.

    pipeline = FacePipeline()                        # dlib HOG (+ small-face fallbacks) + dlib ResNet
    faces = pipeline.faces(frame_bgr)                # list[Face], largest first
    similarity(faces[0], enrolled) >= pipeline.threshold

Similarity is the cosine of the unit-norm embeddings, clipped to 0..1. dlib's own documentation
compares raw descriptors by Euclidean distance (same person below 0.6); its descriptors all lie in a
narrow cone, so on the cosine scale different people still score 0.75-0.92 and the same person
0.89-1.0. The default threshold, 0.907, is the lowest that keeps false accepts at or under 1% on
both the sharp photo pairs (impostors reach 0.90) and the street-camera pairs (40 px, blurred,
JPEG; impostors reach 0.92) of the shared development set, measured with `bench/bench_faces.py`.
Small, blurred faces look more alike to the encoder, so the harder set sets it; the margin there
is thin (the next impostor scores 0.9069), so expect FAR near 1% on street-camera faces.

An alternative was measured and dropped: comparing at matched resolution (shrinking the sharp
photo's chip to the street face's scale before encoding) raised the street pairs' impostor scores
more than their genuine ones (TAR at FAR ≤ 1%: 0.935 against 0.961 without).
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from safecity.core.errors import InvalidInput
from safecity.vision.faces import quality
from safecity.vision.faces.detectors import DlibHogDetector, FaceDetector
from safecity.vision.faces.encoders import DLIB_THRESHOLD, DlibResnetEncoder, FaceEncoder
from safecity.vision.faces.face import Face

ImageBGR = npt.NDArray[np.uint8]

#: Match when similarity ≥ this (dlib encoder; an ONNX encoder carries its own `threshold`).
DEFAULT_THRESHOLD = DLIB_THRESHOLD


def similarity(a: Face | npt.ArrayLike, b: Face | npt.ArrayLike) -> float:
    """Returns 0..1: the cosine of two embeddings (or Faces) clipped at 0; 1 is the same face."""
    va = np.asarray(a.embedding if isinstance(a, Face) else a, dtype=np.float32).reshape(-1)
    vb = np.asarray(b.embedding if isinstance(b, Face) else b, dtype=np.float32).reshape(-1)
    cos = float(np.dot(va, vb) / (np.linalg.norm(va) * np.linalg.norm(vb) + 1e-12))
    return min(1.0, max(0.0, cos))


def quality_check(face: Face, *, enrolment: bool = False) -> str | None:
    """Returns why the face is unusable (live limits, or the stricter enrolment ones), or None."""
    if enrolment:
        return quality.refusal(
            face.size_px,
            face.sharpness,
            face.yaw,
            min_px=quality.MIN_ENROL_FACE_PX,
            min_sharpness=quality.MIN_ENROL_SHARPNESS,
        )
    return quality.refusal(
        face.size_px,
        face.sharpness,
        face.yaw,
        min_px=quality.MIN_LIVE_FACE_PX,
        min_sharpness=quality.MIN_LIVE_SHARPNESS,
    )


class FacePipeline:
    """Detects, measures and encodes every face in a BGR image.

    >>> pipeline = FacePipeline()
    >>> [face.summary() for face in pipeline.faces(core.images.read_image("photo.jpg"))]
    """

    def __init__(self, detector: FaceDetector | None = None, encoder: FaceEncoder | None = None) -> None:
        self.detector: FaceDetector = detector or DlibHogDetector()
        self.encoder: FaceEncoder = encoder or DlibResnetEncoder()
        self.threshold = float(self.encoder.threshold)

    def faces(self, image_bgr: ImageBGR) -> list[Face]:
        """Returns every face in the image, largest first, each measured and encoded."""
        image_rgb = _to_rgb(image_bgr)
        gray = np.asarray(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
        found = []
        for box in self.detector.detect(image_rgb):
            if box.landmarks is None or box.width < 8:
                continue
            embedding, crop = self.encoder.encode(image_rgb, box)
            face = Face(
                box=box.box,
                score=box.score,
                landmarks=box.landmarks,
                embedding=embedding,
                crop=np.asarray(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), dtype=np.uint8),
                size_px=box.width,
                sharpness=quality.sharpness(gray, box.box),
                yaw=quality.yaw(box.landmarks),
                source=box.source,
            )
            found.append(face)
        return sorted(found, key=lambda f: f.size_px, reverse=True)


def enrolment_face(image_bgr: ImageBGR, pipeline: FacePipeline | None = None) -> Face:
    """Returns the one usable face of a watch-list photo; raises InvalidInput saying why otherwise."""
    pipeline = pipeline or default_pipeline()
    if image_bgr is None or image_bgr.size == 0:
        raise InvalidInput("image is empty or unreadable", hint="send a JPEG or PNG photo")
    height, width = image_bgr.shape[:2]
    if min(height, width) < quality.MIN_ENROL_FACE_PX:
        raise InvalidInput(
            f"photo too small: {width}×{height} px, a face needs ≥ {quality.MIN_ENROL_FACE_PX} px",
            hint="use the original photo, not a thumbnail",
        )
    faces = pipeline.faces(image_bgr)
    if not faces:
        raise InvalidInput(
            "no face found in the photo", hint="use a frontal photo with the face clearly visible"
        )
    if len(faces) > 1:
        raise InvalidInput(
            f"{len(faces)} faces found in the photo, need exactly 1",
            hint="crop the photo to the one person to enrol",
        )
    reason = quality_check(faces[0], enrolment=True)
    if reason:
        raise InvalidInput(reason, hint="use a sharper, larger, frontal photo")
    return faces[0]


_DEFAULT: FacePipeline | None = None


def default_pipeline() -> FacePipeline:
    """Returns a process-wide FacePipeline with the default detector and encoder."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = FacePipeline()
    return _DEFAULT


def _to_rgb(image_bgr: ImageBGR) -> npt.NDArray[np.uint8]:
    """Returns a contiguous uint8 RGB copy of a BGR, BGRA or grey image."""
    if image_bgr.ndim == 2:
        return np.asarray(cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2RGB), dtype=np.uint8)
    if image_bgr.shape[2] == 4:
        return np.asarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGRA2RGB), dtype=np.uint8)
    return np.ascontiguousarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
