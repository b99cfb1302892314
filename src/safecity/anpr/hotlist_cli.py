"""`safecity hotlist …`: keep the stolen, wanted and BOLO lists, check plates, search plate reads, purge."""

from __future__ import annotations

import getpass
from datetime import datetime
from pathlib import Path

import typer
from rich.markup import escape

from safecity.anpr import areas, service
from safecity.anpr.models import (
    AreaIn,
    AreaOut,
    HotlistEntryOut,
    HotlistMatchOut,
    PlateReadOut,
    SearchQuery,
    normalise_plate,
)
from safecity.core.cliutil import console, friendly_errors, open_context, print_json
from safecity.core.errors import InvalidInput, NotFound
from safecity.core.importer import ImportLimits

app = typer.Typer(help="Hot lists (stolen, wanted, BOLO) and plate-history search.", no_args_is_help=True)


def _actor(actor: str | None) -> str:
    # The audit log names a person: without --actor, the operating-system account that ran the command.
    return actor or f"cli:{getpass.getuser()}"


ActorOption = typer.Option(None, "--actor", help="Who does this (audited); default: cli:<your login>")


@app.command("add")
@friendly_errors
def add(
    plate: str = typer.Argument(..., help="Plate, e.g. LEA-4521"),
    list_name: str = typer.Option(..., "--list", help="stolen, wanted or bolo"),
    reason: str = typer.Option(..., help="Why the vehicle is listed (FIR, case, request)"),
    vehicle: str = typer.Option("", help="Make, model, colour"),
    reference: str = typer.Option("", help="FIR or case number"),
    expires: datetime | None = typer.Option(None, help="When the entry lapses (ISO date/time)"),
    actor: str | None = ActorOption,
) -> None:
    """Put a vehicle on a hot list."""
    ctx = open_context()
    with ctx.db.session() as session:
        entry = service.add_hotlist_entry(
            session,
            plate=plate,
            list_name=list_name,
            reason=reason,
            vehicle=vehicle,
            reference=reference,
            expires_at=expires,
            actor=_actor(actor),
        )
        console.print(f"{entry.plate} is on the {entry.list_name} list (entry {entry.id})")


@app.command("remove")
@friendly_errors
def remove(
    plate: str = typer.Argument(..., help="Plate to take off"),
    list_name: str = typer.Option(..., "--list", help="stolen, wanted or bolo"),
    why: str = typer.Option(..., help="Why it comes off (recovered, case closed…)"),
    actor: str | None = ActorOption,
) -> None:
    """Take a vehicle off a hot list."""
    ctx = open_context()
    with ctx.db.session() as session:
        entries = service.list_hotlist(session, list_name=list_name, plate=plate, limit=5000)
        wanted = [e for e in entries if e.plate == normalise_plate(plate)]
        if not wanted:
            raise NotFound(f"{plate} is not on the {list_name} list", hint="see `safecity hotlist list`")
        service.remove_hotlist_entry(session, wanted[0].id, actor=_actor(actor), why=why)
        console.print(f"{wanted[0].plate} removed from the {list_name} list")


@app.command("import")
@friendly_errors
def import_csv(
    file: Path = typer.Argument(..., help="CSV: plate,list,reason[,vehicle,reference,expires_at]"),
    upsert: bool = typer.Option(False, help="Update plates already on the list instead of refusing them"),
    actor: str | None = ActorOption,
) -> None:
    """Import hot-list entries from CSV; any bad line means nothing is imported, every bad line is named."""
    if not file.is_file():
        raise InvalidInput(f"{file} does not exist or is not a file")
    ctx = open_context()
    with ctx.db.session() as session, file.open("rb") as stream:
        report = service.import_hotlist_csv(
            session,
            stream,
            actor=_actor(actor),
            upsert=upsert,
            limits=ImportLimits.from_settings(ctx.settings),
        )
    if report.errors:
        for error in report.errors:
            console.print(f"[red]{escape(error)}[/]")
        raise InvalidInput(
            f"{len(report.errors)} problem(s); nothing was imported", hint="fix the lines named"
        )
    console.print(f"imported {report.created} new and {report.updated} updated entries")


