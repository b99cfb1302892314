"""Perception benchmark on ../shared/data: vehicles on plate photos, persons on Mall frames, speed, memory.

Prints one JSON object on stdout:
- `vehicles`: per plate set (us, eu, br), the share of photos where a vehicle box (car, motorcycle,
  bus, truck, bicycle) holds the annotated plate box (at least 90% of the plate's area inside it;
  `strict` asks for all of it). pk has no plate boxes: its 11 whole-vehicle photos count as found
  when any vehicle is detected, and its plate crops are left out.
- `persons`: recall and precision on the 40 Mall frames. Each annotated head point may be claimed by
  one person box that contains it and each box by one head (an assignment that first maximises the
  number of pairs, then prefers heads near the top centre of the box); recall = paired heads / heads,
  precision = paired boxes / boxes. The score threshold is fitted by cross-validation: on one half of
  the frames (first 20 / last 20, so neighbouring frames never sit on both sides) the threshold with
  the best recall at precision >= 0.9 is chosen and the figures are those of the other half; both
  folds are reported, and `held_out` pools the two held-out halves.
- `speed`: detector milliseconds per frame (letterbox, model, decoding, NMS) on ONE core (ONNX
  Runtime intra-op threads 1) per configuration, on a 640x480 Mall frame and a 1920x1080 plate photo;
  `batch` compares `detect_many` over 4 frames with 4 calls of `detect`.
- `memory`: resident memory added by loading the model, and after its first frames.
- `faces`: the face encoders' and detectors' figures (`face_figures()`: bench_vision_faces.py).

A configuration is `<input size>` (the frame's longer side scaled to it) or `<size>t<cols>x<rows>`
(also that many overlapping tiles of the frame, merged with the whole frame by NMS), e.g. `416`,
`640`, `416t2x2`; a trailing `s` adds the second look at a zoomed-out copy of frames where no large
vehicle was found (`320s`: what `safecity vision detect` runs), a trailing `p` keeps persons' partial
boxes apart (plain NMS, as before person parts were merged: `320p`). The first is the default detector's.
Each configuration reports `second_looks` (plate photos, Mall frames that needed one); its speed on
the Mall frame (no vehicle: the second look always runs) against the plain configuration's is what
the second look costs.

`--detector yolo11n` measures the optional YOLO11n plug-in instead (AGPL-3.0 weights; install it first
with `safecity models install yolo11n --accept-licence`): the same figures, with one threshold (0.25) for
`at_default_threshold`, no tiles, no batch and no memory probe.

    .venv/bin/python bench/bench_vision.py [--quick] [--speed-only] [--configs 320,416,512,640,416t2x2]
    .venv/bin/python bench/bench_vision.py --detector yolo11n --configs 640,416 --no-faces
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import supervision as sv
from rich.console import Console
from scipy.optimize import linear_sum_assignment

from safecity.vision.objects import (
    COCO_CLASSES,
    VEHICLE_CLASSES,
    YOLO11N,
    NanoDetDetector,
    YoloDetector,
    default_thresholds,
)

console = Console(stderr=True)
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FLOOR = 0.05
"""Detections are collected once above this score; every threshold above it is then scored offline."""
MIN_PRECISION = 0.9
VEHICLE_GOAL = 0.98

Image = npt.NDArray[np.uint8]
PlateBox = tuple[float, float, float, float]
VehiclePhoto = tuple[str, str, sv.Detections, PlateBox | None]
""" (set, photo name, vehicles found, plate box or None)."""


def face_figures(quick: bool) -> dict[str, Any]:
    """The face encoders' and detectors' figures, from bench_vision_faces.py run beside this one.

    Per encoder: TAR at FAR <= 1% on cctv/pairs.csv with thresholds fitted by cross-validation over
    identities, the spread of held-out FAR, ms per face; per detector: CCTV probe recall, ms per frame.
    A process of its own, so its models' memory and one-core timings are its own.
    """
    script = Path(__file__).with_name("bench_vision_faces.py")
    done = subprocess.run(
        [sys.executable, str(script), *(["--quick"] if quick else [])], capture_output=True, text=True
    )
    if done.returncode != 0:
        return {"error": (done.stdout + done.stderr).strip().splitlines()[-1:]}
    return dict(json.loads(done.stdout[done.stdout.index("{") :]))


def rss_mb() -> float:
    """This process's resident memory in MB (Linux)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


DETECTOR = "nanodet"
"""Which detector is measured (`--detector`): the shipped NanoDet, or the yolo11n plug-in."""
YOLO_THRESHOLD = 0.25


