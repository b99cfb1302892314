"""`safecity cameras check`: one JSON line that tells a newcomer what a camera sends and how it is."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from safecity.video.cli import check
from safecity.video.footage import write_footage

app = typer.Typer()
app.command("check")(check)
app.command("other")(lambda: None)  # a second command keeps `check` a sub-command, as when mounted


def _run(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(app, ["check", *args, "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_healthy_file_reports_codec_size_rate_and_online(street_clip: Path) -> None:
    code, report = _run(str(street_clip), "--seconds", "3")
    assert code == 0
    assert report == {
        "source": str(street_clip),
        "codec": "h264",
        "width": 320,
        "height": 180,
        "fps": 25.0,
        "health": "online",
        "detail": "picture normal",
    }


def test_dark_camera_is_reported_as_too_dark(tmp_path: Path) -> None:
    path = tmp_path / "night.mp4"
    write_footage(path, [("dark", 6)], width=320, height=180)
    code, report = _run(str(path))
    assert code == 1 and report["health"] == "too_dark" and "dark" in str(report["detail"])


def test_unreachable_camera_is_offline_in_plain_words() -> None:
    code, report = _run("rtsp://admin:pw@127.0.0.1:9/stream", "--timeout", "2")
    assert code == 1 and report["health"] == "offline"
    assert "refused the connection" in str(report["detail"])
    assert report["source"] == "rtsp://admin:***@127.0.0.1:9/stream"
