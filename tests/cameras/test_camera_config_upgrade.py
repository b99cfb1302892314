"""Upgrading a database whose cameras hold untyped settings: typed, versioned, and nothing dropped unsaid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from safecity.cameras import service as cameras
from safecity.core import crypto
from safecity.core.db import Database, alembic_config
from safecity.settings import Settings

LEGACY = {
    "analysis_fps": 2,
    "decode": "keyframes",
    "calibration": {"image_points": [[0, 0], [1, 0], [1, 1], [0, 1]], "ground_points": [[0, 0]]},
    "speed_limit_kmh": "fast",
}
ZONES = [
    {"name": "road", "polygon": [[0, 200], [640, 200], [640, 360]], "purpose": "roi"},
    {"name": "lot", "polygon": [[0, 0], [10, 0], [10, 10]], "purpose": "parking lot"},
]
LINES = [{"name": "stop", "points": [[10, 300], [600, 300]], "purpose": "stop_line"}]


def test_the_upgrade_types_old_settings_and_notes_what_it_dropped_in_version_1(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    crypto.bind(settings)
    db = Database(settings.resolved_database_url)
    config = alembic_config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001_cameras")
        connection.execute(
            text(
                "INSERT INTO cameras (id, name, kind, district, latitude, longitude, stream_url, username,"
                " password, enabled, analysis, zones, lines, health_state, health_detail, created_at,"
                " updated_at) VALUES ('c1', 'Old', 'anpr', 'South', 24.8, 67.0, 'rtsp://10.0.0.5/s', NULL,"
                " NULL, 1, :analysis, :zones, :lines, 'unknown', '', '2025-01-01', '2025-01-01')"
            ),
            {"analysis": json.dumps(LEGACY), "zones": json.dumps(ZONES), "lines": json.dumps(LINES)},
        )
    db.migrate()
    with db.session() as session:
        camera = cameras.get(session, "c1")
        assert camera.config_version == 1
        settings_now = camera.settings
        assert (settings_now.analysis_fps, settings_now.decode, settings_now.speed_limit_kmh) == (
            2,
            "keyframes",
            None,
        )
        assert "calibration" not in camera.analysis
        assert [z.name for z in camera.config.zones] == ["road"]
        assert camera.config.lines[0].purpose == "stop_line"
        (first,) = cameras.versions(session, "c1")
        assert first.created_by == "migration" and first.config == camera.config.stored()
        assert "analysis.calibration dropped (not a camera setting)" in first.note
        assert "'ground_points'" in first.note  # what went is kept in the note, for the record
        assert "analysis.speed_limit_kmh = 'fast' dropped" in first.note
        assert "zones.1 dropped: purpose" in first.note
    assert any("analysis.calibration dropped" in r.getMessage() for r in caplog.records)
    db.dispose()