@app.command("list")
@friendly_errors
def list_entries(
    list_name: str | None = typer.Option(None, "--list", help="Only stolen, wanted or bolo"),
    plate: str | None = typer.Option(None, help="Only plates containing this"),
    limit: int = typer.Option(1000, min=1, help="Most entries shown"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """Show hot-list entries, newest first."""
    ctx = open_context()
    with ctx.db.session() as session:
        rows = [
            HotlistEntryOut.model_validate(e)
            for e in service.list_hotlist(session, list_name=list_name, plate=plate, limit=limit)
        ]
    if as_json:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    from rich.table import Table

    table = Table("plate", "list", "reason", "vehicle", "reference", "listed by")
    for r in rows:
        table.add_row(r.plate, r.list_name, r.reason, r.vehicle, r.reference, r.added_by)
    console.print(table)


@app.command("check")
@friendly_errors
def check(
    plate: str = typer.Argument(..., help="Plate as read or reported"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
    actor: str | None = ActorOption,
) -> None:
    """Say which hot-list entries a plate matches (exactly, through look-alikes, or one edit away)."""
    ctx = open_context()
    with ctx.db.session() as session:
        matches: list[HotlistMatchOut] = service.check_plate(session, plate, actor=_actor(actor))
    if as_json:
        print_json([m.model_dump(mode="json") for m in matches])
        return
    if not matches:
        console.print(f"{plate}: on no hot list")
    for m in matches:
        console.print(
            f"{m.entry.plate} on {m.entry.list_name} ({m.kind}, {m.distance} apart): {m.entry.reason}"
        )


@app.command("search")
@friendly_errors
def search(
    plate: str = typer.Argument("", help="Plate, part of one (--match partial) or a pattern like LE?45*"),
    reason: str = typer.Option(..., help="Why you search (audited)"),
    match: str = typer.Option("auto", help="auto, exact, partial or wildcard"),
    camera: str | None = typer.Option(None, help="Only this camera"),
    since: datetime | None = typer.Option(None, help="Reads at or after (ISO date/time, UTC if no zone)"),
    until: datetime | None = typer.Option(None, help="Reads before (ISO date/time)"),
    limit: int = typer.Option(500, min=1, max=5000, help="Most reads shown"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
    actor: str | None = ActorOption,
) -> None:
    """Search the stored plate reads (every search is audited with who and why)."""
    query = SearchQuery.model_validate(
        {
            "plate": plate,
            "match": match,
            "camera_id": camera,
            "since": since,
            "until": until,
            "reason": reason,
            "limit": limit,
        }
    )
    ctx = open_context()
    with ctx.db.session() as session:
        result = service.search_reads(session, query, actor=_actor(actor))
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    from rich.table import Table

    table = Table("time", "plate", "camera", "confidence", "direction")
    read: PlateReadOut
    for read in result.reads:
        table.add_row(
            read.at.isoformat(timespec="seconds"),
            read.plate,
            read.camera_id or "",
            f"{read.confidence:.2f}",
            read.direction or "",
        )
    console.print(table)
    more = " (more matched; narrow the search)" if result.truncated else ""
    console.print(f"{len(result.reads)} read(s) at {len(result.cameras)} camera(s){more}")


@app.command("purge")
@friendly_errors
def purge(
    older_than_days: int | None = typer.Option(None, help="Default: the plate_read_retention_days setting"),
    actor: str | None = ActorOption,
) -> None:
    """Delete plate reads older than the retention period now (the server also does it every hour)."""
    ctx = open_context()
    days = older_than_days or ctx.settings.plate_read_retention_days
    with ctx.db.session() as session:
        deleted = service.purge_reads(session, older_than_days=days, actor=_actor(actor))
    console.print(f"deleted {deleted} plate read(s) older than {days} days")


def _ids(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@app.command("area-add")
@friendly_errors
def area_add(
    name: str = typer.Argument(..., help="Area name, e.g. 'Red Zone'"),
    cameras: str = typer.Option(..., help="Comma-separated camera ids whose reads are in the area"),
    exit_cameras: str = typer.Option("", help="Comma-separated camera ids at the way out"),
    mode: str = typer.Option("listed", help="listed (hot-listed and area-listed vehicles) or all"),
    plates: str = typer.Option("", help="Comma-separated plates listed for this area"),
    exit_after_minutes: float = typer.Option(30, help="A vehicle not read this long has left"),
    alert_on_exit: bool = typer.Option(False, help="Also alert when a listed vehicle leaves"),
    actor: str | None = ActorOption,
) -> None:
    """Define a sensitive area (alerts on listed vehicles entering by default)."""
    data = AreaIn.model_validate(
        {
            "name": name,
            "camera_ids": _ids(cameras),
            "exit_camera_ids": _ids(exit_cameras),
            "mode": mode,
            "plates": _ids(plates),
            "exit_after_minutes": exit_after_minutes,
            "alert_on_exit": alert_on_exit,
        }
    )
    ctx = open_context()
    with ctx.db.session() as session:
        area = areas.create_area(session, data, actor=_actor(actor))
        console.print(f"area {area.name!r} defined (id {area.id})")


@app.command("areas")
@friendly_errors
def area_list(as_json: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """Show the sensitive areas and their rules."""
    ctx = open_context()
    with ctx.db.session() as session:
        rows = [AreaOut.model_validate(a) for a in areas.list_areas(session)]
    if as_json:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    for r in rows:
        exits = ", ".join(r.exit_camera_ids) or "-"
        console.print(f"{r.name} ({r.mode}): cameras {', '.join(r.camera_ids)}; exits {exits}", markup=False)
