"""`safecity demo`: the synthetic city, end to end, on the embedded default."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.panel import Panel

from safecity.core.cliutil import console, friendly_errors
from safecity.settings import load_settings

if TYPE_CHECKING:
    from safecity.core.context import Context
    from safecity.demo.city import CityPlan


@friendly_errors
def demo(
    headless: bool = typer.Option(False, "--headless", help="Run without serving the pages, then report"),
    seconds: float = typer.Option(60.0, "--seconds", min=5, help="How long a headless run lasts"),
    report: Path | None = typer.Option(None, "--report", help="Write the headless run's JSON report here"),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data folder (default: ./demo-data, wiped)"
    ),
    port: int | None = typer.Option(None, help="Port to serve the command centre on"),
    faces: Path | None = typer.Option(
        None,
        "--faces",
        help="The shared face set, read in place (default: ../shared/data/faces beside the project)",
    ),
) -> None:
    """Run the synthetic city through the real pipeline and serve the command centre (or report)."""
    from safecity.demo.run import data_dir_for, prepare, run_headless, start_crew

    base = load_settings()
    listen_port = port or base.port
    settings = base.model_copy(
        # The demo's key is made in its own (wiped) data folder, whatever the environment says.
        update={
            "data_dir": data_dir_for(data_dir, base),
            "bus": "memory",
            "database_url": None,
            "secret_key": None,
            # Its notices and QR codes name the address it serves on, unless one was configured.
            "public_base_url": base.public_base_url or f"http://{base.host}:{listen_port}",
        }
    )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with console.status("building the synthetic city (cameras, registry, hot list, units, watch list)…"):
        ctx, city = prepare(settings, seconds=seconds if headless else 3600, faces_dir=faces)
    console.print(
        Panel.fit(
            f"data folder: {settings.data_dir}\n"
            f"cameras: {city.cameras} registered, {city.streaming} streaming (each one recorded)\n"
            f"face story: {city.face_story}\n"
            f"stranger: {city.stranger_plan}\n"
            f"sign in as [bold]admin[/] with one-time password [bold yellow]{city.admin_password}[/]",
            title="SafeCity demo",
        )
    )
    if headless:
        result = asyncio.run(run_headless(ctx, city, seconds=seconds))
        text = json.dumps(result, indent=2)
        if report is not None:
            report.write_text(text + "\n")
            console.print(f"report written to {report}")
        console.print_json(text)
        return
    import uvicorn

    from safecity.server import create_app
    from safecity.worker.runtime import start_pipelines_hook

    base_url = f"http://{settings.host}:{listen_port}"
    console.print(f"command centre: [bold]{base_url}[/]  (Ctrl-C stops)")
    if city.wanted_entry_id is not None:
        console.print(_what_to_watch(city, base_url))

    async def start_story(ctx: Context) -> None:
        # An operator has 20 s to send a unit to a face alert before the duty dispatcher does.
        await start_crew(ctx, city, app, dispatch_after_s=20.0)  # `app` is the one made below

    app = create_app(ctx, on_started=[start_story, start_pipelines_hook()])
    uvicorn.run(
        app,
        host=settings.host,
        port=listen_port,
        log_level="warning",
        proxy_headers=False,
        ws_per_message_deflate=False,  # live video is compressed already (see `safecity serve`)
    )


def _what_to_watch(city: CityPlan, base_url: str) -> Panel:
    """Returns what a newcomer watches for in the seed story, and which pages show it."""
    from safecity.demo.story import FACE_CAM, STRANGER_CAM

    officer = city.crew.officer_of(city.story_unit or "")
    phone = (
        f"{base_url}/field as [bold]{officer.username}[/] (password [bold yellow]{officer.password}[/]; "
        "a private window, so the console stays signed in)"
        if officer is not None
        else f"{base_url}/field"
    )
    return Panel.fit(
        "Every minute a wanted man rides a motorcycle past Regal Chowk (face camera "
        f"{FACE_CAM}). Watch for:\n"
        f"  1. the face alert at the top of the queue, his crop beside his watch-list photo: {base_url}/\n"
        "  2. the nearest unit sent (do it yourself from the alert within 20 s, or the duty dispatcher will),"
        f" then driving there on the map (and on {base_url}/dispatch)\n"
        f"  3. the officer's phone: arrival, then 'suspect confirmed': {phone}\n"
        f"  4. the incident closed as an arrest, the camera live at {base_url}/live/{FACE_CAM} and its "
        f"recording at {base_url}/recordings\n"
        f"  5. a man on no watch list waiting at the airport each minute ({base_url}/live/{STRANGER_CAM}): "
        "no alert, nothing kept of him (the headless --report counts what the pipeline examined)",
        title="The seed story: the first arrest by facial recognition",
    )
