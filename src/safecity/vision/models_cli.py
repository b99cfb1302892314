"""`safecity models`: the vision models this installation knows, and a check that each is whole and runs."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Column, Table

from safecity.core.cliutil import console, err_console, friendly_errors, print_json
from safecity.vision import registry

app = typer.Typer(help="Vision models: list them, check their files.", no_args_is_help=True)


@app.command("list")
@friendly_errors
def list_models(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List every model: task, licence, source package, file and whether it is installed."""
    described = [registry.describe(m) for m in registry.models()]
    if as_json:
        print_json(described)
        return
    table = Table(Column("name", no_wrap=True), "task", "licence", "kind", "installed", "source", "sha256")
    for m in described:
        table.add_row(
            m["name"],
            m["task"],
            m["licence"],
            "default" if m["default"] else "plug-in",
            "yes" if m["installed"] else "[red]no[/]",
            m["source"],
            m["sha256"][:12] + "…",
        )
    console.print(table)


@app.command("check")
@friendly_errors
def check_models(
    name: list[str] = typer.Argument(None, help="Only these models (default: every one)."),
) -> None:
    """Verify each model's file (sha256) and run it once on a built-in picture; exit 1 if any is broken."""
    results = registry.check(name or None)
    for result in results:
        if result.ok:
            console.print(f"[green]ok[/]     {result.name}:", escape(result.detail), soft_wrap=True)
        else:
            err_console.print(f"[bold red]broken[/] {result.name}:", escape(result.detail), soft_wrap=True)
    broken = [r.name for r in results if not r.ok]
    if broken:
        err_console.print(f"{len(broken)} of {len(results)} models cannot be used: {', '.join(broken)}")
        raise typer.Exit(1)
