"""The face pipeline: detect, judge quality, align, encode and compare faces.

    pipeline = default_pipeline()                    # the configured pair: BlazeFace + MobileFaceNet
    faces = pipeline.faces(frame_bgr)                # list[Face], largest first
    similarity(faces[0], enrolled) >= pipeline.threshold

`face_detector` and `face_encoder` in the settings choose the pair ("dlib" for either brings dlib's
HOG detector or ResNet encoder back; "insightface-mbf" is the plug-in encoder); `FacePipeline()`
without arguments is dlib's pair. Similarity is the cosine of the unit-norm embeddings, clipped to
0..1; each encoder has its own scale, so each has its own threshold (`THRESHOLDS`).

How the defaults were chosen (`bench/bench_vision_faces.py`, on ../shared/data/faces: 471 photo pairs
and the same 471 with one side a 40 px, blurred, JPEG-35 street-camera copy; 13 people, 77 same-person
pairs in each file). A threshold fitted to the pairs it is judged on flatters itself: dlib's old 0.907
gave FAR 0.76% on the shared CCTV pairs and 2.2% on other people. So thresholds are fitted on some
people and judged on the others (`thresholds.py`: 3 folds of people, 100 random partitions). Fitted at
FAR ≤ 1% that way, the held-out CCTV FAR was 1.2% at the median and 5.2% in the worst tenth of
partitions for MobileFaceNet (in colour 1.7% and 6.7%; dlib: 1.6% and 7.1%). Each threshold is
therefore the one fitted on all pairs of both files raised by the smallest margin that keeps held-out
FAR ≤ 1% in 90% of partitions: MobileFaceNet 0.312 + 0.0475 = 0.36 (rounded up), dlib 0.8995 + 0.0225
= 0.922. At those, on the shared pairs: MobileFaceNet TAR 1.0 (photos) and 0.974 (CCTV, 75 of 77) with
FAR 0.25% (1 of 394), dlib 1.0 and 0.727 (FAR 0.25%). The whole rule (margin and threshold fitted on
the training people only), judged on the others' CCTV pairs: MobileFaceNet TAR 0.91 at the median of
33 partitions (0.96 in the best tenth), held-out FAR ≤ 1.1% in 90% of them; in colour (before grey,
`mobilefacenet.py`) 0.81 and 1.2%; dlib 0.52 and 0.81%. So the goal of 97% CCTV TAR at FAR ≤ 1% with a
threshold fitted elsewhere is met on the shared pairs by the threshold fitted on all 13 people, but a
rule fitted on 8 or 9 of them reaches 0.91: with 13 people the margin is still a guess at new people's
look-alikes. InsightFace's ArcFace MobileFaceNet (`insightface-mbf`, a plug-in with non-commercial
weights) has its threshold chosen the same way: 0.1626 + 0.05 = 0.22, CCTV TAR 1.0 with FAR 0 there,
and the whole rule fitted on other people gives TAR 1.0 at the median (see `insightface.py`).
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from safecity.core.errors import InvalidInput
from safecity.vision.faces import quality
from safecity.vision.faces.detectors import DlibHogDetector, FaceDetector
from safecity.vision.faces.encoders import DLIB_ID, DLIB_THRESHOLD, DlibResnetEncoder, EncoderId, FaceEncoder
from safecity.vision.faces.face import Face
from safecity.vision.faces.insightface import INSIGHTFACE_THRESHOLD
from safecity.vision.faces.mobilefacenet import MOBILEFACENET_THRESHOLD

ImageBGR = npt.NDArray[np.uint8]

ENCODERS = ("mobilefacenet", "dlib", "insightface-mbf")
"""The encoders `face_encoder` may name; the first is the default, the last a plug-in (`insightface.py`)."""

DETECTORS = ("blazeface", "dlib")
"""The detectors `face_detector` may name; the first is the default."""

THRESHOLDS = {
    "mobilefacenet": MOBILEFACENET_THRESHOLD,
    "dlib": DLIB_THRESHOLD,
    "insightface-mbf": INSIGHTFACE_THRESHOLD,
}
"""Each encoder's operating threshold on the 0..1 similarity scale (how each was chosen: above)."""

