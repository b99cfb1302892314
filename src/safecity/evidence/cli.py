"""`safecity media …`: the store's size by retention class, the sweep, and holds on evidence."""

from __future__ import annotations

import typer
from rich.table import Table

from safecity.core.cliutil import console, friendly_errors, open_context, print_json
from safecity.core.clock import format_moment
from safecity.evidence import retention, service
from safecity.evidence.models import HoldIn, HoldOut, StoreReport, SweepReport

app = typer.Typer(
    help="Media store: size by retention class, sweep, holds on evidence.", no_args_is_help=True
)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _print_store(report: StoreReport) -> None:
    table = Table("class", "kept", "objects", "size", title=f"media store: {report.objects} objects")
    for figure in report.classes:
        if figure.objects:
            kept = f"{figure.retention_days} days" if figure.retention_days else "while its row lives"
            if figure.name == service.HOLD:
                kept = "until released"
            table.add_row(figure.name, kept, str(figure.objects), _size(figure.bytes))
    table.add_row(
        retention.UNCLAIMED,
        "until the grace ends",
        str(report.unclaimed_objects),
        _size(report.unclaimed_bytes),
    )
    console.print(table)
    console.print(f"total {_size(report.bytes)}; {report.open_holds} open hold(s)")


@app.command("status")
@friendly_errors
def status_command(json_output: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """Walk the store and show its objects and bytes by retention class."""
    ctx = open_context()
    report = retention.store_report(ctx.db, ctx.media, ctx.settings)
    if json_output:
        print_json(report.model_dump(mode="json"))
        return
    _print_store(report)


@app.command("sweep")
@friendly_errors
def sweep_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would go; change nothing"),
    json_output: bool = typer.Option(False, "--json", help="Print JSON"),
    actor: str = typer.Option("cli", "--as", help="Who runs it (audit log)"),
) -> None:
    """Drop claims past their retention and remove objects no row claims (audited)."""
    ctx = open_context()
    report: SweepReport = retention.sweep(ctx.db, ctx.media, ctx.settings, dry_run=dry_run, actor=actor)
    if json_output:
        print_json(report.model_dump(mode="json"))
        return
    verb = "would remove" if dry_run else "removed"
    expired = ", ".join(f"{k} {n}" for k, n in report.claims_expired.items()) or "none"
    console.print(
        f"examined {report.examined} objects ({_size(report.examined_bytes)}) in {report.seconds:.1f} s; "
        f"{verb} {report.removed} ({_size(report.removed_bytes)}); {report.waiting} unclaimed within the "
        f"grace; claims past retention: {expired}"
    )
    if report.store is not None:
        _print_store(report.store)


def _print_holds(holds: list[HoldOut]) -> None:
    table = Table("hold", "kind", "reference", "objects", "placed", "by", "released")
    for h in holds:
        released = f"{format_moment(h.released_at, 'date')} by {h.released_by}" if h.released_at else ""
        table.add_row(
            h.id, h.kind, h.reference, str(h.objects), format_moment(h.placed_at), h.placed_by, released
        )
    console.print(table)


@app.command("holds")
@friendly_errors
def holds_command(
    include_released: bool = typer.Option(False, "--all", help="Released holds too"),
    json_output: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """List holds on evidence."""
    ctx = open_context()
    with ctx.db.session() as session:
        holds = [
            HoldOut.model_validate(h) for h in service.list_holds(session, include_released=include_released)
        ]
    if json_output:
        print_json([h.model_dump(mode="json") for h in holds])
        return
    _print_holds(holds)


@app.command("hold")
@friendly_errors
def hold_command(
    reference: str = typer.Option(..., "--reference", help="Case number, court order or request"),
    reason: str = typer.Option(..., "--reason", help="Why the evidence is held (audited)"),
    refs: list[str] = typer.Option([], "--ref", help="A stored object, sha256:<hex>.<ext> (repeat)"),
    owners: list[str] = typer.Option([], "--owner", help='A row whose objects are held, "kind:id" (repeat)'),
    kind: str = typer.Option("legal", "--kind", help="legal or case"),
    actor: str = typer.Option("cli", "--as", help="Who places the hold (audit log)"),
) -> None:
    """Hold evidence until released: the sweep never removes it."""
    data = HoldIn.model_validate(
        {"kind": kind, "reference": reference, "reason": reason, "refs": refs, "owners": owners}
    )
    ctx = open_context()
    with ctx.db.session() as session:
        hold = HoldOut.model_validate(
            service.place_hold(
                session,
                kind=data.kind,
                reference=data.reference,
                reason=data.reason,
                actor=actor,
                refs=data.refs,
                owners=data.owners,
                store=ctx.media,
            )
        )
    console.print(f"hold {hold.id} ({hold.kind}, {hold.reference}) keeps {hold.objects} object(s)")


@app.command("release")
@friendly_errors
def release_command(
    hold_id: str = typer.Argument(..., help="The hold's id (safecity media holds)"),
    reason: str = typer.Option(..., "--reason", help="Why the hold ends (audited)"),
    actor: str = typer.Option("cli", "--as", help="Who releases it (audit log)"),
) -> None:
    """Release a hold: its objects fall back to their rows' retention."""
    ctx = open_context()
    with ctx.db.session() as session:
        hold = HoldOut.model_validate(service.release_hold(session, hold_id, reason=reason, actor=actor))
    console.print(f"hold {hold.id} released; its {hold.objects} object(s) follow their rows' retention again")
