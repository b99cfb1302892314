"""A camera's configuration: typed (an unknown key or purpose is an error naming it), versioned, imported."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from safecity.cameras import service
from safecity.cameras.models import CameraIn, CameraPatch
from safecity.core.clock import utcnow
from safecity.core.context import Context

CAM: dict[str, Any] = {
    "id": "khi-s-anpr-01",
    "name": "Saddar, Empress Market",
    "kind": "anpr",
    "district": "South",
    "latitude": 24.8607,
    "longitude": 67.0292,
    "stream_url": "rtsp://10.0.0.5/stream1",
    "analysis": {"analysis_fps": 4, "speed_limit_kmh": 60},
    "zones": [{"name": "road", "polygon": [[0, 200], [640, 200], [640, 360], [0, 360]], "purpose": "roi"}],
    "lines": [{"name": "stop", "points": [[100, 300], [540, 300]], "purpose": "stop_line"}],
}
HEADER = "id,name,kind,district,latitude,longitude,stream_url,zones,analysis.decode\n"


def fields_of(response: Any) -> dict[str, str]:
    body = response.json()
    return {f["field"]: f["message"] for f in body["fields"]}


def test_an_extra_camera_setting_is_refused_naming_it(client: TestClient, admin: dict[str, str]) -> None:
    body = {**CAM, "analysis": {"analysis_fps": 4, "calibraton": {"x": 1}}}
    res = client.post("/api/cameras", headers=admin, json=body)
    assert res.status_code == 422
    assert fields_of(res) == {"analysis.calibraton": "Extra inputs are not permitted"}
    assert "analysis.calibraton" in res.json()["detail"]
    assert client.get("/api/cameras", headers=admin).json() == []


def test_an_unknown_zone_purpose_is_refused_naming_the_zone(
    client: TestClient, admin: dict[str, str]
) -> None:
    zone = {"name": "lot", "polygon": [[0, 0], [10, 0], [10, 10]], "purpose": "parking"}
    res = client.post("/api/cameras", headers=admin, json={**CAM, "zones": [zone]})
    assert res.status_code == 422
    message = fields_of(res)["zones.0.purpose"]
    assert "'roi'" in message and "'no_parking'" in message


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            {"zones": [{"name": "x", "polygon": [[0, 0], [100, 100], [100, 0], [0, 100]]}]},
            "zones.0.polygon",
            "crosses itself",
        ),
        ({"zones": [{"name": "x", "polygon": [[0, 0], [50, 50], [100, 100]]}]}, "zones.0.polygon", "no area"),
        ({"zones": [{"name": "x", "polygon": [[0, 0], [50, 50]]}]}, "zones.0.polygon", "at least 3"),
        ({"zones": [{"name": "x", "polygon": [[0, 0], [-5, 50], [9, 9]]}]}, "zones.0.polygon.1.0", "greater"),
        ({"lines": [{"name": "s", "points": [[5, 5], [5, 6]]}]}, "lines.0.points", "2 pixels apart"),
        ({"lines": [{"name": "s", "points": [[5, 5]]}]}, "lines.0.points", "2 items"),
        (
            {
                "lines": [
                    {"name": "a", "points": [[0, 9], [99, 9]]},
                    {"name": "a", "points": [[0, 19], [99, 19]]},
                ]
            },
            "lines",
            "line name 'a' repeats",
        ),
        ({"analysis": {"decode": "sometimes"}}, "analysis.decode", "'keyframes'"),
        ({"analysis": {"signal_head_box": [10, 10, 0, 30]}}, "analysis.signal_head_box", "at least 1 pixel"),
    ],
)
def test_malformed_zones_lines_and_settings_are_refused_naming_the_field(
    client: TestClient, admin: dict[str, str], change: dict[str, Any], field: str, words: str
) -> None:
    res = client.post("/api/cameras", headers=admin, json={**CAM, **change})
    assert res.status_code == 422, res.text
    assert words in fields_of(res)[field]


def test_each_configuration_change_is_a_version_naming_who_when_and_what(
    client: TestClient, admin: dict[str, str]
) -> None:
    created = client.post("/api/cameras", headers=admin, json=CAM).json()
    assert created["config_version"] == 1
    assert created["analysis"]["decode"] == "all" and created["analysis"]["speed_limit_kmh"] == 60

    url = f"/api/cameras/{CAM['id']}"
    changed = client.patch(url, headers=admin, json={"analysis": {"decode": "keyframes"}}).json()
    # Only the named setting changes: the speed limit and the rate stay.
    assert changed["config_version"] == 2
    assert changed["analysis"]["decode"] == "keyframes" and changed["analysis"]["speed_limit_kmh"] == 60
    assert changed["analysis"]["analysis_fps"] == 4

    # A change that leaves the configuration as it is, or touches only the name, makes no version.
    assert (
        client.patch(url, headers=admin, json={"analysis": {"decode": "keyframes"}}).json()["config_version"]
        == 2
    )
    assert client.patch(url, headers=admin, json={"name": "Empress Market"}).json()["config_version"] == 2

    zones = [{"name": "road", "polygon": [[0, 100], [640, 100], [640, 360], [0, 360]], "purpose": "roi"}]
    cleared = client.patch(
        url, headers=admin, json={"zones": zones, "analysis": {"speed_limit_kmh": None}}
    ).json()
    assert cleared["config_version"] == 3 and cleared["analysis"]["speed_limit_kmh"] is None

    history = client.get(f"{url}/versions", headers=admin).json()
    assert [v["version"] for v in history] == [3, 2, 1]
    assert len({v["created_by"] for v in history}) == 1 and history[0]["created_by"].startswith("admin")
    assert [v["note"] for v in history] == ["changed", "changed", "registered"]
    assert history[1]["changes"] == [{"field": "analysis.decode", "before": "all", "after": "keyframes"}]
    assert {c["field"] for c in history[0]["changes"]} == {"analysis.speed_limit_kmh", "zones['road']"}

    first = client.get(f"{url}/versions/1", headers=admin).json()
    assert first["config"]["analysis"]["decode"] == "all"
    assert first["config"]["zones"][0]["polygon"][0] == [0, 200]
    missing = client.get(f"{url}/versions/9", headers=admin)
    assert missing.status_code == 404 and "versions run from 1 to 3" in missing.json()["hint"]


def test_an_impossible_patch_keeps_the_version_in_force(client: TestClient, admin: dict[str, str]) -> None:
    client.post("/api/cameras", headers=admin, json=CAM)
    url = f"/api/cameras/{CAM['id']}"
    second_stop = {"name": "stop 2", "points": [[100, 320], [540, 320]], "purpose": "stop_line"}
    res = client.patch(url, headers=admin, json={"lines": [*CAM["lines"], second_stop]})
    assert res.status_code == 422 and "one stop line per camera" in fields_of(res)["lines"]
    res = client.patch(url, headers=admin, json={"analysis": {"motion_gate": True, "record_every": 3}})
    assert res.status_code == 422 and "analysis.record_every" in fields_of(res)
    camera = client.get(url, headers=admin).json()
    assert camera["config_version"] == 1 and len(camera["lines"]) == 1


def test_the_schema_describes_every_setting_for_the_form(client: TestClient, admin: dict[str, str]) -> None:
    schema = client.get("/api/cameras/config-schema", headers=admin).json()
    settings = schema["$defs"]["AnalysisSettings"]
    assert settings["additionalProperties"] is False
    for name, prop in settings["properties"].items():
        assert prop.get("title") and prop.get("description"), name
    assert set(schema["$defs"]["ZonePurpose"]["enum"]) >= {"roi", "no_parking", "restricted", "crowd"}
    assert set(schema["$defs"]["LinePurpose"]["enum"]) == {"stop_line", "count", "speed_trap"}
    assert "zone roi" in schema["used_by"]


def test_versions_outlive_the_camera_and_a_new_registration_numbers_on(ctx: Context) -> None:
    with ctx.db.session() as session:
        service.create(session, CameraIn.model_validate(CAM), actor="admin")
        service.update(
            session, CAM["id"], CameraPatch.model_validate({"analysis": {"decode": "nonref"}}), actor="admin"
        )
        service.delete(session, CAM["id"], actor="admin")
    with ctx.db.session() as session:
        assert [v.version for v in service.versions(session, CAM["id"])] == [2, 1]
        again = service.create(session, CameraIn.model_validate(CAM), actor="admin")
        assert again.config_version == 3


def test_the_version_in_force_at_a_moment_is_the_last_one_made_before_it(ctx: Context) -> None:
    before = utcnow() - timedelta(seconds=1)
    with ctx.db.session() as session:
        service.create(session, CameraIn.model_validate(CAM), actor="admin")
    between = utcnow()
    with ctx.db.session() as session:
        service.update(
            session, CAM["id"], CameraPatch.model_validate({"analysis": {"decode": "nonref"}}), actor="admin"
        )
    with ctx.db.session() as session:
        assert service.version_at(session, CAM["id"], before) is None
        assert service.version_at(session, CAM["id"], between).version == 1  # type: ignore[union-attr]
        assert service.version_at(session, CAM["id"], utcnow()).version == 2  # type: ignore[union-attr]


def test_a_csv_import_names_each_bad_setting_zone_and_cell_by_line(ctx: Context) -> None:
    road = '"[{""name"": ""road"", ""polygon"": [[0, 200], [640, 200], [640, 360]], ""purpose"": ""roi""}]"'
    lot = road.replace('""roi""', '""parking""')
    content = (
        HEADER.replace("analysis.decode", "analysis.decode,analysis.calibration")
        + f"c1,One,anpr,South,24.8,67.0,rtsp://a/s,{road},keyframes,\n"
        + f"c2,Two,anpr,South,24.8,67.0,rtsp://b/s,{lot},keyframes,\n"
        + "c3,Three,anpr,South,24.8,67.0,rtsp://c/s,,often,\n"
        + "c4,Four,anpr,South,24.8,67.0,rtsp://d/s,[{oops,,\n"
        + 'c5,Five,anpr,South,24.8,67.0,rtsp://e/s,,,"{""x"": 1}"\n'
    )
    with ctx.db.session() as session:
        report = service.import_cameras(session, content, fmt="csv", actor="test")
    assert report.created == 0
    assert report.errors[0].startswith("line 5: zones: the cell is not valid JSON")
    assert sorted(report.errors[1:]) == [
        "line 3: zones.0.purpose: Input should be 'roi', 'no_parking', 'restricted', 'crowd' or 'loitering'",
        "line 4: analysis.decode: Input should be 'all', 'nonref' or 'keyframes'",
        "line 6: analysis.calibration: Extra inputs are not permitted",
    ]
    with ctx.db.session() as session:
        assert service.list_cameras(session) == []


def test_a_csv_import_keeps_typed_settings_and_versions_them(ctx: Context) -> None:
    road = '"[{""name"": ""road"", ""polygon"": [[0, 200], [640, 200], [640, 360]], ""purpose"": ""roi""}]"'
    content = (
        HEADER.replace("analysis.decode", "analysis.decode,analysis.signal_head_box")
        + f'c1,One,anpr,South,24.8,67.0,rtsp://a/s,{road},keyframes,"[600, 20, 30, 80]"\n'
    )
    with ctx.db.session() as session:
        assert service.import_cameras(session, content, fmt="csv", actor="test").created == 1
    with ctx.db.session() as session:
        camera = service.get(session, "c1")
        assert camera.settings.decode == "keyframes" and camera.settings.signal_head_box == (600, 20, 30, 80)
        assert camera.config.zones[0].purpose == "roi" and camera.config_version == 1
        assert service.versions(session, "c1")[0].note == "imported (csv)"
    upsert = content.replace("keyframes", "nonref")
    with ctx.db.session() as session:
        report = service.import_cameras(session, upsert, fmt="csv", actor="test", upsert=True)
        assert report.updated == 1
    with ctx.db.session() as session:
        assert service.get(session, "c1").config_version == 2


def test_a_yaml_import_names_the_camera_and_the_field(ctx: Context) -> None:
    content = """
