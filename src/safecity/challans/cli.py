"""`safecity challans …`: import the vehicle registry, issue pending challans, render and send notices now."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from safecity.challans import notices_queue, service
from safecity.core.cliutil import console, err_console, friendly_errors, open_context, print_json
from safecity.core.importer import ImportLimits

app = typer.Typer(help="E-challans: registry, issue, notices, delivery, flags.", no_args_is_help=True)


@app.command("import-registry")
@friendly_errors
def import_registry(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="CSV: plate,owner,cnic,address,make,colour"
    ),
) -> None:
    """Import the vehicle registry (all or nothing; broken rows are listed by line)."""
    ctx = open_context()
    with ctx.db.session() as session, file.open("rb") as stream:
        report = service.import_registry(
            session, stream, actor="cli", limits=ImportLimits.from_settings(ctx.settings)
        )
    if report.errors:
        for error in report.errors:
            err_console.print(f"[bold red]error:[/] {escape(str(error))}")
        err_console.print("nothing was imported; fix the lines above and run again")
        raise typer.Exit(1)
    console.print(f"{report.created} vehicles added, {report.updated} updated")


@app.command("issue-pending")
@friendly_errors
def issue_pending(batch: int = typer.Option(5_000, min=1, help="Violations per transaction")) -> None:
    """Issue challans for every approved violation not yet issued."""
    ctx = open_context()
    issued = held = 0
    while True:
        with ctx.db.session() as session:
            report = service.issue_pending(session, limit=batch)
        issued, held = issued + report.issued, held + report.held
        for violation_id, reason in list(report.held_reasons.items())[:20]:
            err_console.print(f"held {violation_id}: {reason}")
        if report.issued + report.held < batch:
            break
    console.print(f"{issued} challans issued, {held} violations held")


@app.command("notices")
@friendly_errors
def notices(
    out: Path | None = typer.Option(None, "--out", help="Also copy each rendered PDF into this folder"),
    limit: int = typer.Option(10_000, min=1, help="Most notices to render"),
) -> None:
    """Render the PDF notices of challans that have none yet (the running centre does it by itself)."""
    ctx = open_context()
    count = notices_queue.render_due_notices(ctx, limit)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        with ctx.db.session() as session:
            for challan in service.list_challans(session, limit=limit):
                if challan.notice_ref:
                    (out / f"{challan.number}.pdf").write_bytes(ctx.media.get(challan.notice_ref))
    console.print(f"{count} notices rendered" + (f", copied to {out}" if out else ""))


@app.command("deliver")
@friendly_errors
def deliver(limit: int = typer.Option(500, min=1, help="Most deliveries to attempt")) -> None:
    """Send queued notices by post, SMS and e-mail (files under data/outbox where none is configured)."""
    ctx = open_context()
    notices_queue.render_due_notices(ctx, limit)
    try:
        counts = notices_queue.send_due_deliveries(ctx, limit)
    finally:
        notices_queue.close(ctx)
    console.print(", ".join(f"{n} {k}" for k, n in counts.items()))


@app.command("notice-worker")
@friendly_errors
def notice_worker(
    every: float = typer.Option(2.0, min=0.1, help="Seconds between rounds when there is nothing to do"),
    batch: int = typer.Option(50, min=1, max=1000, help="Notices rendered or deliveries sent per round"),
) -> None:
    """Render notices and send their post, SMS and e-mail until stopped (a process of its own at city scale).

    Any number may run beside the `serve` processes: each claims its rows, so none is sent twice.
    Run `serve` with SAFECITY_NOTICES_IN_SERVE=false so PDF work never shares a process with intake.
    """
    import signal
    import time

    ctx = open_context()
    stop = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    rendered = sent = 0
    with console.status("sending notices…") as status:
        try:
            while not stop:
                try:
                    # Whatever can go goes first (an SMS needs no PDF), then one batch of notices is
                    # rendered: a backlog of PDFs, milliseconds of CPU each, never holds messages back.
                    attempted = 0
                    while not stop:
                        counts = notices_queue.send_due_deliveries(ctx, batch)
                        sent += counts.get("sent", 0)
                        attempted += sum(counts.values())
                        if sum(counts.values()) < batch:
                            break
                    done = notices_queue.render_due_notices(ctx, batch)
                except Exception as exc:  # the database is away: wait and try again, lose nothing
                    err_console.print(f"[yellow]notices wait:[/] {str(exc).splitlines()[0][:200]}")
                    time.sleep(every)
                    continue
                rendered += done
                status.update(f"notices rendered {rendered} · deliveries sent {sent}")
                if done < batch and attempted < batch:
                    time.sleep(every)
        finally:
            notices_queue.close(ctx)
            ctx.db.dispose()
    console.print(f"stopped: {rendered} notices rendered, {sent} deliveries sent")


@app.command("sweep-flags")
@friendly_errors
def sweep_flags() -> None:
    """Flag licences (3 months unpaid) and CNICs (6 months unpaid)."""
    ctx = open_context()
    with ctx.db.session() as session:
        counts = service.sweep_flags(session)
    console.print(f"{counts['licence']} licences and {counts['cnic']} CNICs flagged")


@app.command("rules")
@friendly_errors
def rules(
    load: Path | None = typer.Option(
        None, "--load", exists=True, dir_okay=False, help="JSON file of new rules"
    ),
) -> None:
    """Show the fine schedule in force, or replace it from a JSON file."""
    from safecity.challans.models import ChallanRules

    ctx = open_context()
    with ctx.db.session() as session:
        if load is not None:
            service.set_rules(session, ChallanRules.model_validate_json(load.read_text()), actor="cli")
        print_json(service.get_rules(session).model_dump(mode="json"))
