"""`safecity models`: the vision models this installation knows, a check that each is whole and runs, and
the installer of optional plug-ins (`install NAME --accept-licence`, `uninstall NAME`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Column, Table

from safecity.core.cliutil import console, err_console, friendly_errors, print_json
from safecity.vision import compliance, plugins, registry

app = typer.Typer(help="Vision models: list them, check their files, install plug-ins.", no_args_is_help=True)

PERMISSIVE = {"Apache-2.0", "MIT", "BSD-3-Clause", "BSD-2-Clause"}


def _tasks_without_model(described: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A row per enforcement task no installed model serves: the offence is not detected."""
    served = {m["task"] for m in described if m["installed"]}
    return [
        {"task": task, "installed": False, "statement": compliance.missing_model_statement(task)}
        for task in compliance.TASKS
        if task not in served
    ]


@app.command("list")
@friendly_errors
def list_models(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List every model: task, licence, source package, file and whether it is installed."""
    described = [registry.describe(m) for m in registry.models()]
    missing = _tasks_without_model(described)
    if as_json:
        print_json(described + [{"name": None, **row} for row in missing])
        return
    table = Table(Column("name", no_wrap=True), "task", "licence", "kind", "installed", "source", "sha256")
    for m in described:
        licence = m["licence"] if m["licence"] in PERMISSIVE else f"[bold yellow]{m['licence']}[/]"
        table.add_row(
            m["name"],
            m["task"],
            licence,
            "default" if m["default"] else "plug-in",
            "yes" if m["installed"] else "[red]not installed[/]",
            m["source"],
            (m["sha256"][:12] + "…") if m["sha256"] else "recorded at install",
        )
    for row in missing:
        table.add_row("—", row["task"], "", "", "[red]not installed[/]", "no model: offence not detected", "")
    console.print(table)
    for row in missing:
        console.print(f"[red]{escape(row['statement'])}[/]", soft_wrap=True)
    if any(not m["default"] and m["installed"] for m in described):
        console.print("[bold yellow]Installed plug-ins carry non-permissive terms: see their licence.[/]")


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


@app.command("install")
@friendly_errors
def install(
    name: str = typer.Argument(..., help="The plug-in: yolo11n, helmet-yolov12, helmet-classifier, ..."),
    accept_licence: bool = typer.Option(
        False, "--accept-licence", help="Accept the plug-in's licence terms (printed first)."
    ),
    onnx: Path | None = typer.Option(
        None, "--onnx", help="An ONNX file you converted or own, instead of the package's.", dir_okay=False
    ),
    licence: str | None = typer.Option(None, "--licence", help="Your own model's licence (SPDX id)."),
    find_links: Path | None = typer.Option(
        None, "--find-links", help="Take the package from this folder of wheels instead of PyPI."
    ),
) -> None:
    """Install an optional plug-in model after showing its licence; it never becomes a default."""
    source = plugins.source(name)
    model = registry.spec(name)
    console.print(
        Panel(
            escape(source.terms),
            title=f"{name}: licence {licence if model.licence == plugins.OWN_LICENCE else model.licence}",
            border_style="yellow",
        )
    )
    if not accept_licence:
        err_console.print(
            f"[bold red]not installed:[/] {name} is installed only by someone who accepts these terms; "
            f"run again with --accept-licence"
        )
        raise typer.Exit(1)
    pip_args = ["--no-index", "--find-links", str(find_links)] if find_links else None
    with console.status(f"installing {name}…"):
        record = plugins.install(name, accept_licence=True, onnx=onnx, licence=licence, pip_args=pip_args)
    console.print(
        f"[green]installed[/] {name} ({record['licence']}) from {escape(record['source'])}: "
        f"{registry.plugin_dir() / record['file']} sha256 {record['sha256'][:12]}…"
    )


@app.command("uninstall")
@friendly_errors
def uninstall(name: str = typer.Argument(..., help="The installed plug-in to remove.")) -> None:
    """Remove an installed plug-in model; cameras that name it fall back and say so in their health."""
    removed = plugins.uninstall(name)
    console.print(f"[green]uninstalled[/] {name}: {removed} removed")