cameras:
  - {id: y1, name: One, kind: fixed, district: South, latitude: 24.8, longitude: 67.0}
  - id: y2
    name: Two
    kind: fixed
    district: South
    latitude: 24.8
    longitude: 67.0
    zones:
      - {name: gate, purpose: restricted, polygon: [[0, 0], [100, 100], [100, 0], [0, 100]]}
    analysis: {analysis_fps: .nan}
"""
    with ctx.db.session() as session:
        report = service.import_cameras(session, content, fmt="yaml", actor="test")
    assert len(report.errors) == 2
    assert report.errors[0] == "camera 2: analysis.analysis_fps: Input should be a finite number"
    assert report.errors[1].startswith("camera 2: zones.0.polygon: Value error, the polygon crosses itself")


def test_the_cli_shows_a_cameras_history_configuration_and_schema(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safecity.cli import app

    with ctx.db.session() as session:
        service.create(session, CameraIn.model_validate(CAM), actor="admin")
        service.update(
            session, CAM["id"], CameraPatch.model_validate({"analysis": {"decode": "nonref"}}), actor="admin"
        )
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(ctx.settings.data_dir))
    runner = CliRunner()
    history = runner.invoke(app, ["cameras", "versions", CAM["id"], "--json"])
    assert history.exit_code == 0, history.output
    assert '"field": "analysis.decode"' in history.output and '"version": 2' in history.output
    table = runner.invoke(app, ["cameras", "versions", CAM["id"]])
    assert "analysis.decode" in table.output and "registered" in table.output
    first = runner.invoke(app, ["cameras", "config", CAM["id"], "--version", "1"])
    assert first.exit_code == 0 and '"decode": "all"' in first.output and '"version": 1' in first.output
    now = runner.invoke(app, ["cameras", "config", CAM["id"]])
    assert '"decode": "nonref"' in now.output
    missing = runner.invoke(app, ["cameras", "config", CAM["id"], "--version", "7"])
    assert missing.exit_code == 1 and "no configuration version 7" in missing.output
    assert "Traceback" not in missing.output
    schema = runner.invoke(app, ["cameras", "schema"])
    assert schema.exit_code == 0 and '"no_parking"' in schema.output


def test_changing_a_camera_whose_stored_settings_were_edited_by_hand_names_the_bad_one(
    ctx: Context, client: TestClient, admin: dict[str, str]
) -> None:
    from sqlalchemy import update

    from safecity.cameras.models import Camera

    client.post("/api/cameras", headers=admin, json=CAM)
    with ctx.db.session() as session:
        session.execute(update(Camera).where(Camera.id == CAM["id"]).values(analysis={"decode": "sometimes"}))
    res = client.patch(f"/api/cameras/{CAM['id']}", headers=admin, json={"analysis": {"motion_gate": False}})
    assert res.status_code == 422
    assert "analysis.decode: Input should be 'all', 'nonref' or 'keyframes'" in res.json()["detail"]
    fixed = client.patch(f"/api/cameras/{CAM['id']}", headers=admin, json={"analysis": {"decode": "all"}})
    assert fixed.status_code == 200 and fixed.json()["config_version"] == 2
