"""The face pipeline: detect, judge quality, align, encode, and compare faces at matching resolution.

    pipeline = FacePipeline()                      # dlib HOG + dlib ResNet
    faces = pipeline.faces(frame_bgr)              # list[Face], largest first
    score = pipeline.compare(faces[0], enrolled)   # 0..1, match when ≥ DEFAULT_THRESHOLD

Similarity is the cosine of unit-norm embeddings clipped to 0..1. For dlib's encoder, whose
embeddings are compared by Euclidean distance d in its own documentation (same person below 0.6),
cosine = 1 - d²/2: d = 0.6 is similarity 0.82, d = 0.632 is 0.80 (our default), d = 0.7 is 0.755.

Street cameras see faces 30-60 px wide, blurred and compressed, while watch-list photos are sharp
and large. A low-resolution face's embedding drifts from the same person's sharp one, but much less
from that photo shrunk to the same size. So the pipeline compares at matching resolution: when
one face is small and the other much larger, the larger face's aligned chip is shrunk to the small
face's scale (measured by eye distance), re-encoded, and the two are compared there. The same idea
serves 1:N search: `enrolment_face` adds embeddings at a few street-camera scales to every entry, and
the index keeps the best per entry.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from safecity.core.errors import InvalidInput
from safecity.vision.faces import quality
from safecity.vision.faces.detectors import DlibHogDetector, FaceDetector
from safecity.vision.faces.encoders import (
    DLIB_THRESHOLD,
    DlibResnetEncoder,
    FaceEncoder,
    eye_centres_and_nose,
)
from safecity.vision.faces.face import Face, FaceBox

ImageBGR = npt.NDArray[np.uint8]

#: Match when similarity ≥ this (dlib encoder; an ONNX encoder carries its own `threshold`).
DEFAULT_THRESHOLD = DLIB_THRESHOLD

#: Faces with eyes closer than this many pixels are "low resolution" and get resolution matching.
LOW_RES_EYE_PX = 28.0
#: Eye distances (px) of the street-camera views added at enrolment: faces ~35, ~45 and ~60 px wide.
ENROLMENT_VIEW_EYE_PX = (15.0, 19.0, 25.0)


def similarity(a: Face | npt.ArrayLike, b: Face | npt.ArrayLike) -> float:
    """Returns 0..1: the cosine of two embeddings (or Faces) clipped at 0; 1 is the same face."""
    va = np.asarray(a.embedding if isinstance(a, Face) else a, dtype=np.float32).reshape(-1)
    vb = np.asarray(b.embedding if isinstance(b, Face) else b, dtype=np.float32).reshape(-1)
    cos = float(np.dot(va, vb) / (np.linalg.norm(va) * np.linalg.norm(vb) + 1e-12))
    return min(1.0, max(0.0, cos))


def eye_distance(face: Face | FaceBox) -> float:
    """Returns the distance between the eye centres in image pixels: the face's true scale."""
    assert face.landmarks is not None
    points = eye_centres_and_nose(face.landmarks)
    return float(np.linalg.norm(points[1] - points[0]))


def quality_check(face: Face, *, enrolment: bool = False) -> str | None:
    """Returns why the face is unusable (live limits, or the stricter enrolment ones), or None."""
    if enrolment:
        return quality.refusal(
            face.size_px, face.sharpness, face.yaw,
            min_px=quality.MIN_ENROL_FACE_PX, min_sharpness=quality.MIN_ENROL_SHARPNESS,
        )
    return quality.refusal(
        face.size_px, face.sharpness, face.yaw,
        min_px=quality.MIN_LIVE_FACE_PX, min_sharpness=quality.MIN_LIVE_SHARPNESS,
    )


class FacePipeline:
    """Detects, measures and encodes every face in a BGR image; compares faces at matching resolution.

    >>> pipeline = FacePipeline()
    >>> [face.summary() for face in pipeline.faces(cv2.imread("photo.jpg"))]
    """

    def __init__(self, detector: FaceDetector | None = None, encoder: FaceEncoder | None = None) -> None:
        self.detector: FaceDetector = detector or DlibHogDetector()
        self.encoder: FaceEncoder = encoder or DlibResnetEncoder()
        self.threshold = float(self.encoder.threshold)

    def faces(self, image_bgr: ImageBGR, *, enrolment_views: bool = False) -> list[Face]:
        """Returns every face in the image, largest first, each measured and encoded.

        With `enrolment_views`, a large face also carries embeddings of itself shrunk to street-camera
        scales (`Face.extra_embeddings`), for watch-list enrolment.
        """
        image_rgb = _to_rgb(image_bgr)
        gray = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
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
                crop=cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                size_px=box.width,
                sharpness=quality.sharpness(gray, box.box),
                yaw=quality.yaw(box.landmarks),
                source=box.source,
            )
            if enrolment_views:
                face.extra_embeddings = [
                    self._shrunk_embedding(face, eyes)
                    for eyes in ENROLMENT_VIEW_EYE_PX
                    if eye_distance(face) >= 1.5 * eyes
                ]
            found.append(face)
        return sorted(found, key=lambda f: f.size_px, reverse=True)

    def compare(self, a: Face, b: Face) -> float:
        """Returns 0..1 similarity of two faces, shrinking the larger to the smaller's scale if one is small."""
        small, large = (a, b) if eye_distance(a) <= eye_distance(b) else (b, a)
        small_eyes = eye_distance(small)
        if small_eyes >= LOW_RES_EYE_PX or eye_distance(large) < 1.5 * small_eyes:
            return similarity(a, b)
        key = round(small_eyes * 2) / 2  # half-pixel steps: a batch re-uses the same shrunk views
        if key not in large.shrunk:
            large.shrunk[key] = self._shrunk_embedding(large, key)
        return similarity(small.embedding, large.shrunk[key])

    def _shrunk_embedding(self, face: Face, eyes_px: float) -> npt.NDArray[np.float32]:
        """Returns the embedding of the face's aligned crop shrunk so its eyes are eyes_px apart."""
        crop = cv2.cvtColor(face.crop, cv2.COLOR_BGR2RGB)
        side = crop.shape[1]
        small_side = max(8, round(side * eyes_px / self.encoder.crop_eye_distance))
        small = cv2.resize(crop, (small_side, small_side), interpolation=cv2.INTER_AREA)
        restored = cv2.resize(small, (side, side), interpolation=cv2.INTER_LINEAR)
        return self.encoder.encode_crop(restored)


def enrolment_face(image_bgr: ImageBGR, pipeline: FacePipeline | None = None) -> Face:
    """Returns the one usable face of a watch-list photo, with street-camera views; else InvalidInput."""
    pipeline = pipeline or default_pipeline()
    if image_bgr is None or image_bgr.size == 0:
        raise InvalidInput("image is empty or unreadable", hint="send a JPEG or PNG photo")
    height, width = image_bgr.shape[:2]
    if min(height, width) < quality.MIN_ENROL_FACE_PX:
        raise InvalidInput(
            f"photo too small: {width}×{height} px, a face needs ≥ {quality.MIN_ENROL_FACE_PX} px",
            hint="use the original photo, not a thumbnail",
        )
    faces = pipeline.faces(image_bgr, enrolment_views=True)
    if not faces:
        raise InvalidInput("no face found in the photo", hint="use a frontal photo with the face clearly visible")
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
        return cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2RGB)
    if image_bgr.shape[2] == 4:
        return cv2.cvtColor(image_bgr, cv2.COLOR_BGRA2RGB)
    return np.ascontiguousarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
