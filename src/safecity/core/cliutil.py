"""Helpers shared by every domain's commands: settings, context, and errors without tracebacks."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from safecity.core.context import Context
from safecity.core.errors import SafeCityError
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
            err_console.print(f"[bold red]error:[/] {exc.message}")
            if exc.hint:
                err_console.print(f"[yellow]hint:[/] {exc.hint}")
            raise typer.Exit(1) from None
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "value"
                err_console.print(f"[bold red]error:[/] {where}: {err['msg']}")
            raise typer.Exit(1) from None

    return wrapper


def open_context(*, migrate: bool = True) -> Context:
    """Returns a context from the environment's settings (migrating the schema by default)."""
    return Context.create(load_settings(), migrate=migrate)


def print_json(data: Any) -> None:
    """Prints JSON to stdout (for --json output that scripts read)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
