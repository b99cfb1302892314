"""BlazeFace full-range (MediaPipe, Apache-2.0): faces down to 20 px in whole street frames.

The model was trained on 192×192 inputs and finds faces from about 12 to 120 px of its input
(measured on the shared photos shrunk onto a 192 px canvas: 21% of faces found at 8 px, 93% at 10 px,
all from 12 to 120 px, 88% at 140 px, 31% at 180 px). A street frame letterboxed into 192 px shrinks
a 20 px face to 3-5 px, so one pass over the whole frame misses exactly the faces a street camera
sees. The network is convolutional throughout (the shipped ONNX file has a free height and width),
so instead of cutting the frame into overlapping 192 px tiles, each scaled up, the detector runs the
whole frame at the scale that makes the smallest wanted face 14 px: one call whose output is what
sliding tiles over the frame would give (one box per 4×4 input pixels), without paying for the
tiles' overlap. Faces too large for that pass are found by coarser passes of the same frame, each at
a quarter of the scale before, until the frame's short side is under 100 px of input (no face can be
larger); the passes' boxes are merged by non-maximum suppression.

    detector = BlazeFaceDetector(min_face_px=20)
    boxes = detector.detect(frame_rgb)     # FaceBox list, each with 6 keypoints and dlib-order landmarks
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from safecity.vision.faces.face import FaceBox

ImageRGB = npt.NDArray[np.uint8]

MODEL = "blazeface-full-range"
"""Registry name of the model (see `onnx_models.py`)."""

MODEL_MIN_FACE_PX = 14.0
"""Face width, in model input pixels, the finest pass scales the smallest wanted face to (12 is the
smallest the model finds every sharp face at; 14 leaves room for blur and JPEG)."""

MODEL_MAX_FACE_PX = 100.0
"""Largest face, in model input pixels, a pass is trusted with: a frame whose short side is larger at
a pass's scale gets a coarser pass too."""

PASS_RATIO = 4.0
"""Scale between successive passes: each covers 12-100 px faces of its input, so passes a factor 4
apart overlap (a 50 px face at one pass is 12.5 px at the next)."""

STRIDE = 4
"""Input pixels per output cell (a 48×48 grid for the 192 px input)."""

_ALIGN = 32
"""Input sides must be multiples of this (the feature pyramid halves the size five times)."""

REFINE_FACE_PX = 96
"""Face width, in input pixels, of the second look at each face (with `refine`)."""

REFINE_CANVAS_PX = 192
"""Side of the canvas the face is looked at again on (the model's own input size)."""

REFINE_MIN_SCORE = 0.3
"""A face already found needs less evidence on the second look."""

KEYPOINTS = ("eye_1", "eye_2", "nose_tip", "mouth", "ear_1", "ear_2")
"""BlazeFace's keypoints in its output order (eyes and ears in the model's order, not by side)."""


