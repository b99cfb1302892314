"""`safecity faces …`: verify face pairs and search photos against a gallery folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from safecity.core.errors import InvalidInput, SafeCityError
from safecity.core.images import ImageLimits, read_image
from safecity.core.importer import CsvRows
from safecity.faces.watchlist_cli import enroll, purge_closed, reencode
from safecity.faces.watchlist_cli import search as watchlist_search
from safecity.settings import load_settings

if TYPE_CHECKING:
    from safecity.vision.faces import Face, FacePipeline

app = typer.Typer(help="Faces: verify pairs, enrol watch-list entries, search.", no_args_is_help=True)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@app.callback()
def faces() -> None:
    """Faces: verify pairs, enrol watch-list entries, search."""


class _FaceCache:
    """Finds the faces of each file once, so a CSV that repeats files pays for each file once."""

    def __init__(self, pipeline: FacePipeline, limits: ImageLimits) -> None:
        self.pipeline = pipeline
        self.limits = limits
        self._faces: dict[Path, list[Face]] = {}

    def faces(self, path: Path) -> list[Face]:
        key = path.resolve()
        if key not in self._faces:
            self._faces[key] = self.pipeline.faces(read_image(path, limits=self.limits))
        return self._faces[key]


def verify_pair(cache: _FaceCache, path_a: Path, path_b: Path) -> dict[str, Any]:
    """Compares the largest face of each image; unreadable images or missing faces say why in the row."""
    from safecity.vision.faces import similarity

    row: dict[str, Any] = {"similarity": 0.0, "match": False, "faces": [[], []]}
    try:
        faces_a, faces_b = cache.faces(path_a), cache.faces(path_b)
    except SafeCityError as exc:
        row["error"] = str(exc)
        return row
    except Exception as exc:  # one bad file must not lose the rest of the batch
        row["error"] = f"could not process the images ({type(exc).__name__}: {exc})"
        return row
    row["faces"] = [[f.summary() for f in faces_a], [f.summary() for f in faces_b]]
    if not faces_a or not faces_b:
        row["reason"] = f"no face found in {path_a if not faces_a else path_b}"
        return row
    score = similarity(faces_a[0], faces_b[0])
    row["similarity"] = score  # unrounded, so that it always agrees with "match"
    row["match"] = score >= cache.pipeline.threshold
    return row


def verify_csv(cache: _FaceCache, csv_path: Path) -> list[dict[str, Any]]:
    """Verifies every `file_a,file_b` row of a CSV (paths relative to the CSV), in order."""
    try:
        with csv_path.open("rb") as stream:
            rows = CsvRows(stream, required=("file_a", "file_b"), hint="start with: file_a,file_b")
            pairs = [(row["file_a"], row["file_b"]) for _, row in rows]
    except OSError as exc:
        raise InvalidInput(f"{csv_path}: cannot read ({exc.strerror})", hint="check the path") from exc
    except InvalidInput as exc:
        raise InvalidInput(f"{csv_path}: {exc.message}", hint=exc.hint) from None
    results = []
    for file_a, file_b in pairs:
        result = verify_pair(cache, csv_path.parent / file_a, csv_path.parent / file_b)
        results.append({"file_a": file_a, "file_b": file_b, **result})
    for error in rows.errors:
        results.append({"file_a": "", "file_b": "", "similarity": 0.0, "match": False, "error": error})
    return results


@app.command("verify")
def verify(
    image_a: Path | None = typer.Argument(None, help="First photo."),
    image_b: Path | None = typer.Argument(None, help="Second photo."),
    pairs: Path | None = typer.Option(
        None, "--pairs", help="CSV with columns file_a,file_b (relative paths)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Say whether two photos (or every pair in a CSV) show the same person, at the default threshold."""
    from safecity.vision.faces import default_pipeline

    console = Console()
    try:
        cache = _FaceCache(default_pipeline(), ImageLimits.from_settings(load_settings()))
        if pairs is not None:
            results = verify_csv(cache, pairs)
        elif image_a is not None and image_b is not None:
            results = [verify_pair(cache, image_a, image_b)]
        else:
            raise InvalidInput(
                "give two photos, or --pairs FILE.csv", hint="safecity faces verify A.jpg B.jpg"
            )
    except SafeCityError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    # A pair that could not be compared is a failure, as is a batch in which no pair could be.
    if as_json:
        typer.echo(json.dumps(results if pairs is not None else results[0], indent=1))
    else:
        console.print(_verification_table(results, cache.pipeline.threshold, image_a, image_b, pairs))
    # A pair that could not be compared fails the command, as does a batch in which no pair could be.
    if results and all("error" in row for row in results):
        raise typer.Exit(1)


