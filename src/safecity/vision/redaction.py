"""What a redaction hides in each frame of a video: faces, plates and boxes a person drew, and how.

Redaction is offline (a recording, not a live feed), so each region may look ahead: frames are
decided a few frames after they are decoded (`lookahead`), which lets a face be hidden a while
before its first detection as well as after its last. The finders feed `RegionTimeline`, which keeps
each tracked object's detections (faces and plates tracked by `objects.ObjectTracker`, IoU matching:
supervision dropped ByteTrack after 0.26) and answers, for any frame, the boxes to hide:
interpolated between two detections of a track, held (and grown, since the object moves) for some
frames before a track's first detection and after its last, and padded generously.

    faces = FaceFinder()
    timeline = RegionTimeline(hold_before=12, hold_after=12)
    timeline.add(index, faces.find(index, frame_rgb))
    pixelate(frame_rgb, timeline.boxes(index - 12))     # once that frame's future is known
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt
import supervision as sv

from safecity.vision.faces.blazeface import MODEL as FACE_MODEL
from safecity.vision.faces.blazeface import BlazeFaceDetector
from safecity.vision.faces.detectors import FaceDetector
from safecity.vision.faces.face import FaceBox
from safecity.vision.registry import session as shared_session

ImageRGB = npt.NDArray[np.uint8]
Boxes = npt.NDArray[np.float32]

PLATE_MODEL = "PP-OCRv6_det_small"
"""The ANPR domain's text-line detector, grouped into plate-shaped regions (`TextPlateDetector`)."""


def _empty() -> sv.Detections:
    return sv.Detections(xyxy=np.zeros((0, 4), dtype=np.float32), confidence=np.zeros(0, dtype=np.float32))


def _detections(faces: list[FaceBox]) -> sv.Detections:
    """Returns the faces as detections, a face found by two passes once."""
    if not faces:
        return _empty()
    found = sv.Detections(
        xyxy=np.array([[x, y, x + w, y + h] for x, y, w, h in (f.box for f in faces)], dtype=np.float32),
        confidence=np.array([f.score for f in faces], dtype=np.float32),
    )
    return found.with_nms(threshold=0.3, class_agnostic=True)


def pixelate(image: ImageRGB, boxes: Boxes, *, cells: int = 3, min_block: int = 8) -> ImageRGB:
    """Replaces each box of `image` (in place) with solid blocks, about `cells` across its longer side.

    Each block is the mean of the pixels under it, so nothing of the detail inside survives: it cannot
    be undone the way a light blur can. Boxes are clipped to the image; empty ones are skipped.
    """
    height, width = image.shape[:2]
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.float32).reshape(-1, 4).tolist():
        left, top = max(0, math.floor(x1)), max(0, math.floor(y1))
        right, bottom = min(width, math.ceil(x2)), min(height, math.ceil(y2))
        if right - left < 1 or bottom - top < 1:
            continue
        block = max(min_block, math.ceil(max(right - left, bottom - top) / cells))
        region = image[top:bottom, left:right]
        small = cv2.resize(
            region,
            (max(1, math.ceil((right - left) / block)), max(1, math.ceil((bottom - top) / block))),
            interpolation=cv2.INTER_AREA,
        )
        image[top:bottom, left:right] = cv2.resize(
            small, (right - left, bottom - top), interpolation=cv2.INTER_NEAREST
        )
    return image


