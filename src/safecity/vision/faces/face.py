"""The currency of the face pipeline: a detected face box and a fully described `Face`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Box = tuple[int, int, int, int]  # x, y, width, height in image pixels
Points = npt.NDArray[np.float32]  # (n, 2) points in image pixels


@dataclass(frozen=True)
class FaceBox:
    """A face a detector found: its box, confidence and, when the detector gives them, 5 landmarks.

    Landmarks follow dlib's 5-point order: the two corners of the subject's right eye (image left),
    the two corners of the left eye, then the base of the nose; the quality rules (yaw) read them. A
    detector that finds other points gives them in `keypoints` too, in its own order (BlazeFace: eye
    centres, nose tip, mouth centre, ear tragions), and fills `landmarks` from them as best it can.
    Encoders align on `keypoints` when they know the layout named by `source`.
    """

    box: Box
    score: float
    landmarks: Points | None = None
    source: str = "hog"  # which detector or fallback produced it
    keypoints: Points | None = None  # the detector's own points, in its own order (see `source`)

    @property
    def width(self) -> int:
        """Returns the box width in pixels, the size the quality rules speak of."""
        return self.box[2]


@dataclass
class Face:
    """One face found in an image: where it is, how usable it is, and what it looks like to the encoder.

    `embedding` is float32 and unit-norm, so `similarity` is a dot product. `crop` is the aligned
    face chip (BGR) the encoder saw; it stays in memory unless the face matches a watch list.
    """

    box: Box
    score: float
    landmarks: Points
    embedding: npt.NDArray[np.float32]
    crop: npt.NDArray[np.uint8]
    size_px: int = 0  # face box width in the original image
    sharpness: float = 0.0  # 0..1: Laplacian energy of the face at a fixed scale
    yaw: float = 0.0  # nose offset from the eyes' midpoint over eye distance: 0 frontal, ±0.5 profile
    source: str = "hog"

    def summary(self) -> dict[str, object]:
        """Returns the JSON-safe description the CLI and the API show (no pixels, no embedding)."""
        return {
            "box": list(self.box),
            "score": round(self.score, 3),
            "size_px": self.size_px,
            "sharpness": round(self.sharpness, 3),
            "yaw": round(self.yaw, 3),
            "detector": self.source,
        }
