"""Face models on ../shared/data/faces: encoders judged by cross-validation over identities, detectors
by recall of CCTV probes and of 20-40 px faces in whole street frames, and their speed and memory.

Per encoder (each with its own detector, exactly as `safecity faces verify` runs it):
- pairs.csv (photo against photo) and cctv/pairs.csv (watch-list photo against a 40 px, blurred,
  JPEG-35 copy): AUC and TAR at FAR ≤ 1% with the threshold fitted on the same pairs (in-sample:
  optimistic, for reference);
- cross-validation over identities (`safecity.vision.faces.thresholds`): thresholds fitted (FAR ≤ 1%)
  on the people outside each of 3 folds, judged on the pairs of the people inside, over 100 random
  partitions: the spread (min / median / q90 / max) of the held-out FAR and TAR;
- the operating threshold chosen with margin: fitted on all pairs (both files), raised by the smallest
  amount that keeps the held-out FAR ≤ 1% in 90% of the partitions; TAR and FAR there; and a nested
  check of that rule (the margin and threshold fitted on the training people only, judged on the
  other people's CCTV pairs);
- the default MobileFaceNet (grey) beside the colour one it replaced, with that one's threshold;
- InsightFace's ArcFace MobileFaceNet (`insightface-mbf`, non-commercial weights) when its plug-in is
  installed (`safecity models install insightface-mbf --accept-licence`; `SAFECITY_MODELS_DIR` names
  the folder), with its own threshold;
- ms per face on one core (alignment and encoding) and the model's memory.
Per detector: the share of the 41 CCTV probes in which it finds a face, and, on whole frames made from
a real background with shared photos pasted in at 20-40 px (and larger), recall, false detections
and ms per frame on one core (1280×720 and 1920×1080).

Prints one JSON object on stdout.

    PYTHONPATH=src .venv/bin/python bench/bench_vision_faces.py [--quick [--nested]] [--data DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import Progress

from safecity.vision.faces import models as dlib_models
from safecity.vision.faces.blazeface import MODEL as BLAZEFACE
from safecity.vision.faces.blazeface import BlazeFaceDetector
from safecity.vision.faces.detectors import DlibHogDetector, FaceDetector
from safecity.vision.faces.encoders import DlibResnetEncoder, FaceEncoder
from safecity.vision.faces.face import FaceBox
from safecity.vision.faces.insightface import MODEL as INSIGHTFACE
from safecity.vision.faces.insightface import InsightFaceEncoder
from safecity.vision.faces.mobilefacenet import MODEL as MOBILEFACENET
from safecity.vision.faces.mobilefacenet import MobileFaceNetEncoder
from safecity.vision.faces.pipeline import THRESHOLDS
from safecity.vision.faces.thresholds import Pairs, cross_validate, operating_threshold, rates, tar_at_far
from safecity.vision.onnx_session import cpu_session
from safecity.vision.registry import spec

console = Console(stderr=True)
REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "faces"
Image = npt.NDArray[np.uint8]


def rss_mb() -> float:
    """This process's resident memory in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def read_rgb(path: Path) -> Image:
    image = cv2.imread(str(path))
    if image is None:  # cv2 cannot read every format the shared set holds (e.g. WebP named .jpg)
        from PIL import Image as PILImage

        return np.asarray(PILImage.open(path).convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


@dataclass
class Config:
    """An encoder with the detector the pipeline pairs it with, under the name the bench reports."""

    name: str
    detector: FaceDetector
    encoder: FaceEncoder
    shipped_threshold: float


def configs(quick: bool) -> list[Config]:
    """The default pipeline, its alternatives and dlib's, every model on one ORT thread (one core)."""
    blaze = BlazeFaceDetector(min_face_px=20, session=cpu_session(spec(BLAZEFACE).path, threads=1))
    mfn_session = cpu_session(spec(MOBILEFACENET).path, threads=1)
    found = [
        Config(
            "mobilefacenet", blaze, MobileFaceNetEncoder(session=mfn_session), THRESHOLDS["mobilefacenet"]
        ),
        Config(
            "mobilefacenet in colour (before: 1+lr40+flip)",
            blaze,
            MobileFaceNetEncoder(session=mfn_session, grey=False),
            BEFORE_THRESHOLD,
        ),
        Config("dlib", DlibHogDetector(), DlibResnetEncoder(), THRESHOLDS["dlib"]),
    ]
    if not quick:
        found[2:2] = [
            Config(
                "mobilefacenet without the mirror image",
                blaze,
                MobileFaceNetEncoder(session=mfn_session, flip=False),
                THRESHOLDS["mobilefacenet"],
            ),
            Config(
                "mobilefacenet, refined keypoints",
                BlazeFaceDetector(min_face_px=20, refine=True, session=blaze._session),
                MobileFaceNetEncoder(session=mfn_session),
                THRESHOLDS["mobilefacenet"],
            ),
            Config(
                "mobilefacenet, full resolution",
                blaze,
                MobileFaceNetEncoder(session=mfn_session, low_res_px=None),
                THRESHOLDS["mobilefacenet"],
            ),
        ]
    if spec(INSIGHTFACE).installed:
        arcface = InsightFaceEncoder(session=cpu_session(spec(INSIGHTFACE).path, threads=1))
        found.insert(1, Config(INSIGHTFACE, blaze, arcface, THRESHOLDS[INSIGHTFACE]))
    else:
        console.print(f"{INSIGHTFACE} is not installed: left out (safecity models install {INSIGHTFACE})")
    return found


BEFORE_THRESHOLD = 0.408
"""The threshold shipped with the colour encoder, for the before/after comparison."""


def pair_rows(data: Path, name: str) -> list[tuple[Path, Path, bool, tuple[str, str]]]:
    """(file a, file b, same person, their person ids) per row; ids from labels.csv via pairs.csv."""
    labels = {row["file"]: row["person_id"] for row in csv.DictReader((data / "labels.csv").open())}
    originals = list(csv.DictReader((data / "pairs.csv").open()))
    rows = []
    csv_path = data / name
    for row, original in zip(csv.DictReader(csv_path.open()), originals, strict=True):
        people = (labels[original["file_a"]], labels[original["file_b"]])
        rows.append(
            (
                (csv_path.parent / row["file_a"]).resolve(),
                (csv_path.parent / row["file_b"]).resolve(),
                row["same_person"] == "1",
                people,
            )
        )
    return rows


def largest(faces: list[FaceBox]) -> FaceBox | None:
    return max(faces, key=lambda face: face.box[2]) if faces else None


def embeddings(config: Config, paths: list[Path], progress: Progress) -> tuple[dict[Path, Any], list[float]]:
    """The largest face's embedding per file (None where no face), and seconds per encoding."""
    out: dict[Path, Any] = {}
    seconds = []
    task = progress.add_task(f"{config.name}: encoding", total=len(paths))
    for path in paths:
        image = read_rgb(path)
        face = largest(config.detector.detect(image))
        if face is None:
            out[path] = None
        else:
            start = time.perf_counter()
            out[path] = config.encoder.encode(image, face)[0]
            seconds.append(time.perf_counter() - start)
        progress.advance(task)
    progress.remove_task(task)
    return out, seconds


def scored(rows: list[tuple[Path, Path, bool, tuple[str, str]]], vectors: dict[Path, Any]) -> Pairs:
    scores = []
    for a, b, _, _ in rows:
        va, vb = vectors[a], vectors[b]
        scores.append(0.0 if va is None or vb is None else max(0.0, float(np.dot(va, vb))))
    return Pairs(np.array(scores), np.array([r[2] for r in rows]), [r[3] for r in rows])


def joined(a: Pairs, b: Pairs) -> Pairs:
    return Pairs(
        np.concatenate([a.scores, b.scores]), np.concatenate([a.same, b.same]), [*a.people, *b.people]
    )


def auc(pairs: Pairs) -> float:
    genuine, impostors = pairs.genuine[:, None], pairs.impostors[None, :]
    return float((genuine > impostors).mean() + 0.5 * (genuine == impostors).mean())


def judged(pairs: Pairs, threshold: float) -> dict[str, float]:
    tar, far = rates(pairs, threshold)
    return {"tar": round(tar, 4), "far": round(far, 4)}


def encoder_figures(
    config: Config, photo: Pairs, cctv: Pairs, seconds: list[float], repeats: int, nested: bool
) -> dict[str, Any]:
    both = joined(photo, cctv)
    threshold, margin = operating_threshold(both, repeats=repeats)
    result: dict[str, Any] = {}
    for name, pairs in (("pairs", photo), ("cctv_pairs", cctv)):
        tar, fitted = tar_at_far(pairs)
        cv = cross_validate(pairs, repeats=repeats)
        result[name] = {
            "pairs": len(pairs.scores),
            "same_person": int(pairs.same.sum()),
            "auc": round(auc(pairs), 4),
            "in_sample": {"tar_at_far_1pct": round(tar, 4), "threshold": round(fitted, 4)},
            "cross_validated": cv.summary(),
            "at_operating_threshold": judged(pairs, threshold),
            "at_shipped_threshold": judged(pairs, config.shipped_threshold),
        }
    result["operating_threshold"] = {
        "threshold": round(threshold, 4),
        "margin_over_fitted": round(margin, 4),
        "fitted_on": "pairs.csv and cctv/pairs.csv together",
        "shipped": config.shipped_threshold,
        "cross_validated_at_margin": cross_validate(both, repeats=repeats).summary(margin),
    }
    if nested:
        # The whole rule (fit on both files, then raise by the margin its own inner cross-validation
        # asks for) applied to the training people only, then judged on the others' CCTV pairs: what
        # the shipped threshold promises on people it never saw.
        rule = cross_validate(
            both,
            repeats=max(10, repeats // 3),
            fit=lambda t: operating_threshold(t, repeats=30)[0],
            judged=cctv,
        )
        result["operating_threshold"]["nested_rule_judged_on_other_peoples_cctv_pairs"] = rule.summary()
    result["ms_per_face_one_core"] = {
        "median": round(1000 * float(np.median(seconds)), 2),
        "min": round(1000 * float(np.min(seconds)), 2),
    }
    return result


def model_memory() -> dict[str, float]:
    """MB of resident memory each model adds once loaded and run (each measured in this process)."""
    memory = {}
    crop = np.zeros((112, 112, 3), dtype=np.uint8)
    before = rss_mb()
    MobileFaceNetEncoder(session=cpu_session(spec(MOBILEFACENET).path, threads=1)).encode_crop(crop)
    memory[MOBILEFACENET] = round(rss_mb() - before, 1)
    if spec(INSIGHTFACE).installed:
        before = rss_mb()
        InsightFaceEncoder(session=cpu_session(spec(INSIGHTFACE).path, threads=1)).encode_crop(crop)
        memory[INSIGHTFACE] = round(rss_mb() - before, 1)
    before = rss_mb()
    BlazeFaceDetector(session=cpu_session(spec(BLAZEFACE).path, threads=1)).detect(
        np.zeros((720, 1280, 3), np.uint8)
    )
    memory[BLAZEFACE] = round(rss_mb() - before, 1)
    before = rss_mb()
    dlib_models.resnet_encoder()
    dlib_models.shape_predictor_5()
    dlib_models.hog_detector()
    memory["dlib (HOG, 5-point, ResNet)"] = round(rss_mb() - before, 1)
    return memory


def paste_faces(
    background: Image, photos: list[Path], sizes: list[int], rng: np.random.Generator
) -> tuple[Image, list[tuple[float, float, int]]]:
    """A copy of `background` with faces from `photos` pasted at `sizes` (face width), and where."""
    frame = background.copy()
    height, width = frame.shape[:2]
    truth: list[tuple[float, float, int]] = []
    columns = max(1, width // 160)
    for i, size in enumerate(sizes):
        image = read_rgb(photos[i % len(photos)])
        rects = dlib_models.hog_detector()(image, 1)
        if not rects:
            continue
        rect = max(rects, key=lambda r: r.width())
        scale = size / rect.width()
        cx, cy = (rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2
        half = 1.3 * rect.width()  # head and shoulders around the face, as a street camera sees them
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        patch = image[y0 : int(cy + 1.6 * half), x0 : int(cx + half)]
        patch = cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        patch = cv2.GaussianBlur(patch, (0, 0), 0.8)
        cell_w, rows = width // columns, max(1, (len(sizes) + columns - 1) // columns)
        cell_h = height // rows
        left = (i % columns) * cell_w + int(rng.integers(0, max(1, cell_w - patch.shape[1])))
        top = (i // columns) * cell_h + int(rng.integers(0, max(1, cell_h - patch.shape[0])))
        ph, pw = min(patch.shape[0], height - top), min(patch.shape[1], width - left)
        frame[top : top + ph, left : left + pw] = patch[:ph, :pw]
        truth.append((left + (cx - x0) * scale, top + (cy - y0) * scale, size))
    _, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 60])
    return np.ascontiguousarray(cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)), truth


def matched(found: list[FaceBox], truth: list[tuple[float, float, int]]) -> tuple[int, int]:
    """(pasted faces found, detections that are none of them)."""
    used: set[int] = set()
    hits = 0
    for cx, cy, size in truth:
        for i, face in enumerate(found):
            fx, fy = face.box[0] + face.box[2] / 2, face.box[1] + face.box[3] / 2
            if (
                i not in used
                and abs(fx - cx) < size / 2
                and abs(fy - cy) < size / 2
                and 0.5 < face.box[2] / size < 2
            ):
                used.add(i)
                hits += 1
                break
    return hits, len(found) - len(used)


def street_frames(data: Path, rng: np.random.Generator, count: int) -> list[tuple[str, Image, list[Any]]]:
    """Whole frames with faces pasted in: a real background without faces (an overhead car park)."""
    video = data.parent / "videos" / "car-detection.mp4"
    capture = cv2.VideoCapture(str(video))
    ok, first = capture.read()
    capture.release()
    if not ok:
        return []
    photos = sorted(p for p in (data / "images").rglob("*") if p.suffix.lower() in {".jpg", ".png", ".jpeg"})
    frames = []
    for width, height in ((1280, 720), (1920, 1080)):
        background = np.ascontiguousarray(
            cv2.cvtColor(
                cv2.resize(first, (width, height), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB
            )
        )
        for k in range(count):
            sizes = [int(s) for s in rng.integers(20, 41, size=16)] + [60, 90]
            order = rng.permutation(len(photos))
            frame, truth = paste_faces(background, [photos[i] for i in order], sizes, rng)
            frames.append((f"{width}x{height}#{k}", frame, truth))
    return frames


def detector_figures(
    name: str, detect: Callable[[Image], list[FaceBox]], probes: list[Path], frames: list[Any]
) -> dict[str, Any]:
    found_probes = sum(1 for path in probes if detect(read_rgb(path)))
    result: dict[str, Any] = {
        "cctv_probes": len(probes),
        "cctv_probe_recall": round(found_probes / len(probes), 4),
    }
    per_size: dict[str, list[float]] = {}
    for label, frame, truth in frames:
        detect(frame)  # warm: first-call allocations are not what a camera pays per frame
        start = time.perf_counter()
        faces = detect(frame)
        elapsed = time.perf_counter() - start
        small = [t for t in truth if t[2] <= 40]
        hits_small, _ = matched(faces, small)
        hits, false = matched(faces, truth)
        size = label.split("#")[0]
        for key, value in (
            ("ms", 1000 * elapsed),
            ("recall_20_40px", hits_small / max(1, len(small))),
            ("recall_all", hits / max(1, len(truth))),
            ("false_detections", float(false)),
        ):
            per_size.setdefault(f"{size}:{key}", []).append(value)
    for key, values in per_size.items():
        size, what = key.split(":")
        result.setdefault(f"street_frame_{size}", {})[what] = round(float(np.median(values)), 3)
    result["street_frames"] = len(frames)
    console.print(f"{name}: {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared faces folder")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the default, the colour encoder before it and dlib only, 30 partitions, no nested check",
    )
    parser.add_argument("--nested", action="store_true", help="run the nested check even with --quick")
    args = parser.parse_args()
    if not (args.data / "pairs.csv").is_file():
        print(json.dumps({"error": f"{args.data}/pairs.csv not found (the shared face data)"}))
        sys.exit(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    repeats = 30 if args.quick else 100
    photo_rows, cctv_rows = pair_rows(args.data, "pairs.csv"), pair_rows(args.data, "cctv/pairs.csv")
    paths = sorted({p for a, b, _, _ in [*photo_rows, *cctv_rows] for p in (a, b)})
    result: dict[str, Any] = {"data": str(args.data), "quick": args.quick, "memory_mb": model_memory()}
    encoders: dict[str, Any] = {}
    chosen = configs(args.quick)
    with Progress(transient=True, console=console) as progress:
        for config in chosen:
            vectors, seconds = embeddings(config, paths, progress)
            photo, cctv = scored(photo_rows, vectors), scored(cctv_rows, vectors)
            encoders[config.name] = encoder_figures(
                config, photo, cctv, seconds, repeats, nested=args.nested or not args.quick
            )
            console.print(f"{config.name}: {json.dumps(encoders[config.name]['cctv_pairs'])}")
    result["encoders"] = encoders
    probes = sorted((args.data / "cctv" / "images").rglob("*.jpg"))
    frames = street_frames(args.data, np.random.default_rng(7), 1 if args.quick else 3)
    one_core = cpu_session(spec(BLAZEFACE).path, threads=1)
    detectors = {
        "blazeface (min face 20 px)": BlazeFaceDetector(min_face_px=20, session=one_core).detect,
        "dlib hog (video: upsample 1)": DlibHogDetector(upsample=1).detect,
    }
    if not args.quick:
        detectors["blazeface, refined keypoints"] = BlazeFaceDetector(
            min_face_px=20, refine=True, session=one_core
        ).detect
        detectors["dlib hog (photos: with fallbacks)"] = DlibHogDetector().detect
    result["detectors"] = {
        name: detector_figures(name, detect, probes, frames if "fallbacks" not in name else [])
        for name, detect in detectors.items()
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