def grow(boxes: Boxes, factor: npt.NDArray[np.float32] | float, *, up: float = 0.0) -> Boxes:
    """Returns the boxes widened about their centres by `factor` (1.5: half as wide again), and shifted
    up by `up` of their height (a face's box from the detector leaves out the forehead and hair)."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) / 2 * np.asarray(factor, dtype=np.float32).reshape(-1, 1)
    centre[:, 1] -= up * (boxes[:, 3] - boxes[:, 1])
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)


@dataclass
class _Track:
    frames: list[int] = field(default_factory=list)
    boxes: list[npt.NDArray[np.float32]] = field(default_factory=list)


class RegionTimeline:
    """Sparse detections of tracked objects, spread over the frames around them.

    `add(frame, detections)` takes one frame's detections (`tracker_id` set; one without an id is an
    object of its own); `boxes(frame)` returns the padded boxes to hide in that frame, which is final
    once `hold_before` later frames have been added. Between two detections of a track at most
    `max_gap` frames apart the box is interpolated; past a track's ends (or across a longer gap) the
    nearest detection's box is held for `hold_before` frames before and `hold_after` after, growing by
    `grow_per_frame` of its size each frame away from the detection, because the object moves.

    >>> timeline = RegionTimeline(hold_before=8, hold_after=8, pad=1.6)
    >>> timeline.add(0, tracked)
    >>> timeline.boxes(0)
    """

    def __init__(
        self,
        *,
        hold_before: int = 8,
        hold_after: int = 8,
        max_gap: int = 8,
        pad: float = 1.5,
        up: float = 0.0,
        grow_per_frame: float = 0.03,
    ) -> None:
        self.hold_before = hold_before
        self.hold_after = hold_after
        self.max_gap = max_gap
        self.pad = pad
        self.up = up
        self.grow_per_frame = grow_per_frame
        self._tracks: dict[int, _Track] = {}
        self._own = -1

    def add(self, frame: int, detections: sv.Detections) -> None:
        """Records one frame's detections (frames in increasing order)."""
        ids = detections.tracker_id if detections.tracker_id is not None else [None] * len(detections)
        for box, tracker_id in zip(np.asarray(detections.xyxy, dtype=np.float32), ids, strict=True):
            if tracker_id is None or int(tracker_id) < 0:
                key, self._own = self._own, self._own - 1
            else:
                key = int(tracker_id)
            track = self._tracks.setdefault(key, _Track())
            if track.frames and track.frames[-1] == frame:
                track.boxes[-1] = np.concatenate(
                    [np.minimum(track.boxes[-1][:2], box[:2]), np.maximum(track.boxes[-1][2:], box[2:])]
                )
                continue
            track.frames.append(frame)
            track.boxes.append(box.copy())

    def boxes(self, frame: int) -> Boxes:
        """Returns the boxes to hide in `frame` (x1, y1, x2, y2), padded."""
        found: list[npt.NDArray[np.float32]] = []
        factors: list[float] = []
        for track in self._tracks.values():
            frames = track.frames
            after = int(np.searchsorted(frames, frame, side="left"))  # first detection at or after
            if after < len(frames) and frames[after] == frame:
                found.append(track.boxes[after])
                factors.append(self.pad)
                continue
            before = after - 1
            if before >= 0 and after < len(frames) and frames[after] - frames[before] <= self.max_gap:
                share = (frame - frames[before]) / (frames[after] - frames[before])
                found.append(track.boxes[before] * (1 - share) + track.boxes[after] * share)
                nearest = min(frame - frames[before], frames[after] - frame)
                factors.append(self.pad + self.grow_per_frame * nearest)
                continue
            if before >= 0 and frame - frames[before] <= self.hold_after:
                found.append(track.boxes[before])
                factors.append(self.pad + self.grow_per_frame * (frame - frames[before]))
            if after < len(frames) and frames[after] - frame <= self.hold_before:
                found.append(track.boxes[after])
                factors.append(self.pad + self.grow_per_frame * (frames[after] - frame))
        if not found:
            return np.zeros((0, 4), dtype=np.float32)
        return grow(np.stack(found), np.asarray(factors, dtype=np.float32), up=self.up)

    def forget(self, before: int) -> None:
        """Drops what no frame from `before` on can need (tracks whose last detection is long past)."""
        horizon = before - max(self.hold_after, self.max_gap)
        for key in [k for k, t in self._tracks.items() if t.frames[-1] < horizon]:
            del self._tracks[key]
        for track in self._tracks.values():
            cut = int(np.searchsorted(track.frames, horizon, side="left")) - 1
            if cut > 0:
                del track.frames[:cut], track.boxes[:cut]


