"""Face detectors: dlib HOG by default (with fallbacks for small faces), or any ONNX model from a path.

Every detector answers `detect(image_rgb) -> list[FaceBox]` with 5 landmarks filled in: the
pipeline's alignment and quality rules need them whatever found the box.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
import numpy.typing as npt

from safecity.core.errors import InvalidInput
from safecity.vision.faces import models
from safecity.vision.faces.face import Box, FaceBox, Points

ImageRGB = npt.NDArray[np.uint8]


@runtime_checkable
class FaceDetector(Protocol):
    """Finds faces in an RGB image."""

    def detect(self, image_rgb: ImageRGB) -> list[FaceBox]:
        """Returns every face found, each with its box, score and 5 landmarks."""
        ...


def landmarks_5(image_rgb: ImageRGB, box: Box) -> Points:
    """Returns dlib's 5 landmarks (right-eye corners, left-eye corners, nose base) inside a box."""
    import dlib

    x, y, w, h = box
    shape = models.shape_predictor_5()(image_rgb, dlib.rectangle(x, y, x + w - 1, y + h - 1))
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


def _clip_box(x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> Box:
    """Returns an (x, y, w, h) box clipped to the image."""
    left, top = max(0, round(x1)), max(0, round(y1))
    right, bottom = min(width, round(x2)), min(height, round(y2))
    return left, top, max(0, right - left), max(0, bottom - top)


class DlibHogDetector:
    """dlib's HOG face detector, made to find the small faces a street camera sees.

    The steps, each tried only when the previous found nothing: HOG on the image as it is; HOG on
    the image upsampled once and then twice (small images only: HOG's window is 80 px, so faces
    under ~40 px need it); HOG with a lower score threshold; dlib's CNN (MMOD) detector on small
    images; and finally, for an image that is essentially one tight face crop, HOG on the image
    padded with its own border (the detector needs margin around a face; an unpadded crop has none).

    For video frames, where a large face must not hide a small one and time per frame must be
    predictable, pass `upsample` to run HOG once at that level (1 finds faces from ~40 px) instead.

    >>> boxes = DlibHogDetector().detect(image_rgb)
    >>> boxes = DlibHogDetector(upsample=1).detect(frame_rgb)
    """

    def __init__(
        self, *, upsample: int | None = None, small_image_side: int = 800, use_cnn_fallback: bool = True
    ) -> None:
        self.upsample = upsample
        self.small_image_side = small_image_side
        self.use_cnn_fallback = use_cnn_fallback

    def detect(self, image_rgb: ImageRGB) -> list[FaceBox]:
        """Returns every face found, each with its box, score and 5 landmarks."""
        if self.upsample is not None:
            found = self._hog(image_rgb, upsample=self.upsample, threshold=0.0)
            return [FaceBox(box, score, landmarks_5(image_rgb, box), source) for box, score, source in found]
        height, width = image_rgb.shape[:2]
        small = max(height, width) <= self.small_image_side
        found = self._hog(image_rgb, upsample=0, threshold=0.0)
        for upsample in (1, 2) if small else (1,):
            if found:
                break
            if max(height, width) * 2**upsample > 4000:
                break  # a big frame upsampled costs seconds and finds noise
            found = self._hog(image_rgb, upsample=upsample, threshold=0.0)
        if not found and small:
            found = self._hog(image_rgb, upsample=2 if max(height, width) <= 400 else 1, threshold=-0.5)
        if not found and small and self.use_cnn_fallback:
            found = self._cnn(image_rgb)
        if not found:
            found = self._padded(image_rgb)
        return [FaceBox(box, score, landmarks_5(image_rgb, box), source) for box, score, source in found]

    def _hog(self, image_rgb: ImageRGB, *, upsample: int, threshold: float) -> list[tuple[Box, float, str]]:
        height, width = image_rgb.shape[:2]
        rects, scores, _ = models.hog_detector().run(image_rgb, upsample, threshold)
        source = "hog" if upsample == 0 and threshold == 0 else f"hog_up{upsample}"
        return [
            (_clip_box(r.left(), r.top(), r.right() + 1, r.bottom() + 1, width, height), float(s), source)
            for r, s in zip(rects, scores, strict=True)
        ]

    def _cnn(self, image_rgb: ImageRGB) -> list[tuple[Box, float, str]]:
        height, width = image_rgb.shape[:2]
        upsample = 1 if max(height, width) <= 400 else 0
        found = []
        for det in models.mmod_detector()(image_rgb, upsample):
            r = det.rect
            box = _clip_box(r.left(), r.top(), r.right() + 1, r.bottom() + 1, width, height)
            found.append((box, float(det.confidence), "cnn"))
        return found

    def _padded(self, image_rgb: ImageRGB) -> list[tuple[Box, float, str]]:
        """Returns faces found after padding the image: a tight face crop leaves HOG no margin to fit."""
        height, width = image_rgb.shape[:2]
        if max(height, width) > 400:
            return []  # only photo crops and thumbnails are tight crops
        pad_y, pad_x = round(0.3 * height), round(0.3 * width)
        padded = cv2.copyMakeBorder(image_rgb, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_REPLICATE)
        rects, scores, _ = models.hog_detector().run(padded, 1, -0.3)
        found = []
        for r, score in zip(rects, scores, strict=True):
            box = _clip_box(
                r.left() - pad_x,
                r.top() - pad_y,
                r.right() + 1 - pad_x,
                r.bottom() + 1 - pad_y,
                width,
                height,
            )
            found.append((box, float(score), "hog_padded"))
        return found


class OnnxFaceDetector:
    """A face detector from an ONNX file the operator supplies (e.g. a YOLO-face or SCRFD export).

    Contract for the model: one input, a float32 NCHW RGB image scaled to 0..1 and letterboxed into a
    square of `input_size` pixels; one output of rows `[x1, y1, x2, y2, score, …]` (shape (N, ≥5) or
    (1, N, ≥5)) in input pixels. Extra columns (the model's own landmarks) are ignored: landmarks
    come from dlib's 5-point predictor, so every encoder sees the same alignment.

    >>> boxes = OnnxFaceDetector("models/yolo-face.onnx", input_size=640).detect(image_rgb)
    """

    def __init__(
        self, model_path: str | Path, *, input_size: int = 640, min_score: float = 0.5, nms_iou: float = 0.4
    ) -> None:
        from safecity.vision.onnx_session import cpu_session

        path = Path(model_path)
        if not path.is_file():
            raise InvalidInput(f"face detector model not found: {path}", hint="check the model path")
        self._session: Any = cpu_session(path, threads=1)
        self._input = self._session.get_inputs()[0].name
        self.input_size = input_size
        self.min_score = min_score
        self.nms_iou = nms_iou

    def detect(self, image_rgb: ImageRGB) -> list[FaceBox]:
        """Returns every face found, each with its box, score and 5 landmarks."""
        height, width = image_rgb.shape[:2]
        scale = self.input_size / max(height, width)
        size = (round(width * scale), round(height * scale))
        resized = cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)
        canvas = np.zeros((self.input_size, self.input_size, 3), dtype=np.uint8)
        canvas[: resized.shape[0], : resized.shape[1]] = resized
        tensor = (canvas.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        rows = np.asarray(self._session.run(None, {self._input: tensor})[0], dtype=np.float32)
        rows = rows.reshape(-1, rows.shape[-1])
        if rows.shape[1] < 5:
            raise InvalidInput(
                f"face detector output has {rows.shape[1]} columns, need x1,y1,x2,y2,score",
                hint="export the model with decoded boxes (see OnnxFaceDetector)",
            )
        rows = rows[rows[:, 4] >= self.min_score]
        corners = rows[:, :4] / scale
        boxes = [_clip_box(x1, y1, x2, y2, width, height) for x1, y1, x2, y2 in corners.tolist()]
        keep = cv2.dnn.NMSBoxes([list(b) for b in boxes], rows[:, 4].tolist(), self.min_score, self.nms_iou)
        found = []
        for i in np.asarray(keep, dtype=int).reshape(-1):
            if boxes[i][2] >= 8 and boxes[i][3] >= 8:
                found.append(FaceBox(boxes[i], float(rows[i, 4]), landmarks_5(image_rgb, boxes[i]), "onnx"))
        return found
