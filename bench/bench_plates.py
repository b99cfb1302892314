"""Plate-reading benchmark on ../shared/data/plates: exact accuracy, plate-found rate, images/s.

Runs the default reader beside alternatives on the same images in one pass (each image goes through
every configuration in turn, so machine load hits them alike) and prints one JSON object on stdout.

    .venv/bin/python bench/bench_plates.py [--limit N] \
        [--configs text640,text640@1.0,text960,morph]

A configuration is `text<side>` (PP-OCR text lines found at that detector size, the default reader) or
`morph` (the OpenCV plate finder), optionally followed by `-flat` (tilted plates are not levelled)
and `@<stretch>`, the recogniser's horizontal stretch (default `recognizer.STRETCH`). `--turn 6`
turns every photo by 6 degrees first, to see how the readers cope with a tilted camera:

    .venv/bin/python bench/bench_plates.py --turn 6 --configs text640,text640-flat

`<config>_by_confidence` says, for the vehicle photos of all sets together, what share of them a
plate-confidence threshold keeps and how many of those are exact: the figure to set the enforcement
policy's plate and auto-issue confidences by.

`--region auto` reads every set without being told its country, as `safecity plates read --region
auto` does.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import Progress

from safecity.vision.plates import (
    MorphPlateDetector,
    PlateReader,
    PlateRecognizer,
    TextLineDetector,
    load_image,
)
from safecity.vision.plates.recognizer import STRETCH

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "plates"

Box = tuple[int, int, int, int]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / max(1, a[2] * a[3] + b[2] * b[3] - inter)


def samples(limit: int | None) -> list[tuple[str, str, Path, str, Box | None]]:
    """(region, view, image, truth, box) for every labelled image; uncertain pk rows left out."""
    out: list[tuple[str, str, Path, str, Box | None]] = []
    for region in ("us", "eu", "br"):
        rows = []
        for txt in sorted((DATA / region).glob("*.txt")):
            name, x, y, w, h, plate = txt.read_text().strip().split("\t")
            rows.append((region, "vehicle", DATA / region / name, plate, (int(x), int(y), int(w), int(h))))
        out += rows[:limit]
    with (DATA / "pk" / "labels.csv").open() as f:
        pk = [r for r in csv.DictReader(f) if r["uncertain"] != "1"]
    for view in ("plate_crop", "vehicle"):
        chosen = [r for r in pk if r["view"] == view][:limit]
        out += [("pk", view, DATA / "pk" / r["file"], r["plate_compact"], None) for r in chosen]
    return out


def turn(image: npt.NDArray[np.uint8], degrees: float) -> npt.NDArray[np.uint8]:
    """`image` turned by `degrees` about its centre, edges repeated into the corners."""
    if not degrees:
        return image
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return np.asarray(cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE), np.uint8)


def build(name: str, region: str, recs: dict[float, PlateRecognizer]) -> PlateReader:
    """A reader for one named configuration: `text640`, `text960`, `morph`; `-flat` after the name
    reads tilted plates as they are, and a recogniser stretch may follow an `@` (`text640@1.0`)."""
    name, _, stretch_text = name.partition("@")
    name, *flags = name.split("-")
    if unknown := set(flags) - {"flat"}:
        raise SystemExit(f"unknown configuration flags {sorted(unknown)}: use -flat")
    options: dict[str, Any] = {"level_from": float("inf")} if "flat" in flags else {}
    stretch = float(stretch_text) if stretch_text else STRETCH
    rec = recs.get(stretch) or recs.setdefault(stretch, PlateRecognizer(stretch=stretch))
    side = int(name[4:]) if name.startswith("text") else 640
    options["lines"] = TextLineDetector(max_side=side)
    if name.startswith("text"):
        return PlateReader(region=region, recognizer=rec, **options)
    if name == "morph":
        return PlateReader(region=region, recognizer=rec, detector=MorphPlateDetector(), **options)
    raise SystemExit(f"unknown configuration {name!r}")


THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def by_confidence(per_set: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    """For vehicle photos of every set together: at each confidence threshold, the share of photos
    whose best read reaches it and how many of those are exact. This is what an operator needs to set
    the enforcement policy's plate confidence: above it, how often would a challan name the wrong car?
    """
    pairs = [
        (conf, exact)
        for key, s in per_set.items()
        if key.endswith("/vehicle")
        for conf, exact in zip(s["confidence"], s["exact"], strict=True)
    ]
    out: dict[str, dict[str, float]] = {}
    for t in THRESHOLDS:
        kept = [exact for conf, exact in pairs if conf >= t]
        out[f">={t}"] = {
            "photos_kept": round(len(kept) / max(1, len(pairs)), 3),
            "exact_of_kept": round(sum(kept) / len(kept), 3) if kept else 0.0,
        }
    return out


def main() -> None:
    """Run every configuration over the data set and print the figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--limit", type=int, default=None, help="at most N images per region and view")
    ap.add_argument(
        "--configs",
        default="text640,text640@1.0,text960,morph",
        help="comma-separated configurations; the first is the default",
    )
    ap.add_argument("--quick", action="store_true", help="10 images per region and view")
    ap.add_argument(
        "--region",
        choices=["pk", "us", "eu", "br", "auto"],
        default=None,
        help="read every set with these plate formats (default: each set with its own region)",
    )
    ap.add_argument(
        "--turn",
        type=float,
        default=0.0,
        help="turn every image by this many degrees first (a tilted camera or plate); boxes are not scored",
    )
    args = ap.parse_args()
    if args.quick and args.limit is None:
        args.limit = 10
    if not DATA.is_dir():
        print(json.dumps({"error": f"{DATA} not found"}))
        sys.exit(1)
    configs = args.configs.split(",")
    recs: dict[float, PlateRecognizer] = {}
    readers: dict[tuple[str, str], PlateReader] = {}
    todo = samples(args.limit)
    stats: dict[str, dict[str, dict[str, list[float]]]] = {c: {} for c in configs}
    misses: dict[str, list[str]] = {c: [] for c in configs}
    with Progress(transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task("reading plates", total=len(todo))
        for region, view, path, truth, box in todo:
            image = turn(load_image(path), args.turn)
            key = f"{region}/{view}"
            for c in configs:
                formats = args.region or region
                reader = readers.get((c, formats)) or readers.setdefault(
                    (c, formats), build(c, formats, recs)
                )
                read: Callable[..., list] = reader.read
                t0 = time.perf_counter()
                reads = read(image)
                dt = time.perf_counter() - t0
                top = reads[0].plate if reads else ""
                scored = box is not None and not args.turn
                found = any(iou(r.box, box) > 0.3 for r in reads) if scored else bool(reads)
                s = stats[c].setdefault(key, {"exact": [], "found": [], "seconds": [], "confidence": []})
                s["exact"].append(float(top == truth))
                s["confidence"].append(reads[0].confidence if reads else 0.0)
                s["found"].append(float(found))
                s["seconds"].append(dt)
                if top != truth:
                    misses[c].append(f"{path.name}:{truth}->{top or '-'}")
            progress.advance(task)
    result: dict[str, object] = {
        "default": configs[0],
        "data": str(DATA),
        "limit": args.limit,
        "turn_degrees": args.turn,
        "region": args.region or "each set's own",
    }
    for c in configs:
        per: dict[str, object] = {}
        for key, s in stats[c].items():
            n = len(s["exact"])
            per[key] = {
                "images": n,
                "exact": round(sum(s["exact"]) / n, 3),
                "found": round(sum(s["found"]) / n, 3),
                "images_per_s": round(n / sum(s["seconds"]), 2),
                "median_s": round(statistics.median(s["seconds"]), 3),
            }
        result[c] = per
        result[f"{c}_misses"] = len(misses[c])
        result[f"{c}_by_confidence"] = by_confidence(stats[c])
    print(json.dumps(result, indent=1))
    for c in configs:
        print(c, "misses:", " ".join(misses[c]), file=sys.stderr)


if __name__ == "__main__":
    main()
