"""Helpers shared by every domain's commands: settings, context, and errors without tracebacks."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from safecity.core.clock import display_zone
from safecity.core.context import Context
from safecity.core.errors import InvalidInput, SafeCityError
from safecity.settings import load_settings

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True)


def friendly_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turns a SafeCityError into a one-line message on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except SafeCityError as exc:
            # Messages quote what they read ("SCAL [1, 0]", "[longitude, latitude]"): text, not markup.
            err_console.print(f"[bold red]error:[/] {escape(exc.message)}")
            if exc.hint:
                err_console.print(f"[yellow]hint:[/] {escape(exc.hint)}")
            raise typer.Exit(1) from None
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "value"
                err_console.print(f"[bold red]error:[/] {escape(where)}: {escape(err['msg'])}")
            raise typer.Exit(1) from None

    return wrapper


def open_context(*, migrate: bool = True) -> Context:
    """Returns a context from the environment's settings (migrating the schema by default)."""
    return Context.create(load_settings(), migrate=migrate)


def print_json(data: Any) -> None:
    """Prints JSON to stdout (for --json output that scripts read)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def parse_moment(text: str, name: str) -> datetime:
    """Reads a time given on the command line (ISO 8601); without a zone, in the display zone."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{name} {text!r} is not a time", hint="use ISO 8601, e.g. 2024-05-07T21:40:00+05:00"
        ) from None
    if moment.tzinfo is None:
        # A wall-clock time is read as people read times here: in the display zone (Asia/Karachi).
        moment = moment.replace(tzinfo=display_zone())
    return moment
