"""Motion gate: analysis runs only on frames with motion inside the camera's region of interest.

    gate = MotionGate(roi_polygon=np.array([[0, 500], [1920, 500], [1920, 1080], [0, 1080]]))
    if gate.check(frame):
        run_detectors(frame.image)

Works on a small grey copy of each frame against a slowly updated background, so a gate costs
about a millisecond a frame and slow light changes do not count as motion.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from safecity.video.sources import Frame


class MotionGate:
    """Says whether a frame shows motion inside a polygon (full-frame pixel coordinates)."""

    def __init__(
        self,
        roi_polygon: npt.ArrayLike | None = None,
        *,
        threshold: float = 0.002,
        pixel_threshold: int = 20,
        width: int = 320,
        learning_rate: float = 0.1,
    ) -> None:
        """`threshold` is the share of the region that must change; `pixel_threshold` grey levels."""
        self.roi_polygon = None if roi_polygon is None else np.asarray(roi_polygon, dtype=np.float32)
        self.threshold = threshold
        self.pixel_threshold = pixel_threshold
        self.width = width
        self.learning_rate = learning_rate
        self.fraction = 0.0
        self._background: npt.NDArray[np.float32] | None = None
        self._mask: npt.NDArray[np.bool_] | None = None

    def _region(self, frame: Frame, shape: tuple[int, int]) -> npt.NDArray[np.bool_] | None:
        """Returns the region of interest as a mask of the small picture (None: the whole frame)."""
        if self.roi_polygon is None:
            return None
        if self._mask is None or self._mask.shape != shape:
            scale = shape[1] / frame.width
            points = np.round(self.roi_polygon * scale).astype(np.int32)
            mask = np.zeros(shape, np.uint8)
            cv2.fillPoly(mask, [points], 1)
            self._mask = mask.astype(bool)
        return self._mask

    def check(self, frame: Frame) -> bool:
        """Returns whether `frame` moved inside the region; sets `fraction` to the share that changed."""
        small = cv2.GaussianBlur(frame.gray(self.width), (5, 5), 0).astype(np.float32)
        if self._background is None or self._background.shape != small.shape:
            self._background = small
            self.fraction = 1.0
            return True  # nothing to compare with yet: let the first frame through
        changed = cv2.absdiff(small, self._background) > self.pixel_threshold
        cv2.accumulateWeighted(small, self._background, self.learning_rate)
        mask = self._region(frame, small.shape[:2])
        if mask is not None:
            area = int(mask.sum())
            self.fraction = float(changed[mask].sum()) / area if area else 0.0
        else:
            self.fraction = float(changed.mean())
        return self.fraction >= self.threshold

    def reset(self) -> None:
        """Forgets the background (after a reconnection or a change of view)."""
        self._background = None
