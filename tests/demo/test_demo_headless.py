"""The synthetic city, headless: real pipelines turn rendered traffic into reads, alerts and a report,
and (with the shared face photos) the seed story: face match, the nearest unit sent, the arrest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from safecity.cameras import service as cameras
from safecity.cli import app
from safecity.core.context import Context
from safecity.recordings.models import RecordingSegment
from safecity.settings import Settings
from safecity.vision.faces.pipeline import DEFAULT_THRESHOLD
from tests.conftest import need_shared_data


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
            *("--faces", str(tmp_path / "no-faces-here")),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "one-time password" in result.output
    # Without the shared photos the city says it runs without the face story, and runs.
    assert "no face story" in result.output
    data = json.loads(report.read_text())
    assert {"seconds", "cameras", "frames", "events", "alerts"} <= data.keys()
    assert data["cameras"] == 27 and data["frames"] > 100  # 26 in the city, and the simulated PTZ one
    assert data["face_story"]["entry_id"] is None and data["face_story"]["alerts"] == []
    assert data["stranger"]["plan"].startswith("no stranger") and data["stranger"]["face_matches"] == 0
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
        # Every streaming camera records, the face cameras too; only the dead link has nothing.
        recorded = set(session.scalars(select(RecordingSegment.camera_id)).all())
        streaming = {c.id for c in cameras.list_cameras(session) if c.stream_url}
        assert (
            recorded == streaming - {"khi-k-fixed-landhi"}
            and {"khi-so-face-03", "khi-ma-face-01"} <= recorded
        )
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


@pytest.mark.shared_data
def test_headless_demo_tells_the_seed_story(tmp_path: Path) -> None:
    faces = need_shared_data("faces", "labels.csv").parent
    report = tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        [
            *("demo", "--headless", "--seconds", "60", "--data-dir", str(tmp_path / "city")),
            *("--report", str(report), "--faces", str(faces)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "rides past khi-so-face-03" in result.output
    data = json.loads(report.read_text())
    story = data["face_story"]
    assert story["entry_id"] and story["alerts"], story
    first = story["alerts"][0]
    # The wanted man was matched at the face camera, shown beside his watch-list photo ...
    assert first["camera_id"] == "khi-so-face-03" and first["similarity"] >= DEFAULT_THRESHOLD
    assert first["crop"] and first["watchlist_photos"] == 1
    # ... the nearest unit (Madadgar-01, 150 m from Regal Chowk) was sent, arrived, and its officer
    # confirmed the suspect from the field API: an arrest, which closed the alert.
    assert first["units_sent"] == ["mobile-01"] and first["dispatched_by"] == ["demo.dispatcher"]
    assert first["arrived"] and first["outcome"] == "arrest" and first["alert_status"] == "closed"
    assert first["closing_note"].startswith("closed: arrest — suspect confirmed")
    # A man on no watch list rode past the airport's face camera: examined, matched to no one, nothing kept.
    stranger = data["stranger"]
    assert stranger["passes"] >= 1 and stranger["face_frames_examined"] >= 1, stranger
    assert stranger["face_frames_matched_to_no_one"] == stranger["face_frames_examined"]
    assert (stranger["face_matches"], stranger["alerts"], stranger["face_images_kept"]) == (0, 0, 0)
    assert stranger["kept"].startswith("nothing")
