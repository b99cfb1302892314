"""`safecity cameras …`: list, add, import and check cameras."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from safecity.cameras import service
from safecity.cameras.models import CameraOut
from safecity.core.cliutil import console, friendly_errors, open_context, print_json
from safecity.core.importer import ImportLimits
from safecity.video.cli import check

app = typer.Typer(
    help="Cameras: the registry, bulk import, and a quick check of a stream.", no_args_is_help=True
)
app.command("check")(check)


@app.command("list")
@friendly_errors
def list_cameras(
    kind: str | None = typer.Option(None, help="fixed, anpr, face or bodycam"),
    district: str | None = typer.Option(None, help="Only this district"),
    json_output: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """List registered cameras."""
    ctx = open_context()
    with ctx.db.session() as session:
        cams = [CameraOut.of(c) for c in service.list_cameras(session, kind=kind, district=district)]
    if json_output:
        print_json([c.model_dump(mode="json") for c in cams])
        return
    table = Table("id", "name", "type", "district", "health", title=f"{len(cams)} cameras")
    for c in cams:
        table.add_row(c.id, c.name, c.kind, c.district, c.health_state)
    console.print(table)


@app.command("import")
@friendly_errors
def import_cameras(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or YAML file of cameras"),
    upsert: bool = typer.Option(False, help="Update cameras that are already registered"),
) -> None:
    """Import many cameras at once; any bad row means nothing is written."""
    ctx = open_context()
    fmt = "yaml" if file.suffix.lower() in {".yaml", ".yml"} else "csv"
    with ctx.db.session() as session, file.open("rb") as stream:
        report = service.import_cameras(
            session,
            stream,
            fmt=fmt,
            actor="cli",
            upsert=upsert,
            limits=ImportLimits.from_settings(ctx.settings),
        )
        if report.errors:
            session.rollback()
            for error in report.errors:
                console.print(f"[red]{error}[/]")
            console.print(
                f"[bold red]nothing imported:[/] {len(report.errors)} problem(s); fix them and retry"
            )
            raise typer.Exit(1)
    console.print(f"imported: {report.created} created, {report.updated} updated")
