"""Benchmark of the face pipeline on ../shared/data/faces: verification, watch list, CCTV probes, speed.

Reports, for the default pipeline (exactly what `safecity faces verify --pairs` runs) beside plain
dlib use (HOG upsampled once, 5-point chip, raw distance < 0.6, as face_recognition does it):
- pairs.csv and cctv/pairs.csv: TAR at FAR ≤ 1% (best threshold, for reference) and TAR/FAR at the
  default threshold (what counts);
- labels.csv: galleries enrolled in an index; every probe should be found at rank 1 above threshold,
  every unknown probe rejected;
- faces per second through the whole pipeline (detect, measure, align, encode) on this machine.
Prints one JSON object on stdout.

    .venv/bin/python bench/bench_faces.py [--data ../shared/data/faces] [--skip-plain]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rich.console import Console

from safecity.core.images import ImageLimits
from safecity.faces.cli import _FaceCache, verify_csv
from safecity.faces.index import ExactIndex
from safecity.settings import Settings
from safecity.vision.faces import FacePipeline
from safecity.vision.faces import models as face_models

console = Console(stderr=True)
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces"


def tar_at_far(scores: np.ndarray, same: np.ndarray, far: float = 0.01) -> tuple[float, float]:
    """Returns the best TAR with FAR ≤ far, and the threshold (accept score > it) that gives it."""
    impostors = np.sort(scores[same == 0])[::-1]
    allowed = int(np.floor(far * len(impostors)))
    threshold = impostors[allowed] if allowed < len(impostors) else -np.inf
    return float((scores[same == 1] > threshold).mean()), float(threshold)


def summarise(scores: np.ndarray, matches: np.ndarray, same: np.ndarray) -> dict[str, Any]:
    """Returns TAR@FAR≤1% and the TAR/FAR of the match decisions."""
    tar, threshold = tar_at_far(scores, same)
    return {
        "pairs": len(same),
        "same_person": int(same.sum()),
        "tar_at_far_1pct": round(tar, 4),
        "threshold_for_far_1pct": round(threshold, 4),
        "at_default_threshold": {
            "tar": round(float(matches[same == 1].mean()), 4),
            "far": round(float(matches[same == 0].mean()), 4),
            "false_accepts": int(matches[same == 0].sum()),
            "false_rejects": int((~matches[same == 1]).sum()),
        },
    }


def labels_of(csv_path: Path) -> list[tuple[Path, Path, int]]:
    """Returns (file_a, file_b, same_person) rows with absolute paths."""
    with csv_path.open() as handle:
        return [
            (csv_path.parent / r["file_a"], csv_path.parent / r["file_b"], int(r["same_person"]))
            for r in csv.DictReader(handle)
        ]


def default_pairs(cache: _FaceCache, csv_path: Path) -> dict[str, Any]:
    """Runs the CLI's verification over a pairs file and scores it."""
    started = time.perf_counter()
    rows = verify_csv(cache, csv_path)
    same = np.array([r for *_, r in labels_of(csv_path)])
    scores = np.array([r["similarity"] for r in rows])
    matches = np.array([r["match"] for r in rows], dtype=bool)
    report = summarise(scores, matches, same)
    report["no_face_rows"] = sum(1 for r in rows if "reason" in r or "error" in r)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


class PlainDlib:
    """dlib as face_recognition uses it: HOG upsampled once, largest face, 5-point chip, distance < 0.6."""

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._cache: dict[Path, np.ndarray | None] = {}

    def encoding(self, path: Path) -> np.ndarray | None:
        key = path.resolve()
        if key not in self._cache:
            rgb = cv2.cvtColor(cv2.imread(str(key)), cv2.COLOR_BGR2RGB)
            rects = face_models.hog_detector()(rgb, 1)
            if not rects:
                self._cache[key] = None
            else:
                rect = max(rects, key=lambda r: r.width() * r.height())
                shape = face_models.shape_predictor_5()(rgb, rect)
                self._cache[key] = np.array(
                    face_models.resnet_encoder().compute_face_descriptor(rgb, shape, 1)
                )
        return self._cache[key]

    def pairs(self, csv_path: Path) -> dict[str, Any]:
        rows = labels_of(csv_path)
        distances = []
        for a, b, _ in rows:
            ea, eb = self.encoding(a), self.encoding(b)
            distances.append(9.0 if ea is None or eb is None else float(np.linalg.norm(ea - eb)))
        d = np.array(distances)
        same = np.array([s for *_, s in rows])
        # Negate distances so that "higher is more alike" as for similarities.
        return summarise(-d, d < 0.6, same)


