"""`safecity vision`: run the perception models on image files, for operators and for checking figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from safecity.core.cliutil import console, err_console, friendly_errors, print_json
from safecity.core.errors import InvalidInput
from safecity.vision.objects import DEFAULT_INPUT_SIZE, NanoDetDetector

app = typer.Typer(help="Run the vision models on images.", no_args_is_help=True)


def parse_tiles(text: str) -> tuple[int, int]:
    """`2x2` -> (2, 2): columns and rows of tiles."""
    try:
        cols, rows = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise InvalidInput(
            f"tiles {text!r} are not COLSxROWS", hint="e.g. --tiles 2x2, or 1x1 for none"
        ) from None
    return cols, rows


def detect_file(detector: NanoDetDetector, path: Path) -> dict[str, Any]:
    """One image's objects as `vision detect --json` prints them: label, confidence, box [x, y, w, h]."""
    raw = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
    if raw is None:
        why = (
            "is not a readable image (corrupt, or not JPEG/PNG/BMP/TIFF/WebP)"
            if path.exists()
            else "does not exist"
        )
        return {"image": str(path), "objects": [], "error": f"{path} {why}"}
    found = detector.detect(np.asarray(raw, np.uint8))
    objects = []
    scores = found.confidence if found.confidence is not None else np.ones(len(found), np.float32)
    for (x1, y1, x2, y2), score, label in zip(found.xyxy, scores, found.data["class_name"], strict=True):
        left, top = round(float(x1)), round(float(y1))
        box = [left, top, round(float(x2)) - left, round(float(y2)) - top]
        objects.append({"label": str(label), "confidence": round(float(score), 3), "box": box})
    return {"image": str(path), "objects": objects}


@app.command("detect")
@friendly_errors
def detect(
    images: list[Path] = typer.Argument(..., help="Image files (JPEG, PNG, ...)."),
    classes: str | None = typer.Option(
        None, help="Only these COCO classes, comma-separated, e.g. car,person."
    ),
    min_confidence: float | None = typer.Option(
        None, help="Score an object must reach (default: the fitted per-class thresholds, see README)."
    ),
    size: int = typer.Option(
        DEFAULT_INPUT_SIZE,
        help="Longer side the image is scaled to (a multiple of 32; 416 finds more people).",
    ),
    tiles: str = typer.Option(
        "1x1", help="Also look at COLSxROWS overlapping tiles, for small objects (e.g. 2x2)."
    ),
    second_look: bool = typer.Option(
        True,
        help="Look again at a zoomed-out copy of an image where no vehicle covering half of it was found "
        "(close-ups of one vehicle); only when vehicles are asked for.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Find objects (COCO classes: person, car, motorcycle, bus, truck, bicycle, handbag, ...) in images."""
    detector = NanoDetDetector(
        classes=classes.split(",") if classes else None,
        min_confidence=min_confidence,
        input_size=size,
        tiles=parse_tiles(tiles),
        second_look=second_look,
    )
    results = [detect_file(detector, path) for path in images]
    failed = [r for r in results if "error" in r]
    for result in failed:
        err_console.print("[bold red]error:[/]", escape(result["error"]), soft_wrap=True)
    if as_json:
        print_json(results)
    else:
        table = Table("image", "label", "confidence", "box [x, y, w, h]")
        for result in results:
            for obj in result["objects"]:
                table.add_row(
                    escape(result["image"]), obj["label"], f"{obj['confidence']:.3f}", str(obj["box"])
                )
            if not result["objects"] and "error" not in result:
                table.add_row(escape(result["image"]), "[dim]nothing found[/]", "", "")
        console.print(table)
    if failed:
        raise typer.Exit(1)
