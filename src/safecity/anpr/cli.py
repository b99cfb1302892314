"""`safecity plates …`: read plates from images, manage hot lists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from safecity.core.errors import SafeCityError
from safecity.core.images import ImageLimits
from safecity.settings import load_settings

app = typer.Typer(help="Number plates: read images, search reads, manage hot lists.", no_args_is_help=True)

REGION_CHOICES = ("pk", "us", "eu", "br", "auto")


@app.callback()
def plates() -> None:
    """Number plates: read images, search reads, manage hot lists."""


def read_images(paths: list[Path], region: str, limits: ImageLimits = ImageLimits()) -> list[dict[str, Any]]:
    """Read the plates in each image; a file that cannot be read gets an `error` entry, not a crash."""
    from safecity.vision.plates import PlateReader, load_image

    reader: PlateReader | None = None
    results: list[dict[str, Any]] = []
    for path in paths:
        entry: dict[str, Any] = {"image": str(path), "plates": []}
        try:
            image = load_image(path, limits=limits)
            # Load the models only once the first image opened, so a batch of bad paths answers fast.
            reader = reader or PlateReader(region=region)
            entry["plates"] = [r.to_dict() for r in reader.read(image)]
        except SafeCityError as exc:
            entry["error"] = str(exc)
        except Exception as exc:  # one bad image must not lose the rest of the batch
            entry["error"] = f"{path}: could not be read ({type(exc).__name__}: {exc})"
        results.append(entry)
    return results


@app.command("read")
def read(
    images: list[Path] = typer.Argument(..., help="Image files (JPEG, PNG, BMP, WebP, TIFF)."),
    region: str = typer.Option(
        "pk",
        "--region",
        "-r",
        help="Plate formats: pk, us, eu, br, or auto (guesses per plate; a known region reads more exactly).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Read the number plates in IMAGES and print them, best first, per image."""
    region = region.lower()
    if region not in REGION_CHOICES:
        raise typer.BadParameter(
            f"{region!r} is not one of {', '.join(REGION_CHOICES)}", param_hint="--region"
        )
    try:
        limits = ImageLimits.from_settings(load_settings())
    except SafeCityError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    results = read_images(images, region, limits)
    if as_json:
        typer.echo(json.dumps(results, indent=1))
    else:
        table = Table("image", "plate", "confidence", "box", "error")
        for entry in results:
            if not entry["plates"]:
                table.add_row(entry["image"], "-", "", "", entry.get("error", "no plate read"))
            for plate in entry["plates"]:
                table.add_row(
                    entry["image"],
                    plate["plate"],
                    f"{plate['confidence']:.2f}",
                    " ".join(str(v) for v in plate["box"]),
                    "",
                )
        Console().print(table)
    opened = [e for e in results if "error" not in e]
    if not opened:
        raise typer.Exit(1)