class FaceFinder:
    """BlazeFace over whole frames for faces from `coarse_min_face_px` up on every frame, and every
    `fine_every` frames down to `min_face_px`; in the frames between, the small candidates of the last
    fine pass are looked at again, each alone (`BlazeFaceDetector.look_around`). The score is lower than
    the recogniser's: a false face costs a few pixelated pixels, a missed one a person's privacy.

    The whole-frame fine pass costs about four times the coarse ones on a 720p frame, and small faces
    are far from the camera and move few pixels a frame, so the timeline's interpolation carries them
    between passes. But a face can score under `min_score` on the fine frames and over it between them
    (a head turning, motion blur, fog): so everything the fine pass scores from `watch_score` up and
    smaller than the coarse passes can find is a candidate, looked for again on each frame until the
    next fine pass, in a square four times its width at the fine pass's own scale. A mid-size face that
    appears between fine passes (turning round, stepping out from behind a car) is found by the coarse
    passes, which reach down to `coarse_min_face_px`.

    >>> FaceFinder(min_face_px=20).find(index, frame_rgb)   # sv.Detections, xyxy in frame pixels
    """

    def __init__(
        self,
        *,
        min_face_px: float = 20.0,
        min_score: float = 0.3,
        fine_every: int = 3,
        coarse_min_face_px: float = 40.0,
        watch_score: float = 0.15,
        max_watched: int = 24,
    ) -> None:
        # One thread a search: a redaction searches two frames at once (`FacesAhead`) instead, since
        # ONNX Runtime's threads spin (a second thread here measured twice the CPU for the same frames).
        session = shared_session(FACE_MODEL, threads=1)
        self.fine = BlazeFaceDetector(
            min_face_px=min_face_px, min_score=min(watch_score, min_score), session=session
        )
        self.near = BlazeFaceDetector(min_face_px=min_face_px, min_score=min_score, session=session)
        self.coarse = BlazeFaceDetector(
            min_face_px=max(coarse_min_face_px, min_face_px), min_score=min_score, session=session
        )
        self.fine_every = max(1, fine_every)
        self.min_face_px = min_face_px
        self.min_score = min_score
        self.coarse_min_face_px = max(coarse_min_face_px, min_face_px)
        self.watch_score = watch_score
        self.max_watched = max_watched
        self._watched: Boxes = np.zeros((0, 4), dtype=np.float32)

    def find(self, index: int, image_rgb: ImageRGB) -> sv.Detections:
        """Returns the faces of one frame (the fine pass on every `fine_every`-th frame)."""
        if self.fine_due(index):
            faces, self._watched = self.fine_pass(image_rgb)
        else:
            faces = self.between_pass(image_rgb, self._watched)
        return _detections(faces)

    def fine_due(self, index: int) -> bool:
        """Returns whether frame `index` gets the whole-frame pass down to `min_face_px`."""
        return index % self.fine_every == 0

    def fine_pass(self, image_rgb: ImageRGB) -> tuple[list[FaceBox], Boxes]:
        """Returns the faces of a fine frame and the candidates (x1, y1, x2, y2) to look at until the next."""
        candidates = self.fine.detect(image_rgb)
        small = [f.box for f in candidates if max(f.box[2], f.box[3]) < 1.25 * self.coarse_min_face_px]
        watched = np.array(
            [[x, y, x + w, y + h] for x, y, w, h in small[: self.max_watched]], dtype=np.float32
        ).reshape(-1, 4)
        return [f for f in candidates if f.score >= self.min_score], watched

    def between_pass(
        self, image_rgb: ImageRGB, watched: Boxes | Future[tuple[list[FaceBox], Boxes]]
    ) -> list[FaceBox]:
        """Returns the faces of a frame between fine passes: the coarse pass, and the last fine pass's
        candidates looked at again (`watched`, or the fine pass still running, awaited after the coarse)."""
        faces = self.coarse.detect(image_rgb)
        if isinstance(watched, Future):
            watched = watched.result()[1]
        return faces + self.near.look_around(image_rgb, watched)

    def describe(self) -> dict[str, Any]:
        """Returns the model and settings, for a redaction's provenance."""
        return {
            "model": FACE_MODEL,
            "min_face_px": self.min_face_px,
            "min_score": self.min_score,
            "fine_every": self.fine_every,
            "coarse_min_face_px": self.coarse_min_face_px,
            "watch_score": self.watch_score,
            "max_watched": self.max_watched,
        }


