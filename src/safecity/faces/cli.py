"""`safecity faces …`: verify, enrol and search faces against watch lists."""

from __future__ import annotations

import typer

app = typer.Typer(help="Faces: verify pairs, enrol watch-list entries, search.", no_args_is_help=True)
