"""Face encoders: an aligned face in, a unit-norm embedding out. MobileFaceNet by default (see
`mobilefacenet.py`), dlib's ResNet as the alternative, or any ArcFace-style ONNX file.

An encoder also carries its own operating threshold (`threshold`, on the 0..1 similarity scale),
because a similarity means different things to different models, and its `id` (name and version),
stored with every embedding it makes: embeddings of two encoders are never compared.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
import numpy.typing as npt

from safecity.core.errors import InvalidInput
from safecity.vision.faces import models
from safecity.vision.faces.face import FaceBox, Points

ImageRGB = npt.NDArray[np.uint8]
Embedding = npt.NDArray[np.float32]

#: Operating threshold of the dlib encoder on the 0..1 similarity scale (why 0.922: see pipeline).
DLIB_THRESHOLD = 0.922


@dataclass(frozen=True)
class EncoderId:
    """Which encoder made an embedding: its name and version (weights and preprocessing).

    Two embeddings are comparable only when their ids are equal; watch lists store it with every
    photo's embeddings and re-encode the photos when the configured encoder's id changes.
    """

    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


DLIB_ID = EncoderId("dlib-resnet-v1", "1+flip")
"""The id of the dlib encoder as configured by default (mirror averaging, no jitter): the encoder of
every embedding stored before ids were recorded."""


@runtime_checkable
class FaceEncoder(Protocol):
    """Turns a detected face into an embedding."""

    dim: int
    threshold: float

    @property
    def id(self) -> EncoderId:
        """Name and version stored with every embedding it makes."""
        ...

    def encode(self, image_rgb: ImageRGB, face: FaceBox) -> tuple[Embedding, ImageRGB]:
        """Returns the face's unit-norm float32 embedding and the aligned RGB crop it was computed from."""
        ...

    def encode_crop(self, crop_rgb: ImageRGB) -> Embedding:
        """Returns the unit-norm embedding of an already aligned RGB crop."""
        ...


def unit(vector: npt.ArrayLike) -> Embedding:
    """Returns the vector as float32 scaled to unit length (zero stays zero)."""
    array = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(array))
    return array / norm if norm > 0 else array


def eye_centres_and_nose(landmarks: Points) -> npt.NDArray[np.float32]:
    """Returns (3, 2): the image-left eye centre, the image-right eye centre, the nose base."""
    first, second = landmarks[0:2].mean(axis=0), landmarks[2:4].mean(axis=0)
    left, right = (first, second) if first[0] <= second[0] else (second, first)
    return np.stack([left, right, landmarks[4]]).astype(np.float32)


class DlibResnetEncoder:
    """dlib's ResNet encoder (128-d; 99.38% on LFW) on a 150 px chip aligned on the 5 landmarks.

    The embedding averages the chip and its mirror image: a face and its mirror are the same
    person, and the average cancels part of the noise a small, blurred face puts into one view.
    `jitters` > 0 additionally averages dlib's random crops (slower, roughly linear in jitters).

    >>> embedding, chip = DlibResnetEncoder().encode(image_rgb, face_box)
    """

    dim = 128

    def __init__(self, *, flip: bool = True, jitters: int = 0, threshold: float | None = None) -> None:
        self.flip = flip
        self.jitters = jitters
        self.threshold = DLIB_THRESHOLD if threshold is None else threshold

    @property
    def id(self) -> EncoderId:
        """Name and version stored with every embedding it makes (mirror and jitter change them)."""
        return EncoderId(
            DLIB_ID.name,
            "1" + ("+flip" if self.flip else "") + (f"+jitter{self.jitters}" if self.jitters else ""),
        )

    def chip(self, image_rgb: ImageRGB, face: FaceBox) -> ImageRGB:
        """Returns dlib's aligned 150×150 RGB face chip (25% padding) for the face's landmarks.

        dlib's chip needs its own 5 landmarks (eye corners, nose base): a face from another detector
        (which gives its own points in `keypoints`) gets them from dlib's predictor inside its box.
        """
        import dlib

        own = face.landmarks is not None and face.keypoints is None
        landmarks = face.landmarks if own and face.landmarks is not None else _landmarks(image_rgb, face)
        x, y, w, h = face.box
        shape = dlib.full_object_detection(
            dlib.rectangle(x, y, x + w - 1, y + h - 1), [dlib.point(int(px), int(py)) for px, py in landmarks]
        )
        return np.asarray(dlib.get_face_chip(image_rgb, shape, 150, 0.25), dtype=np.uint8)

    def encode(self, image_rgb: ImageRGB, face: FaceBox) -> tuple[Embedding, ImageRGB]:
        """Returns the face's unit-norm float32 embedding and the aligned RGB crop it was computed from."""
        chip = self.chip(image_rgb, face)
        return self.encode_crop(chip), chip

    def encode_crop(self, chip: ImageRGB) -> Embedding:
        """Returns the unit-norm embedding of an aligned 150×150 RGB chip (mirror-averaged if set)."""
        net = models.resnet_encoder()
        views = [chip, np.ascontiguousarray(chip[:, ::-1])] if self.flip else [chip]
        vectors = [
            np.asarray(net.compute_face_descriptor(view, self.jitters))
            if self.jitters
            else np.asarray(net.compute_face_descriptor(view))
            for view in views
        ]
        return unit(np.mean(vectors, axis=0))


