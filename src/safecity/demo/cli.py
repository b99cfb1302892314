"""`safecity demo`: the synthetic city, end to end, on the embedded default."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import typer
from rich.panel import Panel

from safecity.core.cliutil import console, friendly_errors
from safecity.settings import load_settings


@friendly_errors
def demo(
    headless: bool = typer.Option(False, "--headless", help="Run without serving the pages, then report"),
    seconds: float = typer.Option(60.0, "--seconds", min=5, help="How long a headless run lasts"),
    report: Path | None = typer.Option(None, "--report", help="Write the headless run's JSON report here"),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data folder (default: ./demo-data, wiped)"
    ),
    port: int | None = typer.Option(None, help="Port to serve the command centre on"),
) -> None:
    """Run the synthetic city through the real pipeline and serve the command centre (or report)."""
    from safecity.demo.run import data_dir_for, prepare, run_headless

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
    with console.status("building the synthetic city (cameras, registry, hot list, units)…"):
        ctx, city = prepare(settings, seconds=seconds if headless else 3600)
    console.print(
        Panel.fit(
            f"data folder: {settings.data_dir}\n"
            f"cameras: {city.cameras} registered, {city.streaming} streaming\n"
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

    console.print(f"command centre: [bold]http://{settings.host}:{listen_port}[/]  (Ctrl-C stops)")
    uvicorn.run(
        create_app(ctx, on_started=[start_pipelines_hook()]),
        host=settings.host,
        port=listen_port,
        log_level="warning",
        proxy_headers=False,
        ws_per_message_deflate=False,  # live video is compressed already (see `safecity serve`)
    )
