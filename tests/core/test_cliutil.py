"""The command line's error lines: what a message quotes is printed as it is, never read as markup."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from safecity.core.cliutil import friendly_errors
from safecity.core.errors import InvalidInput


def test_an_error_quoting_brackets_keeps_them() -> None:
    app = typer.Typer()

    @app.command()
    @friendly_errors
    def check() -> None:
        raise InvalidInput(
            "feature 3: coordinates [67.0, 24.8, [bad]] are not [longitude, latitude]",
            hint="write each point as [longitude, latitude]; [bold]is not markup[/bold]",
        )

    result = CliRunner().invoke(app, [])
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "coordinates [67.0, 24.8, [bad]] are not [longitude, latitude]" in said
    assert "write each point as [longitude, latitude]; [bold]is not markup[/bold]" in said


@pytest.mark.parametrize("message", ["SCAL [10000000, 0] divides by 0", "[/]"])
def test_a_message_that_looks_like_markup_is_not_an_error_of_its_own(message: str) -> None:
    app = typer.Typer()

    @app.command()
    @friendly_errors
    def check() -> None:
        raise InvalidInput(message)

    result = CliRunner().invoke(app, [])
    assert result.exit_code == 1, result.output
    assert message in " ".join(result.output.split())
