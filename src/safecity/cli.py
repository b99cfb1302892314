"""The `safecity` command; each domain adds its own sub-commands."""

from __future__ import annotations

import typer

from safecity.anpr.cli import app as plates_app
from safecity.faces.cli import app as faces_app

app = typer.Typer(
    help="SafeCity: the command centre of a city's camera network.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(plates_app, name="plates")
app.add_typer(faces_app, name="faces")
