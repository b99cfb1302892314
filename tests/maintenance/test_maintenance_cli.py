"""`safecity maintenance`: states, uptime, open faults and the ticket sweep from a terminal."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from safecity.core.cliutil import open_context
from safecity.core.clock import utcnow
from safecity.maintenance import consumer
from safecity.maintenance.cli import app
from tests.maintenance.maintenance_support import add_camera, health

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_a_camera_offline_for_an_hour_shows_everywhere_and_gets_a_ticket(data_dir: Path) -> None:
    ctx = open_context()
    add_camera(ctx, "cam-1")
    add_camera(ctx, "cam-2")
    now = utcnow()
    consumer.handle_health(ctx, health("cam-1", "online", now - timedelta(hours=3)))
    consumer.handle_health(
        ctx, health("cam-1", "offline", now - timedelta(hours=1), detail="[bold]refused[/]")
    )
    consumer.handle_health(ctx, health("cam-2", "online", now - timedelta(hours=3)))
    ctx.db.dispose()

    faulty = json.loads(runner.invoke(app, ["status", "--faulty", "--json"]).stdout)
    assert [(r["camera_id"], r["state"]) for r in faulty] == [("cam-1", "offline")]
    table = runner.invoke(app, ["status"])
    assert table.exit_code == 0 and "[bold]refused[/]" in table.stdout  # camera words shown, not styled
    [fault] = json.loads(runner.invoke(app, ["faults", "--json"]).stdout)
    assert fault["camera_id"] == "cam-1"
    report = json.loads(runner.invoke(app, ["uptime", "--days", "1", "--tz", "UTC", "--json"]).stdout)
    assert report["tz"] == "UTC" and 0 < report["uptime"] < 1

    swept = runner.invoke(app, ["sweep"])
    assert swept.exit_code == 0 and "1 ticket(s) opened" in swept.stdout
    assert "0 ticket(s) opened" in runner.invoke(app, ["sweep"]).stdout


def test_a_bad_time_zone_is_one_plain_line_and_exit_status_1(data_dir: Path) -> None:
    result = runner.invoke(app, ["uptime", "--tz", "Mars/Olympus"])
    assert result.exit_code == 1
    assert "unknown time zone 'Mars/Olympus'" in result.output
