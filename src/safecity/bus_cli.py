"""`safecity bus …`: the pipeline's state, and the dead letters an operator inspects and replays."""

from __future__ import annotations

import asyncio
import getpass
from typing import Any

import typer
from rich.table import Table

from safecity.audit import service as audit
from safecity.core import deadletters, outbox
from safecity.core.cliutil import console, friendly_errors, open_context, print_json
from safecity.core.context import Context
from safecity.core.errors import InvalidInput
from safecity.core.jobs import JobLease, JobRun

app = typer.Typer(help="The event pipeline: consumer lag, dead letters, periodic jobs.", no_args_is_help=True)
dead_app = typer.Typer(help="Events a consumer gave up on: list them, replay them.", no_args_is_help=True)
app.add_typer(dead_app, name="dead-letters")


def _state(ctx: Context) -> dict[str, Any]:
    async def lag() -> dict[str, int] | None:
        if ctx.settings.bus != "nats":
            return None  # the in-process bus lives in the serving process: see its /metrics
        await ctx.bus.start()
        try:
            return await ctx.bus.lag()
        finally:
            await ctx.bus.close()

    waiting = asyncio.run(lag())
    with ctx.db.session() as session:
        lease = session.get(JobLease, "scheduler")
        runs = {
            r.name: {"at": r.started_at.isoformat(), "error": r.error, "runs": r.runs}
            for r in session.query(JobRun).order_by(JobRun.name)
        }
        return {
            "bus": ctx.settings.bus,
            "consumer_lag": waiting,
            "outbox_pending": outbox.pending(session),
            "dead_letters": deadletters.counts(session),
            "jobs_holder": lease.holder if lease else None,
            "jobs_lease_expires": lease.expires_at.isoformat() if lease else None,
            "jobs": runs,
        }


@app.command("status")
@friendly_errors
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """Show consumer lag, the outbox, dead letters and who runs the periodic jobs."""
    ctx = open_context()
    try:
        state = _state(ctx)
    finally:
        ctx.db.dispose()
    if as_json:
        print_json(state)
        return
    lag = state["consumer_lag"]
    table = Table("consumer group", "waiting", "dead letters")
    groups = sorted(set(lag or {}) | set(state["dead_letters"]))
    for group in groups:
        waiting = "—" if lag is None else str(lag.get(group, 0))
        table.add_row(group, waiting, str(state["dead_letters"].get(group, 0)))
    console.print(table)
    if lag is None:
        console.print("[dim]the in-process bus lives in the serving process: its lag is on /metrics[/]")
    console.print(f"outbox: {state['outbox_pending']} event(s) committed, not yet published")
    console.print(f"periodic jobs run by: {state['jobs_holder'] or 'nobody yet'}")
    for name, run in state["jobs"].items():
        mark = f"[red]failed: {run['error']}[/]" if run["error"] else "[green]ok[/]"
        console.print(f"  {name}: last {run['at']} {mark}")


@dead_app.command("list")
@friendly_errors
def list_dead(
    consumer: str | None = typer.Option(None, help="Only this consumer group"),
    include_replayed: bool = typer.Option(False, "--all", help="Also those already replayed"),
    limit: int = typer.Option(100, min=1, max=10_000, help="How many, newest first"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """List dead letters: which consumer gave up on which event, when, and why."""
    ctx = open_context()
    try:
        with ctx.db.session() as session:
            rows: list[dict[str, Any]] = [
                {
                    "id": r.id,
                    "consumer": r.consumer,
                    "event_type": r.event_type,
                    "key": r.key,
                    "error": r.error,
                    "times": r.times,
                    "deliveries": r.deliveries,
                    "first_at": r.first_at.isoformat(),
                    "last_at": r.last_at.isoformat(),
                    "replayed_at": r.replayed_at.isoformat() if r.replayed_at else None,
                    "data": r.data,
                }
                for r in deadletters.list_letters(
                    session, consumer=consumer, include_replayed=include_replayed, limit=limit
                )
            ]
    finally:
        ctx.db.dispose()
    if as_json:
        print_json(rows)
        return
    _print_letters(rows)


def _print_letters(rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print("[green]no dead letters[/]")
        return
    table = Table("id", "consumer", "event", "key", "times", "last", "error")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["consumer"],
            r["event_type"] or "?",
            r["key"] or "—",
            str(r["times"]),
            r["last_at"][:19],
            r["error"][:80],
        )
    console.print(table)


@dead_app.command("replay")
@friendly_errors
def replay(
    ids: list[int] = typer.Argument(None, help="Dead-letter ids (see `list`)"),
    consumer: str | None = typer.Option(None, help="Every waiting dead letter of this consumer group"),
    every: bool = typer.Option(False, "--all", help="Every waiting dead letter"),
    reason: str = typer.Option(..., help="Why they are replayed (what was fixed); written to the audit log"),
) -> None:
    """Publish dead letters again once their cause is fixed; the serving processes pick them up."""
    if len(reason.strip()) < 3:
        raise InvalidInput("say why the events are replayed", hint="e.g. --reason 'camera cam-7 registered'")
    actor = f"cli:{getpass.getuser()}"
    ctx = open_context()
    try:
        with ctx.db.session() as session:
            replayed = deadletters.replay(session, actor=actor, ids=ids or (), consumer=consumer, every=every)
            audit.record(
                session, actor=actor, action="bus.replay", detail={"ids": replayed, "reason": reason.strip()}
            )
    finally:
        ctx.db.dispose()
    if not replayed:
        console.print("no dead letters were waiting")
        return
    console.print(f"replaying {len(replayed)} event(s): {', '.join(map(str, replayed))}")
    console.print("[dim]a running `safecity serve` publishes them within a second (the outbox)[/]")
