"""Is a face good enough to act on? Size, sharpness and pose, each measured on the face itself.

The limits hold for both detectors: BlazeFace's boxes are about 5% wider than dlib's HOG boxes and
its landmarks (eye centres, nose tip) give the same yaw to within a few hundredths. Measured on the
41 shared CCTV copies: widths 35-52 px (HOG 37-53), sharpness 0.055-0.087 (the same), |yaw| at most
0.25 (HOG 0.20); on the photos, sharpness from 0.22 either way. None is refused by either.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from safecity.vision.faces.face import Box, Points

#: Live (street-camera) limits: below these a match is too unreliable to raise.
MIN_LIVE_FACE_PX = 24
MIN_LIVE_SHARPNESS = 0.03
MAX_YAW = 0.35  # nose more than 35% of the eye distance off the eyes' midpoint: face turned away

#: Enrolment limits: a watch-list photo must be good, the whole list depends on it.
MIN_ENROL_FACE_PX = 80
MIN_ENROL_SHARPNESS = 0.15

#: Face width the sharpness is measured at: comparable across sizes, and near a CCTV face's.
_SHARPNESS_SCALE_PX = 64


def sharpness(image_gray: npt.NDArray[np.uint8], box: Box) -> float:
    """Returns 0..1: the Laplacian energy of the face region rescaled to 64 px wide.

    Rescaling first makes a large sharp face and a small sharp face score alike; dividing the
    Laplacian's standard deviation by the region's contrast keeps lighting out of it. Measured on the
    shared photos: sharp press photos score 0.24-0.48, the same blurred with σ = 4 px (at ~1000 px)
    0.06-0.15, 40 px street-camera copies 0.06-0.13.
    """
    x, y, w, h = box
    region = image_gray[max(0, y) : y + h, max(0, x) : x + w]
    if region.size == 0 or min(region.shape) < 4:
        return 0.0
    scale = _SHARPNESS_SCALE_PX / region.shape[1]
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    region = cv2.resize(region, None, fx=scale, fy=scale, interpolation=interpolation).astype(np.float32)
    contrast = float(region.std()) + 1.0
    energy = float(cv2.Laplacian(region, cv2.CV_32F).std())
    return float(min(1.0, energy / contrast / 2.0))


def yaw(landmarks: Points) -> float:
    """Returns the nose's sideways offset from the eyes' midpoint over the eye distance (0 = frontal)."""
    first, second = landmarks[0:2].mean(axis=0), landmarks[2:4].mean(axis=0)
    eye_vector = second - first
    distance = float(np.linalg.norm(eye_vector))
    if distance < 1e-3:
        return 1.0
    along = float(np.dot(landmarks[4] - (first + second) / 2, eye_vector / distance))
    return along / distance


def refusal(size_px: int, sharp: float, turn: float, *, min_px: int, min_sharpness: float) -> str | None:
    """Returns why a face with these measurements is unusable, or None if it is usable."""
    if size_px < min_px:
        return f"face too small: {size_px} px, need ≥ {min_px}"
    if sharp < min_sharpness:
        return f"too blurred: sharpness {sharp:.2f}, need ≥ {min_sharpness:.2f}"
    if abs(turn) > MAX_YAW:
        return f"face turned away: yaw {turn:+.2f}, need within ±{MAX_YAW:.2f}"
    return None
