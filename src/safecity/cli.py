"""The `safecity` command; each domain adds its own sub-commands."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer

from safecity.accounts.cli import app as users_app
from safecity.anpr.cli import app as plates_app
from safecity.anpr.hotlist_cli import app as hotlist_app
from safecity.audit.cli import app as audit_app
from safecity.bodyworn.cli import app as evidence_app
from safecity.bus_cli import app as bus_app
from safecity.cameras.cli import app as cameras_app
from safecity.challans.cli import app as challans_app
from safecity.core.cliutil import console, friendly_errors, open_context
from safecity.core.errors import InvalidInput
from safecity.demo.cli import demo
from safecity.enforcement.cli import app as enforcement_app
from safecity.evidence.cli import app as media_app
from safecity.faces.cli import app as faces_app
from safecity.keys_cli import app as keys_app
from safecity.maintenance.cli import app as maintenance_app
from safecity.maps.cli import app as map_app
from safecity.recordings.cli import app as recordings_app
from safecity.settings import Settings, load_settings
from safecity.vision.cli import app as vision_app
from safecity.vision.models_cli import app as models_app
from safecity.worker.cli import app as cluster_app

app = typer.Typer(
    help="SafeCity: the command centre of a city's camera network.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def private_files() -> None:
    """Every command writes for SafeCity's own user only."""
    # Files 0600 and folders 0700: the database, recordings, media, spool and outbox hold personal data.
    os.umask(0o077)


app.add_typer(cameras_app, name="cameras")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(plates_app, name="plates")
app.add_typer(faces_app, name="faces")
app.add_typer(hotlist_app, name="hotlist")
app.add_typer(enforcement_app, name="enforcement")
app.add_typer(challans_app, name="challans")
app.add_typer(recordings_app, name="recordings")
app.add_typer(media_app, name="media")
app.add_typer(evidence_app, name="evidence")
app.add_typer(maintenance_app, name="maintenance")
app.add_typer(bus_app, name="bus")
app.add_typer(cluster_app, name="cluster")
app.add_typer(models_app, name="models")
app.add_typer(vision_app, name="vision")
app.add_typer(map_app, name="map")
app.command("demo")(demo)

config_app = typer.Typer(help="Configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
@friendly_errors
def config_show() -> None:
    """Show every setting: its value, environment variable and meaning."""
    from rich.table import Table

    settings = load_settings()
    table = Table("setting", "value", "variable", "meaning")
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        shown = "•••" if name in ("secret_key", "metrics_token") and value else str(value)
        table.add_row(field.title or name, shown, f"SAFECITY_{name.upper()}", field.description or "")
    console.print(table)


@app.command("migrate")
@friendly_errors
def migrate() -> None:
    """Bring the database schema up to date."""
    open_context(migrate=True)
    console.print("database schema is up to date")


@app.command("serve")
@friendly_errors
def serve(
    host: str | None = typer.Option(None, help="Listen address (default from settings)"),
    port: int | None = typer.Option(None, help="Listen port (default from settings)"),
    workers: bool = typer.Option(True, help="Also run the camera pipelines in this process (embedded)"),
    ssl_certfile: Path | None = typer.Option(
        None, help="Serve HTTPS with this PEM certificate (default from SAFECITY_SSL_CERTFILE)"
    ),
    ssl_keyfile: Path | None = typer.Option(
        None, help="Private key of the certificate (default from SAFECITY_SSL_KEYFILE)"
    ),
) -> None:
    """Run the command centre (API, pages, consumers), and the camera pipelines unless --no-workers."""
    import uvicorn

    from safecity.server import create_app
    from safecity.worker.runtime import start_pipelines_hook

    ctx = open_context()
    tls = tls_files(ssl_certfile or ctx.settings.ssl_certfile, ssl_keyfile or ctx.settings.ssl_keyfile)
    logging.basicConfig(
        level=ctx.settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    hooks = [start_pipelines_hook()] if workers else []
    uvicorn.run(
        create_app(ctx, on_started=hooks),
        host=host or ctx.settings.host,
        port=port or ctx.settings.port,
        log_level=ctx.settings.log_level.lower(),
        # Forwarded headers are judged by SafeCity against SAFECITY_TRUSTED_PROXIES, not by uvicorn.
        proxy_headers=False,
        server_header=False,
        # Live video is compressed already: deflating every fragment cost a third of the relay's CPU.
        ws_per_message_deflate=False,
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )


def tls_files(certfile: Path | None, keyfile: Path | None) -> tuple[Path, Path] | None:
    """Returns the certificate and key to serve HTTPS with, None for plain HTTP; refuses half a pair."""
    if certfile is None and keyfile is None:
        return None
    if certfile is None or keyfile is None:
        raise InvalidInput(
            "HTTPS needs both a certificate and its private key",
            hint="give --ssl-certfile and --ssl-keyfile (or SAFECITY_SSL_CERTFILE and SAFECITY_SSL_KEYFILE)",
        )
    for path, what in ((certfile, "certificate"), (keyfile, "private key")):
        if not path.is_file():
            raise InvalidInput(f"the TLS {what} {path} does not exist", hint="fix the path")
    return certfile, keyfile


@app.command("worker")
@friendly_errors
def worker(
    camera: list[str] = typer.Option([], help="Only these cameras (default: a fair share of all)"),
) -> None:
    """Run camera pipelines only, publishing observations to the bus (city scale, with SAFECITY_BUS=nats)."""
    import asyncio

    from safecity.worker.runtime import run_worker

    ctx = open_context()
    logging.basicConfig(
        level=ctx.settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run_worker(ctx, camera_ids=camera or None))


if __name__ == "__main__":
    app()