def _then(future: Future[Any], fn: Callable[[Any], sv.Detections]) -> Future[sv.Detections]:
    """Returns a future of `fn` of the future's result (run by the thread that completes it)."""
    chained: Future[sv.Detections] = Future()

    def done(source: Future[Any]) -> None:
        try:
            chained.set_result(fn(source.result()))
        except BaseException as exc:  # whatever it is, the caller of result() gets it
            chained.set_exception(exc)

    future.add_done_callback(done)
    return chained


class FacesAhead:
    """`FaceFinder.find` for the frames to come, in `workers` threads; each frame's finds in a future.

    ONNX Runtime lets go of the interpreter and the finder's session runs on one thread, so two frames
    searched at once use two cores. The finds are those of `find` called frame by frame: a frame
    between fine passes runs its coarse pass, then waits for the candidates of the fine pass before it
    (submitted earlier, so a worker has it already) and looks at them again. Frames must be submitted
    in order; the caller takes the futures in order too (a tracker needs them so).

    >>> ahead = FacesAhead(FaceFinder())
    >>> future = ahead.submit(index, frame_rgb)       # …later: tracker.update(future.result())
    >>> ahead.close()
    """

    def __init__(self, finder: FaceFinder, *, workers: int = 2) -> None:
        self.finder = finder
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="redact-faces")
        self._fine: Future[tuple[list[FaceBox], Boxes]] | None = None

    def submit(self, index: int, image_rgb: ImageRGB) -> Future[sv.Detections]:
        """Starts the search of frame `index` (the image must not change until its future is done)."""
        finder = self.finder
        if finder.fine_due(index):
            self._fine = self._pool.submit(finder.fine_pass, image_rgb)
            return _then(self._fine, lambda found: _detections(found[0]))
        watched = self._fine if self._fine is not None else finder._watched
        return self._pool.submit(lambda: _detections(finder.between_pass(image_rgb, watched)))

    def close(self) -> None:
        """Stops the searches not yet started and waits for the others."""
        self._pool.shutdown(wait=True, cancel_futures=True)


class PlateFinder:
    """The ANPR domain's plate localiser (PP-OCR text lines grouped into plate shapes) about every
    `seconds` (or every `every` frames, if given); the timeline holds each plate's box between searches.

    A search costs about as much as the face finder's frame at 720p, almost all of it in ONNX Runtime's
    text detector, so how often it runs sets the cost. Searching every 0.2 s (5 frames at 24 and 25
    fps, 6 at 30, 3 at 12.5) instead of every third frame left no more plates visible on the shared
    clips with vehicles (bench_evidence.py --plates: 11 frames against 12 in 1,645) and cut faces and
    plates at 720p from 72 to 65 ms of CPU a frame. The interval is in seconds, not frames: every 6th
    frame at 12.5 fps (0.48 s) left two frames more on car-detection than every 3rd, and every 9th at
    25 fps more on the dashcam clip (90 frames against 85, counted before the check kept plate-sized
    finds only). The detector's input stays 640 px: at 480 px it left 162 such frames against 85.

    >>> finder = PlateFinder()
    >>> finder.for_rate(25.0)          # once the clip's frame rate is known: a search every 5 frames
    >>> finder.find(index, frame_rgb)
    """

    def __init__(self, *, every: int | None = None, seconds: float = 0.2, max_side: int = 640) -> None:
        from safecity.vision.plates.detectors import TextLineDetector, TextPlateDetector

        self.detector = TextPlateDetector(TextLineDetector(max_side=max_side, threads=1))
        self.seconds = seconds
        self.fixed = every is not None
        self.every = max(1, every or 3)
        self.max_side = max_side
        self.paced = self.fixed

    def for_rate(self, fps: float) -> None:
        """Sets the frames between searches for a clip of `fps` frames a second (unless `every` was given)."""
        if not self.fixed and fps > 0:
            self.every = max(1, math.floor(self.seconds * fps + 0.5))
            self.paced = True

    def due(self, index: int) -> bool:
        """Returns whether frame `index` gets a detection pass."""
        return index % self.every == 0

    def find(self, index: int, image_rgb: ImageRGB) -> sv.Detections:
        """Returns the plate-shaped regions of one frame (empty between passes)."""
        if not self.due(index):
            return _empty()
        boxes = self.detector.detect(np.ascontiguousarray(image_rgb[:, :, ::-1]))
        if not boxes:
            return _empty()
        return sv.Detections(
            xyxy=np.array([[x, y, x + w, y + h] for x, y, w, h in boxes], dtype=np.float32),
            confidence=np.ones(len(boxes), dtype=np.float32),
        )

    def describe(self) -> dict[str, Any]:
        """Returns the model and settings, for a redaction's provenance."""
        pace = {} if self.fixed else {"every_s": self.seconds}
        return {
            "model": PLATE_MODEL,
            "max_side": self.max_side,
            **pace,
            **({"every": self.every} if self.paced else {}),
        }


