"""Finding and tracking moving objects (vehicles, people) in a fixed camera's picture.

Two detectors speak the same currency, supervision's `Detections`:
- `MotionObjectDetector` (default, no model): background subtraction and contours; right for fixed
  cameras, where anything that moves against the learned background is a candidate.
- `OnnxObjectDetector(model_path)`: a YOLO-family export an operator configures for stronger
  detection (with class names), decoded like the plate detector's ONNX models.

`ObjectTracker` gives each object a `tracker_id` that it keeps across frames.

    detector, tracker = MotionObjectDetector(), ObjectTracker(fps=5)
    tracked = tracker.update(detector.detect(frame_bgr))
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt
import supervision as sv
from scipy.optimize import linear_sum_assignment

from safecity.vision.plates.detectors import OnnxPlateDetector


class ObjectDetector(Protocol):
    """Returns the objects in a BGR frame as `sv.Detections`."""

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> sv.Detections: ...


class MotionObjectDetector:
    """Moving blobs against a learned background (MOG2), merged into object boxes."""

    def __init__(self, min_area_fraction: float = 0.004, work_width: int = 480, history: int = 200) -> None:
        self.min_area_fraction = min_area_fraction
        self.work_width = work_width
        self._subtractor = cv2.createBackgroundSubtractorMOG2(
            history=history, varThreshold=32, detectShadows=True
        )
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> sv.Detections:
        h, w = image_bgr.shape[:2]
        scale = min(1.0, self.work_width / w)
        small = cv2.resize(image_bgr, (round(w * scale), round(h * scale))) if scale < 1 else image_bgr
        mask = self._subtractor.apply(small)
        # Shadows are marked 127 by MOG2: keep only confident foreground.
        _, mask = cv2.threshold(mask, 200, 255, cv2.THRESH_BINARY)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._kernel)
        mask = cv2.dilate(mask, self._kernel, iterations=2)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_area = self.min_area_fraction * small.shape[0] * small.shape[1]
        boxes = [cv2.boundingRect(c) for c in contours if cv2.contourArea(c) >= min_area]
        if not boxes:
            return sv.Detections.empty()
        xyxy = np.array([[x, y, x + bw, y + bh] for x, y, bw, bh in boxes], dtype=np.float32) / scale
        return sv.Detections(
            xyxy=xyxy, confidence=np.full(len(boxes), 0.9, np.float32), class_id=np.zeros(len(boxes), int)
        )


class OnnxObjectDetector:
    """A YOLO-family ONNX export ([1, 4+C, N] or [1, N, 4+1+C] outputs), as `sv.Detections`."""

    def __init__(self, model_path: Path | str, *, input_size: int = 640, conf: float = 0.35) -> None:
        self._inner = OnnxPlateDetector(model_path, input_size=input_size, conf=conf)

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> sv.Detections:
        scored = self._inner.detect_scored(image_bgr)
        if not scored:
            return sv.Detections.empty()
        xyxy = np.array([[x, y, x + w, y + h] for (x, y, w, h), _ in scored], dtype=np.float32)
        conf = np.array([s for _, s in scored], dtype=np.float32)
        return sv.Detections(xyxy=xyxy, confidence=conf, class_id=np.zeros(len(scored), int))


class ObjectTracker:
    """Gives detections stable `tracker_id`s across frames: IoU matching solved as an assignment.

    supervision dropped ByteTrack after 0.26, and the versions and packages that carry it require
    the non-headless OpenCV build (which clashes with the headless one this project pins), so this is
    the small part of it a fixed camera needs: Hungarian matching on IoU, with a grace period
    (`lost_seconds`) before a track that is not seen is ended.
    """

    def __init__(self, fps: float = 5.0, lost_seconds: float = 2.0, min_iou: float = 0.2) -> None:
        self.max_lost = max(1, round(lost_seconds * fps))
        self.min_iou = min_iou
        self._boxes: dict[int, npt.NDArray[np.float32]] = {}
        self._lost: dict[int, int] = {}
        self._next_id = 1

    def update(self, detections: sv.Detections) -> sv.Detections:
        """Returns the detections with `tracker_id` set (new objects get new ids)."""
        ids = list(self._boxes)
        assigned = np.zeros(len(detections), dtype=int)
        matched_tracks: set[int] = set()
        if ids and len(detections):
            previous = np.stack([self._boxes[i] for i in ids])
            iou = sv.box_iou_batch(previous, detections.xyxy)
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols, strict=True):
                if iou[r, c] >= self.min_iou:
                    assigned[c] = ids[r]
                    matched_tracks.add(ids[r])
        for index in range(len(detections)):
            if assigned[index] == 0:
                assigned[index] = self._next_id
                self._next_id += 1
            self._boxes[int(assigned[index])] = detections.xyxy[index].astype(np.float32)
            self._lost[int(assigned[index])] = 0
        for track in ids:
            if track not in matched_tracks:
                self._lost[track] += 1
                if self._lost[track] > self.max_lost:
                    del self._boxes[track], self._lost[track]
        detections.tracker_id = assigned
        return detections

    @property
    def active(self) -> set[int]:
        """Returns the ids of tracks not yet ended."""
        return set(self._boxes)
