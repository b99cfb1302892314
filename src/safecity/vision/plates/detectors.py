"""Plate and text-line detectors: PP-OCR's text detector, an OpenCV candidate finder, any ONNX model.

`TextLineDetector` finds lines of text (PP-OCRv6 DB detector, bundled with RapidOCR);
`TextPlateDetector` groups those lines into plate-shaped regions and is the default plate detector.
`MorphPlateDetector` is a cheap OpenCV alternative (dark characters on a light plate), and
`OnnxPlateDetector` loads a YOLO-style plate model a deployment configures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from safecity.core.errors import InvalidInput
from safecity.vision.onnx_session import cpu_session
from safecity.vision.plates.models import Box, bundled_model


@dataclass
class TextLine:
    """One line of text found in a frame: its rotated rectangle, corner points and DB score."""

    quad: npt.NDArray[np.float32]
    rect: tuple[tuple[float, float], tuple[float, float], float]
    score: float

    @property
    def box(self) -> Box:
        """Axis-aligned bounding box (x, y, w, h)."""
        x, y, w, h = cv2.boundingRect(self.quad.astype(np.int32))
        return int(x), int(y), int(w), int(h)


class TextLineDetector:
    """PP-OCRv6 DB text detector: finds text lines in a BGR frame, resized so its longer side is `max_side`.

    lines = TextLineDetector(max_side=960).detect_lines(frame)
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        max_side: int = 960,
        thresh: float = 0.3,
        box_thresh: float = 0.5,
        unclip: float = 1.6,
        threads: int | None = None,
    ) -> None:
        path = Path(model_path) if model_path else bundled_model("PP-OCRv6_det_small.onnx")
        self.session = cpu_session(path, threads)
        self._input = self.session.get_inputs()[0].name
        self.max_side = max_side
        self.thresh = thresh
        self.box_thresh = box_thresh
        self.unclip = unclip

    def probability_map(
        self, image_bgr: npt.NDArray[np.uint8], max_side: int | None = None
    ) -> tuple[npt.NDArray[np.float32], float]:
        """The DB text probability map of the resized frame, and the resize scale used."""
        side = max_side or self.max_side
        h, w = image_bgr.shape[:2]
        scale = min(1.0 * side / max(h, w), 4.0)
        nh = max(32, round(h * scale / 32) * 32)
        nw = max(32, round(w * scale / 32) * 32)
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(image_bgr, (nw, nh), interpolation=interp)
        x = (resized.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        prob = self.session.run(None, {self._input: x})[0][0, 0]
        return prob, scale

    def detect_lines(self, image_bgr: npt.NDArray[np.uint8], max_side: int | None = None) -> list[TextLine]:
        """Text lines in frame coordinates, best-scored first."""
        h, w = image_bgr.shape[:2]
        prob, _ = self.probability_map(image_bgr, max_side)
        ph, pw = prob.shape
        sx, sy = w / pw, h / ph
        mask = cv2.dilate((prob > self.thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        lines: list[TextLine] = []
        for cnt in contours[:1000]:
            if len(cnt) < 4:
                continue
            (cx, cy), (rw, rh), angle = cv2.minAreaRect(cnt)
            if min(rw, rh) < 3:
                continue
            x, y, bw, bh = cv2.boundingRect(cnt)
            region = prob[y : y + bh, x : x + bw]
            region_mask = np.zeros_like(region, dtype=np.uint8)
            cv2.drawContours(region_mask, [cnt - [x, y]], -1, 1, -1)
            score = float(region[region_mask > 0].mean()) if region_mask.any() else 0.0
            if score < self.box_thresh:
                continue
            # DB shrinks text regions when training; grow them back by area * ratio / perimeter.
            dist = rw * rh * self.unclip / (2 * (rw + rh))
            rect = ((cx * sx, cy * sy), ((rw + 2 * dist) * sx, (rh + 2 * dist) * sy), angle)
            quad = cv2.boxPoints(rect).astype(np.float32)
            quad[:, 0] = np.clip(quad[:, 0], 0, w - 1)
            quad[:, 1] = np.clip(quad[:, 1], 0, h - 1)
            lines.append(TextLine(quad, rect, score))
        lines.sort(key=lambda ln: -ln.score)
        return lines


def stacked_pairs(boxes: list[Box]) -> list[tuple[int, int]]:
    """Index pairs (upper, lower) of boxes stacked closely enough to be one two-line plate.

    Punjab and many older plates print two lines (letters over digits); a pair qualifies when the
    lower line sits just below the upper one, their horizontal extents overlap and their heights
    are alike.
    """
    pairs: list[tuple[int, int]] = []
    for i, a in enumerate(boxes):
        for j, b in enumerate(boxes):
            if i == j or b[1] <= a[1]:
                continue
            gap = b[1] - (a[1] + a[3])
            overlap = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
            if overlap < 0.4 * min(a[2], b[2]):
                continue
            if gap > 0.8 * max(a[3], b[3]) or gap < -0.5 * min(a[3], b[3]):
                continue
            if not 0.35 < a[3] / max(b[3], 1) < 2.5:
                continue
            pairs.append((i, j))
    return pairs


def union_box(boxes: list[Box]) -> Box:
    """Smallest box holding all `boxes`."""
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return x0, y0, x1 - x0, y1 - y0


class TextPlateDetector:
    """Default plate detector: PP-OCR text lines grouped into plate-shaped regions.

    boxes = TextPlateDetector().detect(frame)
    """

    def __init__(self, lines: TextLineDetector | None = None, max_side: int = 960) -> None:
        self.lines = lines or TextLineDetector(max_side=max_side)

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> list[Box]:
        """Plate-shaped text regions (x, y, w, h), most confident first."""
        boxes = [ln.box for ln in self.lines.detect_lines(image_bgr)]
        groups = [[b] for b in boxes] + [[boxes[i], boxes[j]] for i, j in stacked_pairs(boxes)]
        out: list[Box] = []
        for group in groups:
            box = union_box(group)
            if box[3] >= 6 and 0.8 <= box[2] / max(box[3], 1) <= 12:
                out.append(box)
        return out


class MorphPlateDetector:
    """OpenCV plate-candidate finder: dense vertical edges of dark characters, closed into plate blobs.

    Cheap (a few milliseconds) and model-free, but blind to light-on-dark plates and easily fooled
    by grilles; an alternative to compare against, not the default.

        boxes = MorphPlateDetector().detect(frame)
    """

    def __init__(self, work_width: int = 640, max_candidates: int = 8) -> None:
        self.work_width = work_width
        self.max_candidates = max_candidates

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> list[Box]:
        """Candidate plate boxes (x, y, w, h), the most plate-like first."""
        h, w = image_bgr.shape[:2]
        scale = min(1.0, self.work_width / w)
        small = cv2.resize(image_bgr, (round(w * scale), round(h * scale))) if scale < 1 else image_bgr
        small = np.ascontiguousarray(small, dtype=np.uint8)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (13, 5))
        blackhat = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, kernel)
        sobel = np.abs(cv2.Sobel(blackhat, cv2.CV_32F, 1, 0, ksize=3))
        grad = cv2.GaussianBlur((255 * sobel / max(float(sobel.max()), 1e-6)).astype(np.uint8), (5, 5), 0)
        closed = cv2.morphologyEx(grad, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (17, 5)))
        _, mask = cv2.threshold(closed, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        square = np.ones((3, 3), np.uint8)
        mask = cv2.dilate(cv2.erode(mask, square, iterations=2), square, iterations=2)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        scored: list[tuple[float, Box]] = []
        for cnt in contours:
            x, y, bw, bh = cv2.boundingRect(cnt)
            aspect = bw / max(bh, 1)
            if bh < 8 or not 1.5 <= aspect <= 7 or bw > 0.6 * small.shape[1]:
                continue
            fill = cv2.contourArea(cnt) / (bw * bh)
            score = fill * float(closed[y : y + bh, x : x + bw].mean())
            box = (int(x / scale), int(y / scale), int(bw / scale), int(bh / scale))
            scored.append((score, box))
        scored.sort(key=lambda s: -s[0])
        return [b for _, b in scored[: self.max_candidates]]


class OnnxPlateDetector:
    """A YOLO-style plate detector exported to ONNX, loaded from a path the operator configures.

    Accepted output layouts (batch of one, boxes as centre x, centre y, width, height in input
    pixels of the letterboxed `input_size` square):
    - `[1, N, 5 + C]`: cx, cy, w, h, objectness, then C class scores (YOLOv5 style; C may be 0);
    - `[1, N, 4 + C]` with no objectness when the model's metadata or `objectness=False` says so;
    - `[1, 4 + C, N]`: the transposed YOLOv8 layout, class scores only.
    `layout="auto"` takes the output as channels-first when it has at least 5 rows and more columns
    than rows; pass `layout="rows"` or `"channels"` for a model with very few output boxes.
    The input is `[1, 3, S, S]` RGB scaled to 0-1, letterboxed with grey (114) padding.

        det = OnnxPlateDetector("models/plates.onnx", input_size=640, conf=0.4)
        boxes = det.detect(frame)
    """

    def __init__(
        self,
        model_path: str | Path,
        input_size: int = 640,
        conf: float = 0.25,
        iou: float = 0.45,
        objectness: bool | None = None,
        layout: str = "auto",
        threads: int | None = None,
    ) -> None:
        if layout not in ("auto", "rows", "channels"):
            raise InvalidInput(f"unknown output layout {layout!r}", hint="use auto, rows or channels")
        path = Path(model_path)
        if not path.is_file():
            raise InvalidInput(f"plate detector model {path} not found", hint="set the path to an .onnx file")
        try:
            self.session = cpu_session(path, threads)
        except Exception as exc:  # onnxruntime raises its own types for a bad file
            raise InvalidInput(
                f"{path} is not a loadable ONNX model: {exc}", hint="re-export the model"
            ) from exc
        self._input = self.session.get_inputs()[0].name
        self.input_size = input_size
        self.conf = conf
        self.iou = iou
        self.objectness = objectness
        self.layout = layout

    def _letterbox(self, image_bgr: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float32], float, int, int]:
        h, w = image_bgr.shape[:2]
        s = self.input_size
        scale = min(s / h, s / w)
        nh, nw = round(h * scale), round(w * scale)
        canvas = np.full((s, s, 3), 114, np.uint8)
        top, left = (s - nh) // 2, (s - nw) // 2
        canvas[top : top + nh, left : left + nw] = cv2.resize(image_bgr, (nw, nh))
        x = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        return x, scale, left, top

    def decode(self, raw: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Rows of (cx, cy, w, h) and their scores from a raw model output, in input pixels."""
        out = np.asarray(raw, dtype=np.float32)
        if out.ndim == 3:
            out = out[0]
        if out.ndim != 2:
            raise InvalidInput(
                f"plate detector output shape {raw.shape} is not a YOLO layout",
                hint="export with outputs [1, N, 4+1+C] or [1, 4+C, N]",
            )
        if self.layout == "auto":
            # Real exports have thousands of anchors and a handful of channels.
            transposed = out.shape[0] >= 5 and out.shape[1] > out.shape[0]
        else:
            transposed = self.layout == "channels"
        if transposed:
            out = out.T  # YOLOv8 exports channels first: [4 + C, N]
        if out.shape[1] < 4:
            raise InvalidInput(
                f"plate detector output shape {raw.shape} has fewer than 4 box values",
                hint="export with outputs [1, N, 4+1+C] or [1, 4+C, N]",
            )
        xywh = out[:, :4]
        rest = out[:, 4:]
        # YOLOv5 rows carry objectness then class scores; YOLOv8 (transposed) has class scores only.
        objectness = self.objectness if self.objectness is not None else not transposed
        if rest.shape[1] == 0:
            scores = np.ones(len(out), np.float32)
        elif rest.shape[1] == 1:
            scores = rest[:, 0]
        elif objectness:
            scores = rest[:, 0] * rest[:, 1:].max(axis=1)
        else:
            scores = rest.max(axis=1)
        return xywh, scores

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> list[Box]:
        """Plate boxes (x, y, w, h) in frame pixels, after the confidence threshold and NMS."""
        return [b for b, _ in self.detect_scored(image_bgr)]

    def detect_scored(self, image_bgr: npt.NDArray[np.uint8]) -> list[tuple[Box, float]]:
        """Plate boxes with their scores, best first."""
        x, scale, left, top = self._letterbox(image_bgr)
        raw = self.session.run(None, {self._input: x})[0]
        xywh, scores = self.decode(raw)
        keep = scores >= self.conf
        xywh, scores = xywh[keep], scores[keep]
        if len(scores) == 0:
            return []
        tl = np.stack([xywh[:, 0] - xywh[:, 2] / 2, xywh[:, 1] - xywh[:, 3] / 2], axis=1)
        rects = [
            [float(a), float(b), float(c), float(d)] for (a, b), (c, d) in zip(tl, xywh[:, 2:4], strict=True)
        ]
        idx = cv2.dnn.NMSBoxes(rects, scores.astype(float).tolist(), self.conf, self.iou)
        h, w = image_bgr.shape[:2]
        found: list[tuple[Box, float]] = []
        for i in np.asarray(idx).reshape(-1):
            bx, by, bw, bh = rects[int(i)]
            x0 = max(0.0, (bx - left) / scale)
            y0 = max(0.0, (by - top) / scale)
            x1 = min(float(w), (bx + bw - left) / scale)
            y1 = min(float(h), (by + bh - top) / scale)
            if x1 > x0 and y1 > y0:
                found.append(((round(x0), round(y0), round(x1 - x0), round(y1 - y0)), float(scores[int(i)])))
        found.sort(key=lambda f: -f[1])
        return found
