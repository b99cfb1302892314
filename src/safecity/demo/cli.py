"""`safecity demo`: the synthetic city, end to end."""

from __future__ import annotations

import typer


def demo() -> None:
    """Run the synthetic city."""
    raise typer.Exit(0)