def watch_list(pipeline: FacePipeline, data: Path) -> dict[str, Any]:
    """Enrols each gallery photo in an index; searches the probes and the unknown probes."""
    with (data / "labels.csv").open() as handle:
        labels = list(csv.DictReader(handle))
    index = ExactIndex(dim=pipeline.encoder.dim)
    for row in labels:
        if row["role"] == "gallery":
            faces = pipeline.faces(cv2.imread(str(data / row["file"])))
            index.add(row["person_id"], faces[0].embedding)
    probes, found, unknown, rejected, misses = 0, 0, 0, 0, []
    for row in labels:
        if row["role"] not in ("probe", "unknown_probe"):
            continue
        faces = pipeline.faces(cv2.imread(str(data / row["file"])))
        best = index.search(faces[0].embedding, k=1) if faces else []
        hit = bool(best) and best[0][1] >= pipeline.threshold
        if row["role"] == "probe":
            probes += 1
            ok = hit and best[0][0] == row["person_id"]
            found += ok
            if not ok:
                misses.append({"file": row["file"], "best": best[0] if best else None})
        else:
            unknown += 1
            rejected += not hit
            if hit:
                misses.append({"file": row["file"], "accepted_as": best[0]})
    return {
        "gallery_entries": len(index),
        "probes": probes,
        "probes_found_rank1_above_threshold": found,
        "unknown_probes": unknown,
        "unknown_probes_rejected": rejected,
        "misses": misses,
    }


def speed(pipeline: FacePipeline, paths: list[Path]) -> dict[str, Any]:
    """Times the whole pipeline over images already in memory (models loaded first)."""
    images = [cv2.imread(str(p)) for p in paths]
    pipeline.faces(images[0])
    started = time.perf_counter()
    faces = sum(len(pipeline.faces(image)) for image in images)
    elapsed = time.perf_counter() - started
    return {
        "images": len(images),
        "faces": faces,
        "seconds": round(elapsed, 2),
        "faces_per_s": round(faces / elapsed, 2),
        "ms_per_image": round(1000 * elapsed / len(images), 1),
    }


def main() -> None:
    """Parses the options, runs every measure and prints the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--skip-plain", action="store_true", help="leave out the plain-dlib baseline")
    parser.add_argument("--quick", action="store_true", help="same figures without the plain-dlib baseline")
    args = parser.parse_args()
    args.skip_plain = args.skip_plain or args.quick
    if not (args.data / "pairs.csv").is_file():
        console.print(f"no face data at {args.data}")
        raise SystemExit(2)
    pipeline = FacePipeline()
    cache = _FaceCache(pipeline, ImageLimits.from_settings(Settings()))
    report: dict[str, Any] = {
        "benchmark": "faces",
        "threshold": pipeline.threshold,
        "default": {},
        "plain_dlib": {},
    }
    for name in ("pairs.csv", "cctv/pairs.csv"):
        console.log(f"default pipeline on {name} …")
        report["default"][name] = default_pairs(cache, args.data / name)
        if not args.skip_plain:
            console.log(f"plain dlib on {name} …")
            report["plain_dlib"][name] = PlainDlib().pairs(args.data / name)
    console.log("watch list (labels.csv) …")
    report["default"]["labels.csv"] = watch_list(pipeline, args.data)
    console.log("speed …")
    report["speed"] = {
        "photos": speed(FacePipeline(), sorted((args.data / "images").rglob("*.*"))[:20]),
        "cctv_probes": speed(FacePipeline(), sorted((args.data / "cctv" / "images").rglob("*.jpg"))),
    }
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
