"""`safecity cluster …`: the camera workers of a city, and which camera each one analyses."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any

import typer
from rich.table import Table

from safecity.cameras import service as cameras
from safecity.core.bus.kv import open_kv
from safecity.core.cliutil import console, friendly_errors, open_context, print_json
from safecity.core.clock import as_utc
from safecity.core.context import Context
from safecity.core.errors import InvalidInput
from safecity.worker.leases import read_cluster

app = typer.Typer(help="The camera workers: who analyses which camera.", no_args_is_help=True)


async def cluster_status(ctx: Context) -> dict[str, Any]:
    """Returns the live and recently seen workers, each camera's holder, and the cameras nobody holds.

    `{"workers": [{"id", "host", "pid", "capacity", "cameras", "last_seen", "alive"}],
    "cameras": [{"id", "holder", "since"}], "unassigned": [ids], "lease_moves": n}`; cameras are the
    registry's enabled cameras with a stream. The bus must be started.
    """
    kv = await open_kv(ctx.bus, ctx.settings.lease_bucket)
    view = await read_cluster(kv, ctx.settings.lease_ttl_s)

    def analysed() -> list[str]:
        with ctx.db.session() as session:
            rows = cameras.list_cameras(session, limit=1_000_000)
            return [c.id for c in rows if c.enabled and c.stream_url]

    camera_ids = await asyncio.to_thread(analysed)
    holders = {camera_id: view.holder(camera_id) for camera_id in camera_ids}
    workers = []
    for worker in sorted(view.workers.values(), key=lambda w: w.id):
        held = sorted(c for c, holder in holders.items() if holder == worker.id)
        workers.append(
            {
                "id": worker.id,
                "host": worker.host,
                "pid": worker.pid,
                "capacity": worker.capacity,
                "cameras": held,
                "last_seen": as_utc(worker.heartbeat_at).isoformat(),
                "alive": view.alive(worker.id),
            }
        )
    rows = []
    for camera_id in camera_ids:
        lease = view.leases.get(camera_id)
        holder = holders[camera_id]
        since = lease.since if holder is not None and lease is not None else None
        rows.append(
            {"id": camera_id, "holder": holder, "since": as_utc(since).isoformat() if since else None}
        )
    return {
        "workers": workers,
        "cameras": rows,
        "unassigned": sorted(c for c, holder in holders.items() if holder is None),
        "lease_moves": view.lease_moves,
    }


async def _status(ctx: Context) -> dict[str, Any]:
    await ctx.bus.start()
    try:
        return await cluster_status(ctx)
    finally:
        with contextlib.suppress(Exception):
            await ctx.bus.close()


def _ago(moment: str, now: datetime) -> str:
    seconds = (now - datetime.fromisoformat(moment)).total_seconds()
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"


@app.command("status")
@friendly_errors
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON (for scripts)")) -> None:
    """Show the workers, the cameras each one analyses, and the cameras no worker analyses."""
    ctx = open_context()
    if ctx.settings.bus != "nats":
        raise InvalidInput(
            "cluster status reads the workers' camera leases on NATS, but this process is set up for the "
            "embedded bus (SAFECITY_BUS=memory), where `safecity serve` analyses every camera itself",
            hint="run it with the workers' SAFECITY_BUS=nats and SAFECITY_NATS_URL",
        )
    result = asyncio.run(_status(ctx))
    if as_json:
        print_json(result)
        return
    from safecity.core.clock import utcnow

    now = utcnow()
    table = Table("worker", "host", "pid", "capacity", "cameras", "last seen", "alive", title="Workers")
    for worker in result["workers"]:
        table.add_row(
            worker["id"],
            worker["host"],
            str(worker["pid"]),
            str(worker["capacity"]),
            str(len(worker["cameras"])),
            _ago(worker["last_seen"], now),
            "yes" if worker["alive"] else "[red]no[/]",
        )
    console.print(table)
    held = len(result["cameras"]) - len(result["unassigned"])
    console.print(
        f"{len(result['cameras'])} cameras to analyse: {held} held, "
        f"{len(result['unassigned'])} unassigned; {result['lease_moves']} lease moves so far"
    )
    if result["unassigned"]:
        shown = ", ".join(result["unassigned"][:20])
        more = len(result["unassigned"]) - 20
        console.print(f"[yellow]unassigned:[/] {shown}" + (f" and {more} more" if more > 0 else ""))