class OnnxFaceEncoder:
    """An ArcFace-style encoder from an ONNX file: aligned RGB crop in, embedding out.

    Alignment maps the eye centres and nose base onto the standard ArcFace 112×112 template (scaled
    to `input_size`); the crop is fed as float32 NCHW RGB, (pixel - 127.5) / 127.5, and the output is
    flattened and scaled to unit length. `threshold` is on the 0..1 similarity scale (cosine clipped at
    0); 0.35 is a common operating point for ArcFace models, check it against your own pairs.

    >>> encoder = OnnxFaceEncoder("models/arcface.onnx", input_size=112)
    """

    # ArcFace template for 112×112: image-left eye, image-right eye, nose tip. dlib gives the nose
    # base, a few pixels lower than the tip; a similarity transform on three points absorbs most of it
    # (mouth corners, the template's other two points, are not among dlib's five).
    _TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366]], dtype=np.float32)

    def __init__(self, model_path: str | Path, input_size: int = 112, *, threshold: float = 0.35) -> None:
        from safecity.vision.onnx_session import cpu_session

        path = Path(model_path)
        if not path.is_file():
            raise InvalidInput(
                f"face encoder model not found: {path}", hint="check the configured model path"
            )
        self._session: Any = cpu_session(path, threads=1)
        self._input = self._session.get_inputs()[0].name
        self.input_size = input_size
        self.threshold = threshold
        self._id = EncoderId(f"onnx:{path.name}", hashlib.sha256(path.read_bytes()).hexdigest()[:16])
        probe = self._run(np.zeros((input_size, input_size, 3), dtype=np.uint8))
        self.dim = int(probe.size)

    @property
    def id(self) -> EncoderId:
        """The file's name and the start of its sha256: another file is another encoder."""
        return self._id

    def align(self, image_rgb: ImageRGB, face: FaceBox) -> ImageRGB:
        """Returns the input_size² RGB crop with eyes and nose on the ArcFace template."""
        landmarks = face.landmarks if face.landmarks is not None else _landmarks(image_rgb, face)
        source = eye_centres_and_nose(landmarks)
        target = self._TEMPLATE * (self.input_size / 112.0)
        matrix, _ = cv2.estimateAffinePartial2D(source, target, method=cv2.LMEDS)
        if matrix is None:
            raise InvalidInput("face landmarks are degenerate", hint="the face is too small or turned away")
        size = (self.input_size, self.input_size)
        return np.asarray(cv2.warpAffine(image_rgb, matrix, size, flags=cv2.INTER_LINEAR), dtype=np.uint8)

    def encode(self, image_rgb: ImageRGB, face: FaceBox) -> tuple[Embedding, ImageRGB]:
        """Returns the face's unit-norm float32 embedding and the aligned RGB crop it was computed from."""
        crop = self.align(image_rgb, face)
        return self.encode_crop(crop), crop

    def encode_crop(self, crop_rgb: ImageRGB) -> Embedding:
        """Returns the unit-norm embedding of an aligned input_size² RGB crop."""
        return unit(self._run(crop_rgb))

    def _run(self, crop: ImageRGB) -> npt.NDArray[np.float32]:
        tensor = ((crop.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
        return np.asarray(self._session.run(None, {self._input: tensor})[0], dtype=np.float32).reshape(-1)


def _landmarks(image_rgb: ImageRGB, face: FaceBox) -> Points:
    from safecity.vision.faces.detectors import landmarks_5

    return landmarks_5(image_rgb, face.box)