#: How much wider a followed box is hidden than the tracker's own box (trailing and jitter).
FOLLOW_MARGIN = 1.2
#: How many frames of its last movement a followed box is stretched ahead (a tracker lags a few).
LEAD_FRAMES = 3
#: MIL samples at random: seeded, the same clip and box give the same redaction every time.
TRACKER_SEED = 20_24


class BoxFollower:
    """A box a person drew on one frame, carried to later frames by OpenCV's MIL tracker.

    The tracker runs on a copy of the frame scaled to at most `work_side` pixels (MIL's cost grows
    with the area it searches), seeded so that a redaction can be made again the same. Each frame
    hides where the object was, where it is and `LEAD_FRAMES` of its movement ahead, a fifth wider
    (`FOLLOW_MARGIN`), since the tracker trails a moving object. A frame where
    the tracker loses the object keeps the last box, grown a little each frame, so the object stays
    hidden while it is found again or the range ends.

    >>> follower = BoxFollower((100, 80, 60, 60))
    >>> follower.update(frame_rgb)     # the box (x1, y1, x2, y2) in this frame
    """

    def __init__(self, box: Sequence[float], *, follow: bool = True, work_side: int = 640) -> None:
        x, y, w, h = (float(v) for v in box)
        self.box = np.array([x, y, x + w, y + h], dtype=np.float32)
        self.follow = follow
        self.work_side = work_side
        self._tracker: Any = None
        self._scale = 1.0
        self._lost = 0

    def update(self, image_rgb: ImageRGB) -> npt.NDArray[np.float32]:
        """Returns the box in this frame (the first call: the box as drawn)."""
        if not self.follow:
            return self.box
        height, width = image_rgb.shape[:2]
        self._scale = min(1.0, self.work_side / max(height, width))
        small = cv2.resize(image_rgb, (round(width * self._scale), round(height * self._scale)))
        if self._tracker is None:
            cv2.setRNGSeed(TRACKER_SEED)
            self._tracker = cv2.TrackerMIL_create()  # type: ignore[attr-defined]
            x1, y1, x2, y2 = (self.box * self._scale).tolist()
            self._tracker.init(small, (round(x1), round(y1), max(2, round(x2 - x1)), max(2, round(y2 - y1))))
            return self.box
        ok, (x, y, w, h) = self._tracker.update(small)
        if ok and w > 0 and h > 0:
            self._lost = 0
            found = np.array([x, y, x + w, y + h], dtype=np.float32) / np.float32(self._scale)
            # The tracker's box trails a moving object by a few pixels, and jitters: hide where it was,
            # where it is and where it is heading (as far again), with a margin, so no edge shows.
            ahead = found + LEAD_FRAMES * (found - self.box)
            corners = np.stack([self.box, found, ahead])
            shown = np.concatenate([corners[:, :2].min(axis=0), corners[:, 2:].max(axis=0)])
            self.box = found
            return grow(shown[None], FOLLOW_MARGIN)[0]
        self._lost += 1
        return grow(self.box[None], 1 + 0.05 * min(self._lost, 20))[0]


