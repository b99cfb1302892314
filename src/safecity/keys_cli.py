"""`safecity keys …`: the data keys that encrypt at rest — make, show, rotate, re-encrypt."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import MetaData

from safecity.core import crypto, keyring, rekey
from safecity.core.cliutil import console, friendly_errors, open_context, print_json
from safecity.core.context import Context
from safecity.core.errors import InvalidInput

app = typer.Typer(
    help="Data keys: AES-256-GCM keys for camera passwords, TOTP secrets, face embeddings and media.",
    no_args_is_help=True,
)


@app.command("new")
@friendly_errors
def new(
    key_file: Path | None = typer.Option(None, help="Make this key file (mode 0600) with one new key"),
    print_key: bool = typer.Option(False, "--print", help="Print a new key (base64) for SAFECITY_DATA_KEY"),
) -> None:
    """Make a data key: a key file for SAFECITY_DATA_KEY_FILE, or a key to append to SAFECITY_DATA_KEY."""
    key = keyring.new_key(crypto.DATA_KEYS)
    if print_key:
        typer.echo(keyring.encode(key))
        return
    if key_file is None:
        raise InvalidInput("say where the key goes", hint="--key-file /etc/safecity/data.keys, or --print")
    try:
        keyring.write_key_file(key_file, [key], kind=crypto.DATA_KEYS, exclusive=True)
    except FileExistsError:
        raise InvalidInput(
            f"{key_file} exists already", hint="`safecity keys rotate` adds a key to it"
        ) from None
    console.print(f"data key {key.id} written to {key_file} (mode 0600); copy it to every serve and worker")


@app.command("status")
@friendly_errors
def status(json_output: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """Show the data keys and how much each one seals (columns and media files)."""
    ctx = open_context()
    cipher = crypto.cipher()
    found = rekey.usage(ctx.db, ctx.media, _metadata())
    totals = found.total()
    current = cipher.current.id
    keys = [
        {
            "id": k.id,
            "created": k.created.isoformat() if k.created else None,
            "in_use": k.id == current,
            "seals": totals.get(k.id, 0),
        }
        for k in cipher.keyring.keys
    ]
    unknown = sorted(kid for kid in totals if kid != rekey.PLAIN and cipher.keyring.get(kid) is None)
    report = {
        "source": cipher.keyring.source,
        "keys": keys,
        "columns": {name: dict(counts) for name, counts in found.columns.items()},
        "media": dict(found.media),
        "missing_keys": unknown,
    }
    if json_output:
        print_json(report)
        return
    table = Table("key", "created", "in use", "seals", title=f"data keys in {cipher.keyring.source}")
    for k in keys:
        table.add_row(str(k["id"]), str(k["created"] or "—"), "yes" if k["in_use"] else "", str(k["seals"]))
    console.print(table)
    for name, counts in found.columns.items():
        console.print(f"  {name}: " + (", ".join(f"{kid} {n}" for kid, n in counts.items()) or "empty"))
    console.print("  media: " + (", ".join(f"{kid} {n}" for kid, n in found.media.items()) or "empty"))
    if found.media.get(rekey.PLAIN):
        console.print(
            f"  [yellow]{found.media[rekey.PLAIN]} media files are plain[/] (video, or stored before "
            "encryption: `safecity keys reencrypt` seals the pictures and documents)"
        )
    if unknown:
        console.print(f"  [bold red]sealed under keys this keyring lacks:[/] {', '.join(unknown)}")


@app.command("rotate")
@friendly_errors
def rotate(
    grace: float = typer.Option(
        10.0, min=0, help="Seconds to let running processes start sealing with the new key first"
    ),
) -> None:
    """Add a new data key, re-encrypt everything under it (resumable), and retire the old keys."""
    ctx = open_context()
    cipher = crypto.cipher()
    key = cipher.keyring.add()
    console.print(f"new data key {key.id} added to {cipher.keyring.source}; it encrypts from now on")
    # Every process looks at the key file at least once a second before sealing.
    time.sleep(grace)
    _reencrypt(ctx, cipher)


@app.command("reencrypt")
@friendly_errors
def reencrypt() -> None:
    """Seal under the newest key whatever an older key (or nobody) sealed, then retire unused keys.

    Continues an interrupted `rotate`, and seals media stored before encryption at rest.
    """
    ctx = open_context()
    _reencrypt(ctx, crypto.cipher())


def _reencrypt(ctx: Context, cipher: crypto.Cipher) -> None:
    metadata = _metadata()
    total = rekey.pending(ctx.db, cipher, metadata) + sum(1 for _ in ctx.media.refs())
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(f"re-encrypting under {cipher.current.id}", total=total)
        moved = rekey.reencrypt(
            ctx.db, ctx.media, cipher, metadata, progress=lambda what, n: bar.advance(task, n)
        )
    console.print(f"{moved.values} values and {moved.files} media files sealed under {cipher.current.id}")
    for failure in moved.failed:
        console.print(f"  [red]•[/] {failure}")
    if moved.failed:
        console.print(
            "[red]what could not be opened stays as it is[/]: `safecity keys status` names the keys"
        )
    retired, still = rekey.retire_unused(cipher, rekey.usage(ctx.db, ctx.media, metadata))
    if retired and cipher.keyring.path is not None:
        console.print(f"retired {', '.join(retired)}: removed from {cipher.keyring.path}")
    elif retired:
        console.print(
            f"{', '.join(retired)} seal nothing any more: remove them from {cipher.keyring.source} "
            "on every host"
        )
    if still:
        left = ", ".join(f"{kid} ({n})" for kid, n in still.items())
        console.print(
            f"[yellow]still sealed under older keys:[/] {left}; run `safecity keys reencrypt` again"
        )
        raise typer.Exit(1)


def _metadata() -> MetaData:
    from safecity.models import metadata  # every domain's tables, sealed columns among them

    return metadata
