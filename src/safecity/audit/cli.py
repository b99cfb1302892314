"""`safecity audit …`: verify the chain and read the log."""

from __future__ import annotations

import typer
from rich.table import Table

from safecity.audit import service
from safecity.audit.models import AuditOut
from safecity.core.cliutil import console, friendly_errors, open_context, print_json

app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


@app.command("verify")
@friendly_errors
def verify(json_output: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """Check every row of the audit log; exit 1 and name the rows if any was altered or deleted."""
    ctx = open_context()
    with ctx.db.session() as session:
        report = service.verify(session)
    if json_output:
        print_json(report.model_dump())
    elif report.ok:
        console.print(f"[green]audit log intact[/]: {report.checked} rows checked")
    else:
        console.print(f"[bold red]audit log tampered[/]: {report.checked} rows checked")
        for problem in report.problems:
            console.print(f"  [red]•[/] {problem}")
    if not report.ok:
        raise typer.Exit(1)


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
    with ctx.db.session() as session:
        rows = [
            AuditOut.model_validate(r)
            for r in service.entries(session, actor=actor, action=action, limit=limit)
        ]
    if json_output:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    table = Table("seq", "at", "actor", "action", "target")
    for r in rows:
        table.add_row(str(r.seq), r.at.isoformat(timespec="seconds"), r.actor, r.action, r.target)
    console.print(table)