def frames_with_faces(
    path: Path, detectors: dict[str, FaceDetector], *, progress: Callable[[int], None] | None = None
) -> dict[str, list[int]]:
    """Returns, for each named detector, the frames of a video where it finds a face (checks a redaction).

    >>> frames_with_faces(Path("redacted.mp4"), {"hog": DlibHogDetector(upsample=1)})
    {'hog': []}
    """
    found: dict[str, list[int]] = {name: [] for name in detectors}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            image = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
            for name, detector in detectors.items():
                if detector.detect(image):
                    found[name].append(index)
            if progress is not None:
                progress(index + 1)
    return found


def _overlaps(
    box: tuple[int, int, int, int], others: list[tuple[int, int, int, int]], min_iou: float
) -> bool:
    x, y, w, h = box
    for ox, oy, ow, oh in others:
        inter = max(0, min(x + w, ox + ow) - max(x, ox)) * max(0, min(y + h, oy + oh) - max(y, oy))
        if inter / (w * h + ow * oh - inter + 1e-9) >= min_iou:
            return True
    return False


def frames_with_faces_left(
    copy: Path, original: Path, detectors: dict[str, FaceDetector], *, min_iou: float = 0.3
) -> dict[str, list[int]]:
    """Returns, for each named detector, the frames of a redacted copy where it finds a face at a place
    where it finds one in the same frame of the original: a face the redaction left visible. (A hit in
    the copy alone is the detector reading the solid blocks' new surroundings, a hand or a sign, as a
    face: no face of the original is there.)

    >>> frames_with_faces_left(Path("redacted.mp4"), Path("original.mp4"), {"hog": DlibHogDetector()})
    {'hog': []}
    """
    left: dict[str, list[int]] = {name: [] for name in detectors}
    with av.open(str(copy)) as redacted, av.open(str(original)) as source:
        pairs = zip(redacted.decode(video=0), source.decode(video=0), strict=False)
        for index, (shown, recorded) in enumerate(pairs):
            shown_rgb = np.asarray(shown.to_ndarray(format="rgb24"), dtype=np.uint8)
            recorded_rgb: ImageRGB | None = None
            for name, detector in detectors.items():
                hits = [face.box for face in detector.detect(shown_rgb)]
                if not hits:
                    continue
                if recorded_rgb is None:
                    recorded_rgb = np.asarray(recorded.to_ndarray(format="rgb24"), dtype=np.uint8)
                faces = [face.box for face in detector.detect(recorded_rgb)]
                if any(_overlaps(hit, faces, min_iou) for hit in hits):
                    left[name].append(index)
    return left


PlateBox = tuple[int, int, int, int]
"""A plate's box (x, y, w, h) in frame pixels, as the localiser gives it."""


def _share_hidden(box: PlateBox, hidden: Boxes) -> float:
    """Returns the share of a plate's characters that the pixelated boxes (x1, y1, x2, y2) cover.

    The localiser's box (x, y, w, h) is the text line grown by DB's unclip margin, about 0.8 of the
    line's height on each side (the line is some 40% of the box's height): the characters are taken as
    the box less a quarter of its height on each side.
    """
    x, y, w, h = box
    margin = h // 4
    x, y, w, h = x + margin, y + margin, w - 2 * margin, h - 2 * margin
    if w <= 0 or h <= 0:
        return 1.0
    covered = np.zeros((h, w), dtype=bool)
    for x1, y1, x2, y2 in np.asarray(hidden, dtype=np.float32).reshape(-1, 4).tolist():
        left, top = max(0, math.floor(x1) - x), max(0, math.floor(y1) - y)
        right, bottom = min(w, math.ceil(x2) - x), min(h, math.ceil(y2) - y)
        if right > left and bottom > top:
            covered[top:bottom, left:right] = True
    return float(covered.mean())


