"""`safecity plates …`: read plates from images, manage hot lists."""

from __future__ import annotations

import typer

app = typer.Typer(help="Number plates: read images, search reads, manage hot lists.", no_args_is_help=True)
