"""`safecity cameras …`: list, import and check cameras; show their configuration, its history and schema."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from safecity.cameras import service
from safecity.cameras.models import CameraConfig, CameraOut, ConfigVersionDetail, ConfigVersionOut
from safecity.core.cliutil import console, friendly_errors, open_context, print_json
from safecity.core.clock import format_moment
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
                console.print(f"[red]{escape(str(error))}[/]")
            console.print(
                f"[bold red]nothing imported:[/] {len(report.errors)} problem(s); fix them and retry"
            )
            raise typer.Exit(1)
    console.print(f"imported: {report.created} created, {report.updated} updated")


@app.command("versions")
@friendly_errors
def versions(
    camera_id: str = typer.Argument(..., help="Camera id"),
    json_output: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """A camera's configuration history: each version, who made it, when, and what changed."""
    ctx = open_context()
    with ctx.db.session() as session:
        rows = [ConfigVersionOut.model_validate(v) for v in service.versions(session, camera_id)]
    if json_output:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    table = Table("version", "when", "by", "what", title=f"{camera_id}: {len(rows)} configuration versions")
    for row in rows:
        changed = [f"{c.field}: {_shown(c.before)} → {_shown(c.after)}" for c in row.changes]
        table.add_row(
            str(row.version),
            format_moment(row.created_at, "seconds"),
            row.created_by,
            "\n".join([row.note, *changed]),
        )
    console.print(table)


@app.command("config")
@friendly_errors
def config(
    camera_id: str = typer.Argument(..., help="Camera id"),
    version: int | None = typer.Option(
        None, "--version", min=1, help="This version (default: the one in force)"
    ),
) -> None:
    """Print a camera's configuration (settings, zones, lines) as JSON, now or at a version."""
    ctx = open_context()
    with ctx.db.session() as session:
        if version is None:
            camera = service.get(session, camera_id)
            shown = {"camera_id": camera_id, "version": camera.config_version, **camera.config.stored()}
        else:
            detail = ConfigVersionDetail.model_validate(service.get_version(session, camera_id, version))
            shown = {"camera_id": camera_id, "version": detail.version, **detail.config.stored()}
    print_json(shown)


@app.command("schema")
def schema() -> None:
    """Print the JSON schema of a camera's configuration: every setting with its title, limits and choices."""
    print_json(CameraConfig.model_json_schema())


def _shown(value: object) -> str:
    return "—" if value is None else json.dumps(value, ensure_ascii=False)
