"""`safecity recordings …`: export footage, apply retention, set policies and volumes, see recorder states."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from safecity.core.cliutil import console, friendly_errors, open_context, parse_moment, print_json
from safecity.core.clock import format_moment
from safecity.recordings import export, retention, service
from safecity.recordings.export import process_due_clips
from safecity.recordings.models import PolicyIn, VolumeIn

app = typer.Typer(
    help="Recordings: export, retention, storage volumes, recorder states.", no_args_is_help=True
)


@app.command("export")
@friendly_errors
def export_command(
    cameras: list[str] = typer.Argument(..., help="Camera id(s)"),
    start: str = typer.Option(..., "--from", help="Start, ISO 8601; without a zone, display-zone time"),
    end: str = typer.Option(..., "--to", help="End, ISO 8601; without a zone, display-zone time"),
    out: Path = typer.Option(
        ..., "--out", file_okay=False, help="Folder to write the MP4 files and manifest"
    ),
    reason: str = typer.Option(..., "--reason", help="Why (case number, court order); audited"),
    actor: str = typer.Option("cli", "--as", help="Who is exporting (written to the manifest and audit log)"),
) -> None:
    """Export a time range of one or more cameras to MP4 with a manifest of SHA-256 hashes."""
    ctx = open_context()
    with ctx.db.session() as session:
        manifest = export.export_range(
            session,
            settings=ctx.settings,
            camera_ids=cameras,
            start=parse_moment(start, "--from"),
            end=parse_moment(end, "--to"),
            out_dir=out,
            actor=actor,
            reason=reason,
        )
    table = Table("file", "camera", "from", "to", "sha256", title=f"export {manifest.id} in {out}")
    for item in manifest.files:
        table.add_row(
            item.name,
            item.camera_id,
            format_moment(item.start, "seconds"),
            format_moment(item.end, "seconds"),
            item.sha256[:16] + "…",
        )
    console.print(table)
    for camera_id, gaps in manifest.gaps.items():
        for gap in gaps:
            start, end = format_moment(gap.start, "seconds"), format_moment(gap.end, "seconds")
            console.print(f"[yellow]gap[/] {camera_id}: {start} – {end}")


@app.command("retention")
@friendly_errors
def retention_command(json_output: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """Apply retention now: footage past its policy, then oldest unprotected footage on full volumes."""
    ctx = open_context()
    with ctx.db.session() as session:
        report = retention.apply_retention(session, settings=ctx.settings)
    if json_output:
        print_json(report.model_dump())
        return
    console.print(
        f"deleted {report.deleted_segments} segments ({report.deleted_bytes >> 20} MiB); "
        f"kept {report.protected_kept} protected; volumes: {report.volumes}"
    )


@app.command("policy")
@friendly_errors
def policy_command(
    scope: str = typer.Argument(..., help="default, camera:<id>, district:<name> or kind:<type>"),
    continuous_days: int = typer.Option(..., help="Days continuous footage is kept"),
    event_days: int = typer.Option(..., help="Days footage around events is kept"),
) -> None:
    """Set the retention of a camera, a district (camera group), a camera type or the default."""
    ctx = open_context()
    data = PolicyIn(scope=scope, continuous_days=continuous_days, event_days=event_days)
    with ctx.db.session() as session:
        service.set_policy(session, data, actor="cli")
    console.print(f"{scope}: continuous {continuous_days} days, events {event_days} days")


@app.command("volume")
@friendly_errors
def volume_command(
    name: str = typer.Argument(..., help="Volume name (cameras choose one with analysis.record_volume)"),
    path: Path = typer.Argument(..., help="Folder on the disk"),
    budget_gib: float | None = typer.Option(None, help="Most GiB of footage kept there"),
    reserve_gib: float = typer.Option(1.0, help="GiB kept free on the disk"),
) -> None:
    """Add or change a storage volume and its budget."""
    ctx = open_context()
    data = VolumeIn(
        name=name,
        path=str(path),
        budget_bytes=int(budget_gib * 2**30) if budget_gib else None,
        reserve_bytes=int(reserve_gib * 2**30),
    )
    with ctx.db.session() as session:
        service.set_volume(session, data, actor="cli")
    console.print(f"volume {name}: {path}")


@app.command("status")
@friendly_errors
def status_command(json_output: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """Show volumes and what each camera's recorder is doing."""
    ctx = open_context()
    with ctx.db.session() as session:
        volumes = service.list_volumes(session, ctx.settings)
        states = [(r.camera_id, r.state, r.detail, r.since) for r in service.recorder_states(session)]
    if json_output:
        print_json(
            {
                "volumes": [v.model_dump() for v in volumes],
                "recorders": [
                    dict(zip(("camera_id", "state", "detail", "since"), s, strict=True)) for s in states
                ],
            }
        )
        return
    table = Table("volume", "path", "state", "used GiB", "free GiB")
    for v in volumes:
        free = f"{v.free_bytes / 2**30:.1f}" if v.free_bytes is not None else "—"
        table.add_row(v.name, v.path, v.state, f"{v.used_bytes / 2**30:.2f}", free)
    console.print(table)
    recorders = Table("camera", "recorder", "detail", "since")
    for camera_id, state, detail, since in states:
        recorders.add_row(camera_id, state, detail, format_moment(since, "seconds"))
    console.print(recorders)


@app.command("clips")
@friendly_errors
def clips_command() -> None:
    """Cut the event clips that are due now (the server does this every few seconds)."""
    ctx = open_context()
    console.print(f"{process_due_clips(ctx)} clip(s) finished")
