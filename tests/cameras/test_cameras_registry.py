"""The camera registry: API, bulk import that is all-or-nothing, and clear errors."""

from __future__ import annotations

from fastapi.testclient import TestClient

from safecity.cameras import service
from safecity.core.context import Context
from tests.conftest import auth_headers

CAM = {
    "id": "khi-saddar-001",
    "name": "Saddar, Empress Market",
    "kind": "anpr",
    "district": "South",
    "latitude": 24.8607,
    "longitude": 67.0292,
    "stream_url": "rtsp://10.0.0.5/stream1",
    "password": "s3cret",
    "lines": [{"name": "stop", "points": [[100, 500], [900, 520]], "purpose": "stop_line"}],
}

CSV_HEADER = "id,name,kind,district,latitude,longitude,stream_url,analysis.analysis_fps\n"


def test_registered_camera_is_listed_without_its_password(client: TestClient, admin: dict[str, str]) -> None:
    assert client.post("/api/cameras", headers=admin, json=CAM).status_code == 201
    cams = client.get("/api/cameras", headers=admin).json()
    assert [c["id"] for c in cams] == ["khi-saddar-001"]
    assert cams[0]["password"] is None and cams[0]["has_password"] is True
    assert "s3cret" not in str(cams)
    assert cams[0]["lines"][0]["purpose"] == "stop_line"


def test_unknown_camera_is_404_naming_it(client: TestClient, admin: dict[str, str]) -> None:
    res = client.get("/api/cameras/nope", headers=admin)
    assert res.status_code == 404
    assert "'nope'" in res.json()["detail"]


def test_malformed_camera_is_422_naming_the_field(client: TestClient, admin: dict[str, str]) -> None:
    res = client.post("/api/cameras", headers=admin, json={**CAM, "latitude": 123, "kind": "drone"})
    assert res.status_code == 422
    detail = res.json()["detail"]
    assert "latitude" in detail and "kind" in detail


def test_operators_may_read_but_not_change_cameras(ctx: Context, client: TestClient) -> None:
    operator = auth_headers(ctx, "operator")
    assert client.get("/api/cameras", headers=operator).status_code == 200
    assert client.post("/api/cameras", headers=operator, json=CAM).status_code == 403


def test_csv_import_registers_every_row(ctx: Context) -> None:
    rows = "".join(
        f"khi-{i:04d},Camera {i},fixed,Korangi,24.83,67.1{i % 10},rtsp://cam{i}/s,2\n" for i in range(300)
    )
    with ctx.db.session() as session:
        report = service.import_cameras(session, CSV_HEADER + rows, fmt="csv", actor="test")
    assert report.created == 300 and not report.errors
    with ctx.db.session() as session:
        cams = service.list_cameras(session, district="Korangi")
        assert len(cams) == 300
        assert cams[0].analysis["analysis_fps"] == 2.0


def test_csv_with_duplicate_and_bad_rows_imports_nothing(client: TestClient, admin: dict[str, str]) -> None:
    content = (
        CSV_HEADER
        + "a1,A,fixed,South,24.8,67.0,rtsp://a/s,5\n"
        + "a1,A again,fixed,South,24.8,67.0,rtsp://a/s,5\n"
        + "a3,C,satellite,South,24.8,67.0,rtsp://c/s,5\n"
    )
    res = client.post("/api/cameras/import", headers=admin, files={"file": ("cams.csv", content, "text/csv")})
    assert res.status_code == 422
    detail = res.json()["detail"]
    assert "line 3" in detail and "repeats line 2" in detail
    assert "line 4" in detail and "kind" in detail
    assert client.get("/api/cameras", headers=admin).json() == []


def test_yaml_import_and_upsert(ctx: Context) -> None:
    yaml_text = """
cameras:
  - {id: f1, name: Face cam, kind: face, district: East, latitude: 24.9, longitude: 67.1}
"""
    with ctx.db.session() as session:
        assert service.import_cameras(session, yaml_text, fmt="yaml", actor="t").created == 1
    with ctx.db.session() as session:
        again = service.import_cameras(session, yaml_text, fmt="yaml", actor="t")
        assert again.errors and "already registered" in again.errors[0]
    with ctx.db.session() as session:
        assert service.import_cameras(session, yaml_text, fmt="yaml", actor="t", upsert=True).updated == 1