def detector_for(
    config: str, *, threads: int | None = None, floor: bool = True
) -> NanoDetDetector | YoloDetector:
    """The detector of a configuration: collecting every object over FLOOR, or with the fitted thresholds."""
    match = re.fullmatch(r"(\d+)(?:t(\d+)x(\d+))?(s?)(p?)", config)
    if match is None:
        raise SystemExit(f"bad configuration {config!r}: use e.g. 416, 416t2x2, 320s or 320p")
    size, cols, rows = int(match[1]), int(match[2] or 1), int(match[3] or 1)
    second_look, plain_nms = bool(match[4]), bool(match[5])
    if DETECTOR == YOLO11N:
        if cols * rows > 1 or second_look or plain_nms:
            raise SystemExit(
                f"{config}: tiles and second looks are NanoDet's; measure yolo11n at plain sizes"
            )
        return YoloDetector(
            YOLO11N, min_confidence=FLOOR if floor else YOLO_THRESHOLD, input_size=size, threads=threads
        )
    return NanoDetDetector(
        min_confidence=FLOOR if floor else None,
        input_size=size,
        tiles=(cols, rows),
        second_look=second_look,
        merge_person_parts=not plain_nms,
        threads=threads,
    )


# -- vehicles on the plate photos -----------------------------------------------------------------