def plates_left(
    in_copy: Mapping[int, Sequence[PlateBox]],
    in_original: Mapping[int, Sequence[PlateBox]],
    *,
    hidden: Mapping[int, Boxes] | None = None,
    min_iou: float = 0.3,
) -> list[int]:
    """Returns the frames (in order) where a plate found in a redacted copy lies where one is found in the
    original's same frame (IoU ≥ `min_iou`) and the redaction did not pixelate all of that original
    plate's characters (`hidden`: the boxes pixelated in each frame, x1, y1, x2, y2): a plate left
    visible.

    A find in the copy alone is the localiser reading the blocks' new edges as text, and a find on a
    plate hidden whole is it reading the solid blocks where the plate was (no character is left there).

    >>> plates_left({4: [(10, 10, 40, 12)], 5: [(0, 0, 9, 3)]}, {4: [(11, 10, 40, 12)], 5: [(0, 0, 9, 3)]},
    ...             hidden={5: np.array([[0, 0, 20, 10]], np.float32)})
    [4]
    """
    hidden = hidden or {}
    left: list[int] = []
    for index, found in sorted(in_copy.items()):
        shown = [
            plate
            for plate in in_original.get(index, ())
            if _share_hidden(plate, hidden.get(index, np.zeros((0, 4), np.float32))) < 1.0
        ]
        if any(_overlaps(box, shown, min_iou) for box in found):
            left.append(index)
    return left


def plate_sized(box: PlateBox, width: int, height: int) -> bool:
    """Returns whether a localiser's find (x, y, w, h) in a `width` x `height` frame could be a plate:
    wider than tall (1.2 times, its unclip margin included), at most a sixth of the frame's shorter side
    tall and a third of its longer side wide. The localiser groups lane markings, foliage and road
    edges into text-like boxes 200-400 px across on the shared dashcam clip; a plate that close to the
    camera is found by any setting of the finder, so leaving such boxes out costs the check nothing.

    >>> plate_sized((400, 300, 90, 24), 1280, 720), plate_sized((0, 250, 403, 265), 960, 540)
    (True, False)
    """
    _, _, w, h = box
    return 1.2 * h <= w and h <= min(width, height) / 6 and w <= max(width, height) / 3


def reference_plates(path: Path, *, frames: Collection[int] | None = None) -> dict[int, list[PlateBox]]:
    """Returns the plates the localiser finds at full strength (every frame, at the frame's own size: no
    scaling down) in each frame of a video (or only in `frames`), by frame, plate-sized finds only
    (`plate_sized`); frames with none are left out.

    >>> reference_plates(Path("original.mp4"))
    {12: [(410, 388, 52, 14)], …}
    """
    from safecity.vision.plates.detectors import TextLineDetector, TextPlateDetector

    found: dict[int, list[PlateBox]] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = stream.codec_context.width, stream.codec_context.height
        detector = TextPlateDetector(TextLineDetector(max_side=max(width, height), threads=1))
        for index, frame in enumerate(container.decode(stream)):
            if frames is not None and index not in frames:
                continue
            boxes = detector.detect(np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8))
            plates = [(int(x), int(y), int(w), int(h)) for x, y, w, h in boxes]
            plates = [box for box in plates if plate_sized(box, width, height)]
            if plates:
                found[index] = plates
    return found


def frames_with_plates_left(
    copy: Path, original: Path, *, hidden: Mapping[int, Boxes] | None = None, min_iou: float = 0.3
) -> list[int]:
    """Returns the frames of a redacted copy where the reference localiser (`reference_plates`) finds a
    plate left visible (`plates_left`; `hidden`: the boxes the redaction pixelated, by frame). The copy
    is searched only on the frames where the original shows a plate (elsewhere no find can count).

    >>> frames_with_plates_left(Path("redacted.mp4"), Path("original.mp4"), hidden=pixelated)
    []
    """
    recorded = reference_plates(original)
    found = reference_plates(copy, frames=set(recorded))
    return plates_left(found, recorded, hidden=hidden, min_iou=min_iou)
