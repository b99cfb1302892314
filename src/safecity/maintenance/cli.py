"""`safecity maintenance …`: camera states, uptime, open faults, and the automatic-ticket sweep."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from safecity.core.cliutil import console, friendly_errors, open_context, print_json
from safecity.core.clock import display_zone, format_moment
from safecity.maintenance import consumer, service
from safecity.maintenance.models import FaultOut, MaintenanceSettings

app = typer.Typer(
    help="Camera maintenance: states, uptime per day, open faults, automatic tickets.", no_args_is_help=True
)


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.1f}%"


@app.command("status")
@friendly_errors
def status(
    district: str | None = typer.Option(None, help="Only this district"),
    faulty: bool = typer.Option(False, "--faulty", help="Only cameras in a state other than online"),
    json_output: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """Every camera's health state, since when, and its uptime today and over 7 days."""
    ctx = open_context()
    tz = display_zone().key
    with ctx.db.session() as session:
        rows = service.camera_statuses(session, district=district, faulty_only=faulty)
    if json_output:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    table = Table(
        "camera", "district", "state", "detail", "today", "7 days", title=f"{len(rows)} cameras ({tz})"
    )
    for r in rows:
        table.add_row(
            escape(r.camera_id),
            escape(r.district),
            r.state,
            escape(r.detail),
            _pct(r.uptime_today),
            _pct(r.uptime_7d),
        )
    console.print(table)


@app.command("uptime")
@friendly_errors
def uptime(
    days: int = typer.Option(7, min=1, max=90, help="Days back, today included"),
    tz: str | None = typer.Option(None, help="Time zone of the days (default: display_timezone)"),
    json_output: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """City-wide uptime per day."""
    ctx = open_context()
    with ctx.db.session() as session:
        report = service.uptime_report(session, days=days, tz=tz)
    if json_output:
        print_json(report.model_dump(mode="json"))
        return
    table = Table("day", "uptime", "hours watched", title=f"City uptime {_pct(report.uptime)} ({report.tz})")
    for day in report.city:
        table.add_row(day.day.isoformat(), _pct(day.uptime), f"{day.known_s / 3600:.1f}")
    console.print(table)


@app.command("faults")
@friendly_errors
def faults(json_output: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """Open camera faults, newest first."""
    ctx = open_context()
    with ctx.db.session() as session:
        rows = [FaultOut.model_validate(f) for f in service.list_faults(session, open_only=True)]
    if json_output:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    table = Table("camera", "state", "since", "detail", "evidence", title=f"{len(rows)} open faults")
    for f in rows:
        table.add_row(
            escape(f.camera_id),
            f.state,
            format_moment(f.started_at),
            escape(f.detail),
            f.frame_ref or "",
        )
    console.print(table)


@app.command("sweep")
@friendly_errors
def sweep() -> None:
    """Opens a ticket now for every outage longer than the threshold (the server does this by itself)."""
    ctx = open_context()
    opened = consumer.sweep(ctx, MaintenanceSettings())
    console.print(f"{len(opened)} ticket(s) opened")
    for ticket in opened:
        console.print(f"  {ticket.id}  {escape(ticket.description)}")