#: Match when similarity ≥ this with the default encoder (each encoder carries its own `threshold`).
DEFAULT_THRESHOLD = THRESHOLDS[ENCODERS[0]]


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

    @property
    def encoder_id(self) -> EncoderId:
        """Name and version of the encoder: stored with every embedding, compared before any match."""
        return self.encoder.id

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


def make_encoder(name: str) -> FaceEncoder:
    """Returns the encoder `face_encoder` names: "mobilefacenet" (default), "dlib" or "insightface-mbf".

    The plug-in raises `ModelUnavailable` naming its install command when it is not installed.
    """
    if name == "mobilefacenet":
        from safecity.vision.faces.mobilefacenet import MobileFaceNetEncoder

        return MobileFaceNetEncoder()
    if name == "dlib":
        return DlibResnetEncoder()
    if name == "insightface-mbf":
        from safecity.vision.faces.insightface import InsightFaceEncoder

        return InsightFaceEncoder()
    raise InvalidInput(f"unknown face encoder {name!r}", hint=f"use one of {', '.join(ENCODERS)}")


def encoder_id(name: str) -> EncoderId:
    """Returns the id of the encoder `face_encoder` names, without loading it."""
    if name == "mobilefacenet":
        from safecity.vision.faces import mobilefacenet

        return mobilefacenet.encoder_id()
    if name == "dlib":
        return DLIB_ID
    if name == "insightface-mbf":
        from safecity.vision.faces import insightface

        return insightface.encoder_id()
    raise InvalidInput(f"unknown face encoder {name!r}", hint=f"use one of {', '.join(ENCODERS)}")


def make_detector(name: str, *, video: bool = False) -> FaceDetector:
    """Returns the detector `face_detector` names, for photos or (`video`) for camera frames.

    For frames, dlib runs HOG once upsampled (predictable time, faces from ~40 px); BlazeFace is
    the same either way: it finds faces from 20 px in frames and photos alike.
    """
    if name == "blazeface":
        from safecity.vision.faces.blazeface import BlazeFaceDetector

        return BlazeFaceDetector(min_face_px=20)
    if name == "dlib":
        return DlibHogDetector(upsample=1) if video else DlibHogDetector()
    raise InvalidInput(f"unknown face detector {name!r}", hint=f"use one of {', '.join(DETECTORS)}")


def _configured(detector: str | None, encoder: str | None) -> tuple[str, str]:
    if detector is not None and encoder is not None:
        return detector, encoder
    from safecity.settings import load_settings

    settings = load_settings()
    return detector or settings.face_detector, encoder or settings.face_encoder


_PIPELINES: dict[tuple[str, str, bool], FacePipeline] = {}


def default_pipeline(
    *, detector: str | None = None, encoder: str | None = None, video: bool = False
) -> FacePipeline:
    """Returns the process-wide pipeline of the configured (or named) detector and encoder.

    `face_detector` and `face_encoder` in the settings choose them (BlazeFace and MobileFaceNet by
    default; "dlib" for either brings back dlib's); `video` gives the pipeline for camera frames.
    """
    key = (*_configured(detector, encoder), video)
    if key not in _PIPELINES:
        _PIPELINES[key] = FacePipeline(make_detector(key[0], video=video), make_encoder(key[1]))
    return _PIPELINES[key]


def _to_rgb(image_bgr: ImageBGR) -> npt.NDArray[np.uint8]:
    """Returns a contiguous uint8 RGB copy of a BGR, BGRA or grey image."""
    if image_bgr.ndim == 2:
        return np.asarray(cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2RGB), dtype=np.uint8)
    if image_bgr.shape[2] == 4:
        return np.asarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGRA2RGB), dtype=np.uint8)
    return np.ascontiguousarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
