"""Face alignment for ArcFace-style encoders: the face's points onto the standard 112×112 template.

The template (InsightFace's) places the eyes, nose tip and mouth corners of a frontal face; encoders
trained on faces cropped that way (MobileFaceNet, ArcFace) lose accuracy on any other crop. Which
points a face has depends on its detector: BlazeFace gives the eye centres, nose tip and mouth centre
(the mouth-corner midpoint on the template); dlib gives eye corners and the nose base, of which the
eye centres and the nose stand in for the template's first three points.

    crop = align(image_rgb, face_box, size=112)
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from safecity.core.errors import InvalidInput
from safecity.vision.faces.face import FaceBox, Points

ImageRGB = npt.NDArray[np.uint8]

ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
"""Image-left eye, image-right eye, nose tip, left and right mouth corners, for a 112×112 crop."""

_MOUTH_CENTRE = ARCFACE_TEMPLATE[3:5].mean(axis=0)


def alignment_points(face: FaceBox) -> tuple[Points, Points]:
    """Returns (the face's points, where the 112×112 template puts them), in the same order."""
    if face.keypoints is not None and face.source.startswith("blazeface"):
        eyes = sorted(face.keypoints[0:2].tolist())  # image-left eye first
        source = np.array([*eyes, face.keypoints[2], face.keypoints[3]], dtype=np.float32)
        return source, np.vstack([ARCFACE_TEMPLATE[0:3], _MOUTH_CENTRE]).astype(np.float32)
    if face.landmarks is None:
        raise InvalidInput("the face has no landmarks to align it by", hint="use a detector that gives them")
    first, second = face.landmarks[0:2].mean(axis=0), face.landmarks[2:4].mean(axis=0)
    left, right = (first, second) if first[0] <= second[0] else (second, first)
    return np.stack([left, right, face.landmarks[4]]).astype(np.float32), ARCFACE_TEMPLATE[0:3].copy()


def similarity_transform(source: Points, target: Points) -> npt.NDArray[np.float64]:
    """Returns the 2×3 rotation, uniform scale and shift mapping `source` onto `target` (least squares)."""
    rows = []
    values = []
    for (x, y), (u, v) in zip(source.tolist(), target.tolist(), strict=True):
        rows += [[x, -y, 1.0, 0.0], [y, x, 0.0, 1.0]]
        values += [u, v]
    (a, b, tx, ty), *_ = np.linalg.lstsq(np.array(rows), np.array(values), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]], dtype=np.float64)


def align(image_rgb: ImageRGB, face: FaceBox, *, size: int = 112) -> ImageRGB:
    """Returns the size×size RGB crop with the face's points on the ArcFace template."""
    source, target = alignment_points(face)
    if float(np.linalg.norm(source[1] - source[0])) < 1.0:
        raise InvalidInput("face landmarks are degenerate", hint="the face is too small or turned away")
    matrix = similarity_transform(source, target * (size / 112.0))
    crop = cv2.warpAffine(
        image_rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return np.asarray(crop, dtype=np.uint8)