def _verification_table(
    results: list[dict[str, Any]],
    threshold: float,
    image_a: Path | None,
    image_b: Path | None,
    pairs: Path | None,
) -> Table:
    table = Table(title=f"Face verification (match at similarity ≥ {threshold:.3f})")
    for column in ("A", "B", "similarity", "match", "note"):
        table.add_column(column)
    for i, row in enumerate(results):
        name_a = row.get("file_a", str(image_a)) if pairs else str(image_a)
        name_b = row.get("file_b", str(image_b)) if pairs else str(image_b)
        note = row.get("error") or row.get("reason") or ""
        mark = "[green]yes[/green]" if row["match"] else "no"
        table.add_row(
            name_a, name_b, f"{row['similarity']:.3f}", mark, note, end_section=i == len(results) - 1
        )
    return table


def gallery_index(cache: _FaceCache, gallery: Path) -> tuple[Any, list[str]]:
    """Returns an index of the gallery's photos (identity = sub-folder name, else file stem) and warnings."""
    from safecity.faces.index import ExactIndex

    if not gallery.is_dir():
        raise InvalidInput(
            f"{gallery}: not a folder", hint="--gallery takes a folder of photos named by identity"
        )
    index = ExactIndex(dim=cache.pipeline.encoder.dim)
    warnings = []
    for path in sorted(p for p in gallery.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        identity = path.parent.name if path.parent != gallery else path.stem
        try:
            faces = cache.pipeline.faces(read_image(path, limits=cache.limits))
        except SafeCityError as exc:
            warnings.append(str(exc))
            continue
        if not faces:
            warnings.append(f"{path}: no face found, not enrolled")
            continue
        index.add(identity, faces[0].embedding)
    return index, warnings


@app.command("search")
def search(
    image: Path = typer.Argument(..., help="Photo or frame to search."),
    gallery: Path | None = typer.Option(
        None,
        "--gallery",
        help="Search a folder of photos named by identity instead of the enrolled watch list.",
    ),
    top: int = typer.Option(3, "--top", min=1, max=50, help="Candidates to list per face."),
    reason: str = typer.Option("command-line search", help="Why you search (watch list: audited)."),
    case_reference: str = typer.Option("", help="FIR or case number, if any (watch list)."),
    actor: str | None = typer.Option(None, help="Who searches (watch list; default: the system user)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Search the face in IMAGE against the watch list (audited), or against a gallery folder."""
    if gallery is None:
        watchlist_search(
            image=image, k=top, reason=reason, case_reference=case_reference, actor=actor, as_json=as_json
        )
        return
    from safecity.vision.faces import default_pipeline

    console = Console()
    try:
        cache = _FaceCache(default_pipeline(), ImageLimits.from_settings(load_settings()))
        index, warnings = gallery_index(cache, gallery)
        probe_faces = cache.pipeline.faces(read_image(image, limits=cache.limits))
    except SafeCityError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    threshold = cache.pipeline.threshold
    results: list[dict[str, Any]] = []
    for face in probe_faces:
        candidates: list[dict[str, Any]] = [
            {"identity": entry, "similarity": score, "match": score >= threshold}
            for entry, score in index.search(face.embedding, k=top)
        ]
        results.append({"face": face.summary(), "candidates": candidates})
    if as_json:
        typer.echo(json.dumps({"image": str(image), "faces": results, "warnings": warnings}, indent=1))
        return
    table = Table(title=f"{image}: {len(results)} face(s), gallery of {len(index)}")
    for column in ("face box", "best", "similarity", "match"):
        table.add_column(column)
    for result in results:
        best = result["candidates"][0] if result["candidates"] else {"identity": "-", "similarity": 0.0}
        mark = "[green]yes[/green]" if best.get("match") else "no"
        table.add_row(str(result["face"]["box"]), str(best["identity"]), f"{best['similarity']:.3f}", mark)
    console.print(table)
    for warning in warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


app.command("enroll")(enroll)
app.command("reencode")(reencode)
app.command("purge-closed")(purge_closed)