def _letterbox(image_rgb: ImageRGB, scale: float) -> tuple[npt.NDArray[np.float32], float]:
    """Returns the image scaled by `scale` and padded to multiples of 32 as model input (NHWC, -1..1)."""
    height, width = image_rgb.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image_rgb, size, interpolation=interpolation) if scale != 1 else image_rgb
    padded_h = max(_ALIGN, -(-size[1] // _ALIGN) * _ALIGN)
    padded_w = max(_ALIGN, -(-size[0] // _ALIGN) * _ALIGN)
    canvas = np.zeros((padded_h, padded_w, 3), dtype=np.float32)
    canvas[: size[1], : size[0]] = resized
    tensor = np.asarray(canvas[None] / np.float32(127.5) - np.float32(1.0), dtype=np.float32)
    return tensor, size[0] / width


def _nms(boxes: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], iou: float) -> list[list[int]]:
    """Returns clusters of boxes (x1, y1, x2, y2), best first: each kept box with those it suppressed."""
    order = np.argsort(-scores)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    clusters: list[list[int]] = []
    while order.size:
        best, rest = order[0], order[1:]
        x1 = np.maximum(boxes[best, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[best, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[best, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        overlap = inter / (areas[best] + areas[rest] - inter + 1e-6)
        clusters.append([int(best), *rest[overlap > iou].tolist()])
        order = rest[overlap <= iou]
    return clusters


def _square(
    image_rgb: ImageRGB, cx: float, cy: float, half: float, side: int
) -> tuple[ImageRGB, float, float, float]:
    """Returns the square around (cx, cy) of half-side `half`, resized to side×side (edges replicated),
    with the frame position of its corner and frame pixels per canvas pixel."""
    height, width = image_rgb.shape[:2]
    left, top = int(np.floor(cx - half)), int(np.floor(cy - half))
    size = max(2, int(np.ceil(2 * half)))
    x0, y0 = max(0, left), max(0, top)
    x1, y1 = min(width, left + size), min(height, top + size)
    region = image_rgb[y0:y1, x0:x1]
    if region.size == 0:
        region = np.zeros((1, 1, 3), dtype=np.uint8)
    padded = cv2.copyMakeBorder(
        region, y0 - top, top + size - y1, x0 - left, left + size - x1, cv2.BORDER_REPLICATE
    )
    interpolation = cv2.INTER_AREA if size > side else cv2.INTER_LINEAR
    canvas = np.asarray(cv2.resize(padded, (side, side), interpolation=interpolation), dtype=np.uint8)
    return canvas, float(left), float(top), size / side


class BlazeFaceDetector:
    """Finds faces with BlazeFace full-range, from `min_face_px` wide up to the whole frame.

    Each face comes with BlazeFace's 6 keypoints (`FaceBox.keypoints`, order `KEYPOINTS`) and with
    dlib-order landmarks made from them (each eye centre stands for both its corners, the nose tip
    for the nose base), which the yaw rule reads. Overlapping boxes of one face are merged as
    MediaPipe does: the best box survives, its coordinates averaged with those it suppressed,
    weighted by score.

    With `refine`, each face found is looked at again, alone on a 192 px canvas at 96 px wide, and
    takes the box and keypoints of that second look (a face found at 14 px of input has keypoints a
    few input pixels off). It is off by default: on the shared CCTV pairs it did not help (MobileFaceNet
    AUC 0.9985 with, 0.9992 without; with the threshold chosen by cross-validation, TAR on held-out
    people 0.85 with, 0.90 without) and it costs one more 192 px run per face (a 1280×720 frame with
    18 faces: 163 ms against 75 on one core; `bench/bench_vision_faces.py`).

    >>> BlazeFaceDetector(min_face_px=20).detect(frame_rgb)
    [FaceBox(box=(412, 96, 31, 31), score=0.93, ...)]
    """

    def __init__(
        self,
        *,
        min_face_px: float = 20.0,
        min_score: float = 0.5,
        nms_iou: float = 0.3,
        refine: bool = False,
        session: Any | None = None,
    ) -> None:
        if session is None:
            from safecity.vision.registry import session as shared_session

            session = shared_session(MODEL)
        self._session = session
        self._input = session.get_inputs()[0].name
        self.min_face_px = float(min_face_px)
        self.min_score = min_score
        self.nms_iou = nms_iou
        self.refine = refine

    def scales(self, width: int, height: int) -> list[float]:
        """Returns the scale of each pass over a frame of this size, finest first."""
        scale = MODEL_MIN_FACE_PX / self.min_face_px
        passes = [scale]
        while min(width, height) * scale > MODEL_MAX_FACE_PX:
            scale /= PASS_RATIO
            passes.append(scale)
        return passes

    def detect(self, image_rgb: ImageRGB) -> list[FaceBox]:
        """Returns every face found, best first, each with its box, score, keypoints and landmarks."""
        height, width = image_rgb.shape[:2]
        rows = [self._pass(image_rgb, scale) for scale in self.scales(width, height)]
        faces = _merge(np.concatenate(rows), self.nms_iou)
        if not len(faces):
            return []
        if self.refine:
            faces = self._refine(image_rgb, faces)
        boxes = [self._face(row, width, height) for row in faces]
        return [face for face in boxes if face.box[2] >= 8 and face.box[3] >= 8]

    def look_around(
        self, image_rgb: ImageRGB, boxes: npt.NDArray[np.float32], *, face_px: float = 16.0, side: int = 64
    ) -> list[FaceBox]:
        """Returns the faces found near given boxes (x1, y1, x2, y2): each looked at alone, scaled so that
        its width is `face_px` on a `side`-pixel canvas (the squares around all boxes in one model call).

        Far cheaper than a whole-frame pass at the scale of the smallest box, and as sensitive there: a
        face that was scored just under the threshold in one frame is looked for again in the next.
        """
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if not len(boxes):
            return []
        height, width = image_rgb.shape[:2]
        canvases, frames = [], []
        for x1, y1, x2, y2 in boxes.tolist():
            half = max(x2 - x1, y2 - y1, 1.0) * side / face_px / 2
            canvas, left, top, step = _square(image_rgb, (x1 + x2) / 2, (y1 + y2) / 2, half, side)
            canvases.append(canvas)
            frames.append((left, top, step))
        batch = np.stack(canvases).astype(np.float32) / np.float32(127.5) - np.float32(1.0)
        regression, logits = self._session.run(None, {self._input: batch})
        found = []
        for i, (left, top, step) in enumerate(frames):
            rows = _decode(regression[i], logits[i], side // STRIDE, self.min_score)
            points = rows[:, :16].reshape(-1, 8, 2) * np.float32(step)
            points[:, 0] += (left, top)  # slot 1 holds width and height: scaled, not moved
            points[:, 2:] += (left, top)
            rows[:, :16] = points.reshape(-1, 16)
            found.append(rows)
        faces = _merge(np.concatenate(found), self.nms_iou)
        shown = [self._face(row, width, height) for row in faces]
        return [face for face in shown if face.box[2] >= 8 and face.box[3] >= 8]

    def _pass(self, image_rgb: ImageRGB, scale: float) -> npt.NDArray[np.float32]:
        """Returns (n, 17) rows for one pass: cx, cy, w, h, 6 keypoints (x, y), score; frame pixels."""
        tensor, scale = _letterbox(image_rgb, scale)
        regression, logits = self._session.run(None, {self._input: tensor})
        rows = _decode(regression[0], logits[0], tensor.shape[2] // STRIDE, self.min_score)
        rows[:, :16] /= np.float32(scale)
        return rows

    def _refine(self, image_rgb: ImageRGB, faces: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Returns the faces with box and keypoints from a second look at each, 96 px wide on 192 px."""
        canvases, frames = [], []
        for row in faces:
            half = float(max(row[2], row[3])) * REFINE_CANVAS_PX / REFINE_FACE_PX / 2
            canvas, left, top, step = _square(image_rgb, float(row[0]), float(row[1]), half, REFINE_CANVAS_PX)
            canvases.append(canvas)
            frames.append((left, top, step))
        batch = np.stack(canvases).astype(np.float32) / np.float32(127.5) - np.float32(1.0)
        regression, logits = self._session.run(None, {self._input: batch})
        refined = faces.copy()
        for i, (left, top, step) in enumerate(frames):
            rows = _merge(
                _decode(regression[i], logits[i], REFINE_CANVAS_PX // STRIDE, REFINE_MIN_SCORE), self.nms_iou
            )
            if not len(rows):
                continue  # the second look lost it: keep what the first found
            offsets = np.hypot(rows[:, 0] - REFINE_CANVAS_PX / 2, rows[:, 1] - REFINE_CANVAS_PX / 2)
            best = rows[int(np.argmin(offsets))]
            if offsets.min() > REFINE_FACE_PX / 2:
                continue  # what it sees is another face beside this one
            points = best[:16].reshape(8, 2) * step
            points[0] += (left, top)
            points[2:] += (left, top)
            refined[i, :16] = points.reshape(16)
        return refined

    @staticmethod
    def _face(row: npt.NDArray[np.float32], width: int, height: int) -> FaceBox:
        (cx, cy), (w, h) = row[0:2], row[2:4]
        left, top = max(0, round(cx - w / 2)), max(0, round(cy - h / 2))
        right, bottom = min(width, round(cx + w / 2)), min(height, round(cy + h / 2))
        keypoints = row[4:16].reshape(6, 2).astype(np.float32)
        first, second = sorted(keypoints[0:2].tolist())  # image-left eye first, as dlib orders them
        landmarks = np.array([first, first, second, second, keypoints[2]], dtype=np.float32)
        box = (left, top, max(0, right - left), max(0, bottom - top))
        return FaceBox(box, float(row[16]), landmarks, "blazeface", keypoints)


def _merge(rows: npt.NDArray[np.float32], iou: float) -> npt.NDArray[np.float32]:
    """Returns one row per face: each cluster of overlapping rows averaged by score, with its best score.

    MediaPipe's weighted suppression: neighbouring cells see the same face, and their average places
    the box and keypoints better than the best cell alone.
    """
    if not len(rows):
        return rows
    corners = np.concatenate([rows[:, 0:2] - rows[:, 2:4] / 2, rows[:, 0:2] + rows[:, 2:4] / 2], axis=1)
    merged = []
    for cluster in _nms(corners, rows[:, 16], iou):
        weights = rows[cluster, 16:17]
        merged.append(
            np.append((rows[cluster, :16] * weights).sum(axis=0) / weights.sum(), rows[cluster[0], 16])
        )
    return np.asarray(merged, dtype=np.float32)


def _decode(
    regression: npt.NDArray[np.float32], logits: npt.NDArray[np.float32], cells_x: int, min_score: float
) -> npt.NDArray[np.float32]:
    """Returns (n, 17) rows for the cells scoring ≥ min_score: cx, cy, w, h, 6 keypoints, score (input px)."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits[:, 0], -80.0, 80.0)))
    keep = np.flatnonzero(scores >= min_score)
    if not keep.size:
        return np.zeros((0, 17), dtype=np.float32)
    anchors = np.stack([keep % cells_x, keep // cells_x], axis=1).astype(np.float32) * STRIDE + STRIDE / 2
    points = regression[keep].astype(np.float32).reshape(-1, 8, 2)
    points[:, 0] += anchors  # centre; slot 1 holds width and height, which need no anchor
    points[:, 2:] += anchors[:, None, :]
    return np.concatenate([points.reshape(-1, 16), scores[keep, None].astype(np.float32)], axis=1)