def plate_photos(limit: int | None) -> list[tuple[str, Path, tuple[float, float, float, float] | None]]:
    """(set, photo, plate box x, y, w, h or None) for every whole-vehicle photo."""
    found: list[tuple[str, Path, tuple[float, float, float, float] | None]] = []
    for region in ("us", "eu", "br"):
        labels = sorted((DATA / "plates" / region).glob("*.txt"))[:limit]
        for label in labels:
            name, x, y, w, h, _ = label.read_text().strip().split("\t")[:6]
            found.append((region, label.with_name(name), (float(x), float(y), float(w), float(h))))
    with (DATA / "plates" / "pk" / "labels.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["view"] == "vehicle"][:limit]
    found.extend(("pk", DATA / "plates" / "pk" / r["file"], None) for r in rows)
    return found


def holds_plate(vehicles: sv.Detections, plate: tuple[float, float, float, float], share: float) -> bool:
    """Whether a vehicle box covers at least `share` of the plate box's area."""
    if not len(vehicles):
        return False
    x, y, w, h = plate
    ix = np.clip(np.minimum(vehicles.xyxy[:, 2], x + w) - np.maximum(vehicles.xyxy[:, 0], x), 0, None)
    iy = np.clip(np.minimum(vehicles.xyxy[:, 3], y + h) - np.maximum(vehicles.xyxy[:, 1], y), 0, None)
    return bool((ix * iy >= share * w * h - 1e-6).any())


def vehicle_rate(items: list[VehiclePhoto], threshold: float, share: float = 0.9) -> float:
    hits = 0
    for _, _, dets, plate in items:
        kept = dets[dets.confidence >= threshold]
        hits += len(kept) > 0 if plate is None else holds_plate(kept, plate, share)
    return hits / max(len(items), 1)


def fit_vehicle_threshold(items: list[VehiclePhoto]) -> float:
    """The highest threshold that still finds the plate's vehicle on >= 98% of the photos."""
    passing = [t for t in np.arange(FLOOR, 0.951, 0.01) if vehicle_rate(items, float(t)) >= VEHICLE_GOAL]
    return round(float(max(passing)) if passing else FLOOR, 2)


def vehicle_figures(items: list[VehiclePhoto], threshold: float, mall: list[sv.Detections]) -> dict[str, Any]:
    folds: list[dict[str, Any]] = []
    held = 0.0
    # Alternate photos of each set go to the two halves, so both see every country.
    for fit, test, label in (
        (items[0::2], items[1::2], "fit even photos"),
        (items[1::2], items[0::2], "fit odd photos"),
    ):
        fitted = fit_vehicle_threshold(fit)
        rate = vehicle_rate(test, fitted)
        held += rate * len(test)
        folds.append({"fold": label, "threshold": fitted, "rate": round(rate, 4), "photos": len(test)})
    per_set: dict[str, Any] = {}
    for region in ("us", "eu", "br", "pk"):
        subset = [i for i in items if i[0] == region]
        if not subset:
            continue
        per_set[region] = {
            "photos": len(subset),
            "rate": round(vehicle_rate(subset, threshold), 4),
            "strict_rate": round(vehicle_rate(subset, threshold, 1.0), 4),
            "missed": [name for r, name, d, p in subset if vehicle_rate([(r, name, d, p)], threshold) < 1],
        }
        if region == "pk":
            per_set[region]["note"] = "no plate boxes in pk: a vehicle photo counts when any vehicle is found"
    return {
        "folds": folds,
        "held_out_rate": round(held / max(len(items), 1), 4),
        "fitted_threshold": round(statistics.mean(f["threshold"] for f in folds), 2),
        "at_default_threshold": {
            "threshold": threshold,
            "rate": round(vehicle_rate(items, threshold), 4),
            "photos": len(items),
            "sets": per_set,
            "false_vehicles_on_mall_frames": sum(int((d.confidence >= threshold).sum()) for d in mall),
        },
    }


# -- persons on the Mall frames -------------------------------------------------------------------


def mall_frames(limit: int | None) -> list[tuple[str, Image, npt.NDArray[np.float32]]]:
    folder = DATA / "crowd" / "mall"
    heads = json.loads((folder / "heads.json").read_text())
    names = sorted(heads)
    if limit is not None:
        names = names[:: max(1, len(names) // limit)][:limit]
    frames = []
    for name in names:
        image = cv2.imread(str(folder / name))
        if image is None:
            raise SystemExit(f"{folder / name} cannot be read")
        frames.append((name, image, np.array(heads[name], np.float32).reshape(-1, 2)))
    return frames


def paired(boxes: npt.NDArray[np.float32], heads: npt.NDArray[np.float32]) -> int:
    """How many (box, head) pairs a one-to-one assignment of heads to the boxes containing them makes."""
    if not len(boxes) or not len(heads):
        return 0
    x, y = heads[:, 0][None], heads[:, 1][None]
    x1, y1, x2, y2 = (boxes[:, i][:, None] for i in range(4))
    inside = (x >= x1) & (x <= x2) & (y >= y1) & (y <= y2)
    # Among assignments with the most pairs, prefer each head near where a head sits in its box.
    width, height = np.maximum(x2 - x1, 1), np.maximum(y2 - y1, 1)
    distance = np.hypot((x - (x1 + x2) / 2) / width, (y - (y1 + 0.12 * height)) / height)
    cost = np.where(inside, distance, 1e6)
    rows, cols = linear_sum_assignment(cost)
    return int(inside[rows, cols].sum())


def person_scores(
    found: list[tuple[sv.Detections, npt.NDArray[np.float32]]], threshold: float
) -> tuple[int, int, int]:
    """(paired, heads, boxes) over frames at one threshold."""
    pairs = heads = boxes = 0
    for dets, points in found:
        kept = dets.xyxy[dets.confidence >= threshold]
        pairs += paired(kept, points)
        heads += len(points)
        boxes += len(kept)
    return pairs, heads, boxes


def summary(pairs: int, heads: int, boxes: int) -> dict[str, Any]:
    return {
        "recall": round(pairs / max(heads, 1), 4),
        "precision": round(pairs / max(boxes, 1), 4),
        "heads": heads,
        "boxes": boxes,
    }


def fit_threshold(found: list[tuple[sv.Detections, npt.NDArray[np.float32]]]) -> float:
    """The threshold with the best recall at precision >= MIN_PRECISION (else the most precise one)."""
    best: tuple[float, float, float] | None = None
    fallback = (-1.0, 0.95)
    for threshold in np.arange(FLOOR, 0.951, 0.01):
        pairs, heads, boxes = person_scores(found, float(threshold))
        recall, precision = pairs / max(heads, 1), pairs / max(boxes, 1)
        if precision >= MIN_PRECISION and (best is None or recall > best[0]):
            best = (recall, precision, float(threshold))
        if precision > fallback[0]:
            fallback = (precision, float(threshold))
    return round(best[2] if best else fallback[1], 2)


def person_figures(
    found: list[tuple[sv.Detections, npt.NDArray[np.float32]]], threshold: float
) -> dict[str, Any]:
    half = len(found) // 2
    folds: list[dict[str, Any]] = []
    held = [0, 0, 0]
    for fit, test, label in (
        (found[:half], found[half:], "fit first half"),
        (found[half:], found[:half], "fit second half"),
    ):
        fitted = fit_threshold(fit)
        scores = person_scores(test, fitted)
        held = [a + b for a, b in zip(held, scores, strict=True)]
        folds.append({"fold": label, "threshold": fitted, **summary(*scores)})
    return {
        "frames": len(found),
        "folds": folds,
        "held_out": summary(*held),
        "fitted_threshold": round(statistics.mean(f["threshold"] for f in folds), 2),
        "at_default_threshold": {"threshold": threshold, **summary(*person_scores(found, threshold))},
    }


# -- speed and memory -----------------------------------------------------------------------------


def timed(run: Callable[[], object], repeat: int) -> dict[str, float]:
    """Milliseconds of one call: the least CPU time of this thread (the figure a busy shared machine disturbs
    least: with one intra-op thread the model runs on the calling thread) and the median wall time."""
    run()
    cpu, wall = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.thread_time()
        run()
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return {"cpu_ms": round(1000 * min(cpu), 1), "wall_median_ms": round(1000 * statistics.median(wall), 1)}


def speed_figures(configs: list[str], frames: dict[str, Image], repeat: int) -> dict[str, Any]:
    result: dict[str, Any] = {"intra_op_threads": 1, "runs": repeat}
    for config in configs:
        detector = detector_for(config, threads=1, floor=False)
        result[config] = {
            name: timed(lambda d=detector, f=frame: d.detect(f), repeat) for name, frame in frames.items()
        }
    detector = detector_for(configs[0], threads=1, floor=False)
    if not isinstance(detector, NanoDetDetector):
        return result
    four = [next(iter(frames.values()))] * 4
    one_by_one = timed(lambda: [detector.detect(f) for f in four], repeat)
    batched = timed(lambda: detector.detect_many(four), repeat)
    result["batch_of_4"] = {
        "config": configs[0],
        "detect_per_frame_cpu_ms": round(one_by_one["cpu_ms"] / 4, 1),
        "detect_many_per_frame_cpu_ms": round(batched["cpu_ms"] / 4, 1),
    }
    return result


MEMORY_PROBE = """
import json, os, sys

def rss_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

before = rss_mb()
import cv2
from safecity.vision.objects import NanoDetDetector
imported = rss_mb()
detector = NanoDetDetector()
loaded = rss_mb()
image = cv2.imread(sys.argv[1])
for _ in range(3):
    detector.detect(image)
used = rss_mb()
print(json.dumps({"import_mb": round(imported - before, 1), "model_loaded_mb": round(loaded - imported, 1),
                  "after_3_frames_mb": round(used - imported, 1)}))
"""


def memory_figures(image: Path) -> dict[str, Any]:
    """Resident memory the model adds, measured in a fresh process (ONNX Runtime keeps what it grew)."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(image)], capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--quick", action="store_true", help="a small run: 10 photos per set, 10 frames, fewer timings"
    )
    ap.add_argument("--speed-only", action="store_true", help="only the timings and memory (no accuracy)")
    ap.add_argument("--no-faces", action="store_true", help="leave out the faces (bench_vision_faces.py)")
    ap.add_argument(
        "--configs", default="320,416,512,640,416t2x2", help="comma-separated; the first is the default"
    )
    ap.add_argument(
        "--detector", choices=["nanodet", YOLO11N], default="nanodet", help="nanodet, or the yolo11n plug-in"
    )
    args = ap.parse_args()
    global DETECTOR
    DETECTOR = args.detector
    if not DATA.is_dir():
        print(json.dumps({"error": f"{DATA} not found"}))
        sys.exit(1)
    configs = args.configs.split(",")
    limit = 10 if args.quick else None
    photos = plate_photos(limit)
    frames = mall_frames(4 if args.quick else None)
    model = YOLO11N if args.detector == YOLO11N else "nanodet-m-416"
    result: dict[str, Any] = {"model": model, "default_config": configs[0], "configs": {}}
    for config in [] if args.speed_only else configs:
        console.print(f"[dim]{config}: {len(photos)} plate photos, {len(frames)} Mall frames[/dim]")
        detector = detector_for(config)
        if isinstance(detector, NanoDetDetector):
            thresholds = default_thresholds(detector.input_size, tiled=detector.tiles != (1, 1))
            fitted = {"person": float(thresholds[0]), "vehicle": float(thresholds[COCO_CLASSES.index("car")])}
        else:
            fitted = {"person": YOLO_THRESHOLD, "vehicle": YOLO_THRESHOLD}
        vehicles: list[VehiclePhoto] = []
        for region, path, plate in photos:
            image = cv2.imread(str(path))
            if image is None:
                raise SystemExit(f"{path} cannot be read")
            dets = detector.detect(image)
            vehicles.append(
                (region, path.name, dets[np.isin(dets.data["class_name"], VEHICLE_CLASSES)], plate)
            )
        photo_looks = getattr(detector, "second_looks", 0)
        persons, false_vehicles = [], []
        for _, image, heads in frames:
            dets = detector.detect(image)
            persons.append((dets[dets.data["class_name"] == "person"], heads))
            false_vehicles.append(dets[np.isin(dets.data["class_name"], VEHICLE_CLASSES)])
        result["configs"][config] = {
            "vehicles": vehicle_figures(vehicles, fitted["vehicle"], false_vehicles),
            "persons": person_figures(persons, fitted["person"]),
            "second_looks": {
                "plate_photos": photo_looks,
                "mall_frames": getattr(detector, "second_looks", 0) - photo_looks,
            },
        }
    sample = {"mall_640x480": frames[0][1]}
    photo = cv2.imread(str(next(p for r, p, _ in photos if r == "us")))
    if photo is not None:
        sample[f"photo_{photo.shape[1]}x{photo.shape[0]}"] = photo
    result["speed"] = speed_figures(configs, sample, 5 if args.quick else 20)
    if args.detector == "nanodet":
        result["memory"] = memory_figures(DATA / "crowd" / "mall" / frames[0][0])
    result["faces"] = {} if args.no_faces else face_figures(args.quick)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
