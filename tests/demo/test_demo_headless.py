"""The synthetic city, headless: real pipelines turn rendered traffic into reads, alerts and a report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from safecity.cli import app
from safecity.core.context import Context
from safecity.recordings.models import RecordingSegment
from safecity.settings import Settings


def test_headless_demo_reports_what_the_city_saw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        [
            "demo",
            "--headless",
            "--seconds",
            "30",
            "--data-dir",
            str(tmp_path / "city"),
            "--report",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "one-time password" in result.output
    data = json.loads(report.read_text())
    assert {"seconds", "cameras", "frames", "events", "alerts"} <= data.keys()
    assert data["cameras"] == 27 and data["frames"] > 100  # 26 in the city, and the simulated PTZ one
    assert data["events"]["plate_read"] >= 3 and data["plate_reads"] >= 3
    # The stolen car passes Nazimabad at 5 s; the dead link and the covered lens are faults.
    assert data["alerts_by_kind"].get("hotlist", 0) >= 1
    assert data["alerts_by_kind"].get("camera_fault", 0) >= 1
    assert data["camera_health"].get("offline", 0) == 1
    # Every streaming camera records (synthetic frames encoded to H.264), so alerts protect real footage.
    footage = data["footage"]
    assert data["recorded_segments"] >= data["cameras_streaming"] - 1 and footage["segments"] >= 1
    # Only the camera whose link is down has nothing to protect, and its alert's clip says so.
    assert footage["protections"] >= 1
    assert footage.get("clips_not_recorded", 0) <= data["camera_health"].get("offline", 0)
    # What the demo recorded exports like any camera's footage: MP4 files and a manifest of hashes.
    ctx = Context.create(Settings(data_dir=tmp_path / "city"))
    with ctx.db.session() as session:
        segment = session.scalars(select(RecordingSegment).order_by(RecordingSegment.start)).first()
        assert segment is not None
        camera_id, start, end = segment.camera_id, segment.start, segment.end
    ctx.db.dispose()
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(tmp_path / "city"))
    exported = CliRunner().invoke(
        app,
        [
            *("recordings", "export", camera_id, "--from", start.isoformat(), "--to", end.isoformat()),
            *("--out", str(tmp_path / "export"), "--reason", "demo footage, case 17"),
        ],
    )
    assert exported.exit_code == 0, exported.output
    assert len(list((tmp_path / "export").glob("*.mp4"))) == 1
    assert (tmp_path / "export" / "manifest.json").exists()
