"""`safecity audit …`: verify the chain, sign a checkpoint, make and rotate keys, read the log."""

from __future__ import annotations

import getpass
from pathlib import Path

import typer
from rich.table import Table

from safecity.audit import anchor, keys, service
from safecity.audit.models import AuditOut, VerifyReport
from safecity.core.cliutil import console, friendly_errors, open_context, print_json
from safecity.core.errors import Conflict

app = typer.Typer(help="The audit log: keyed hash chain, signed checkpoints, keys.", no_args_is_help=True)


def print_report(report: VerifyReport) -> None:
    """Prints a verification report in words."""
    if report.ok:
        console.print(
            f"[green]audit log intact[/]: {report.checked} rows checked, {report.checkpoints} checkpoints"
        )
    else:
        first = f", first bad row {report.first_bad_seq}" if report.first_bad_seq else ""
        console.print(f"[bold red]audit log tampered[/]: {report.checked} rows checked{first}")
        for problem in report.problems:
            console.print(f"  [red]•[/] {problem}")
    for note in report.notes:
        console.print(f"  [dim]·[/] {note}")


@app.command("verify")
@friendly_errors
def verify(json_output: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """Check every row against its key and the checkpoints; exit 1 and name what was altered or deleted."""
    ctx = open_context()
    anchor.bind(ctx.settings.resolved_database_url, ctx.settings)
    with ctx.db.session() as session:
        report = service.verify(session)
    if json_output:
        print_json(report.model_dump())
    else:
        print_report(report)
    if not report.ok:
        raise typer.Exit(1)


@app.command("checkpoint")
@friendly_errors
def checkpoint() -> None:
    """Verify the rows since the last checkpoint and sign a new one now (the centre does it on a schedule)."""
    ctx = open_context()
    found = anchor.bind(ctx.settings.resolved_database_url, ctx.settings)
    written = service.checkpoint(ctx.db)
    if written is None:
        console.print("nothing new since the last checkpoint")
    else:
        console.print(
            f"checkpoint #{written.n}: {written.rows} rows up to row {written.last_seq}, "
            f"signed with key {written.key_id}, in {found.checkpoints.path}"
        )


@app.command("new-key")
@friendly_errors
def new_key(
    key_file: Path | None = typer.Option(None, help="Write a new key file here (it must not exist yet)"),
    print_key: bool = typer.Option(False, "--print", help="Print a key for SAFECITY_AUDIT_KEY instead"),
) -> None:
    """Make the audit key of a new installation (a city copies the file, mode 0600, to every serve host)."""
    key = keys.new_key()
    if print_key:
        print(keys.encode(key))
        return
    if key_file is None:
        raise typer.BadParameter("name --key-file, or use --print")
    try:
        keys.write_key_file(key_file, [key], exclusive=True)
    except FileExistsError:
        raise Conflict(
            f"{key_file} exists already", hint="rotate with `safecity audit rotate-key` instead"
        ) from None
    console.print(f"wrote key {key.id} to {key_file} (mode 0600); set SAFECITY_AUDIT_KEY_FILE={key_file}")


@app.command("rotate-key")
@friendly_errors
def rotate_key(
    actor: str | None = typer.Option(None, help="Who rotates (default: the system user)"),
) -> None:
    """Add a new key that signs from a marked row on; older keys stay in the file to verify older rows."""
    ctx = open_context()
    anchor.bind(ctx.settings.resolved_database_url, ctx.settings)
    old, new = service.rotate_key(ctx.db, actor=actor or f"system:{getpass.getuser()}")
    console.print(f"key {new.id} signs from now on (replacing {old.id}, kept to verify the older rows)")


@app.command("show")
@friendly_errors
def show(
    limit: int = typer.Option(50, help="How many of the newest rows"),
    actor: str | None = typer.Option(None, help="Only this actor"),
    action: str | None = typer.Option(None, help="Only actions starting with this"),
    json_output: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """Show the newest audit entries."""
    ctx = open_context()
    anchor.bind(ctx.settings.resolved_database_url, ctx.settings)
    with ctx.db.session() as session:
        rows = [
            AuditOut.model_validate(r)
            for r in service.entries(session, actor=actor, action=action, limit=limit)
        ]
        # Reading the log is itself a sensitive read, at the console as on the page.
        service.record(
            session,
            actor=f"system:{getpass.getuser()}",
            action="audit.read",
            detail={"actor": actor, "action": action, "via": "cli"},
        )
    if json_output:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    table = Table("seq", "at", "actor", "action", "target")
    for r in rows:
        table.add_row(str(r.seq), r.at.isoformat(timespec="seconds"), r.actor, r.action, r.target)
    console.print(table)
