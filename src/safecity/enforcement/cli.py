"""`safecity enforcement …`: speed sections, the enforcement policy and the violation counts."""

from __future__ import annotations

import typer

from safecity.core.cliutil import console, friendly_errors, open_context, print_json
from safecity.enforcement import service
from safecity.enforcement.models import SpeedLimit, SpeedSectionIn, SpeedSectionOut

app = typer.Typer(help="Traffic enforcement: speed sections, policy, violations.", no_args_is_help=True)


@app.command("add-section")
@friendly_errors
def add_section(
    section_id: str = typer.Argument(..., help="Section id, e.g. sharea-faisal-nb"),
    entry: str = typer.Option(..., help="Entry ANPR camera id"),
    exit_: str = typer.Option(..., "--exit", help="Exit ANPR camera id"),
    distance_m: float = typer.Option(..., help="Road distance between them in metres"),
    limit_kmh: float = typer.Option(..., help="Limit for vehicles not listed by class"),
    tolerance_kmh: float = typer.Option(5.0, help="Speed above the limit not fined"),
    name: str = typer.Option("", help="Road and direction"),
) -> None:
    """Configure a speed section between two ANPR cameras."""
    ctx = open_context()
    data = SpeedSectionIn(
        id=section_id,
        name=name or section_id,
        entry_camera_id=entry,
        exit_camera_id=exit_,
        distance_m=distance_m,
        limit=SpeedLimit(default_kmh=limit_kmh, tolerance_kmh=tolerance_kmh),
    )
    with ctx.db.session() as session:
        service.create_speed_section(session, data, actor="cli")
    console.print(f"speed section {section_id} added")


@app.command("sections")
@friendly_errors
def sections() -> None:
    """List speed sections."""
    ctx = open_context()
    with ctx.db.session() as session:
        rows = [
            SpeedSectionOut.model_validate(s).model_dump(mode="json")
            for s in service.list_speed_sections(session)
        ]
    print_json(rows)


@app.command("policy")
@friendly_errors
def policy() -> None:
    """Show the enforcement policy in force."""
    ctx = open_context()
    with ctx.db.session() as session:
        print_json(service.get_policy(session).model_dump(mode="json"))


@app.command("counts")
@friendly_errors
def counts() -> None:
    """How many violations are in each status."""
    ctx = open_context()
    with ctx.db.session() as session:
        print_json(service.count_by_status(session))
