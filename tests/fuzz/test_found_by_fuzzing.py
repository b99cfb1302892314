"""Each request here once made the server answer 500; now each is a 4xx that says what to fix.

They were found by fuzzing the OpenAPI (issue 16, finding 11, and tests/fuzz/test_openapi_fuzz.py)
and are kept as plain requests, so a regression names itself without a fuzzing run.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from safecity.core.context import Context

CAMERA = {
    "id": "khi-0001",
    "name": "Shahrah-e-Faisal at Nursery",
    "kind": "fixed",
    "district": "South",
    "latitude": 24.86,
    "longitude": 67.07,
    "stream_url": "rtsp://cam/1",
}


def test_a_camera_patch_with_null_for_a_required_field_is_refused(
    client: TestClient, admin: dict[str, str]
) -> None:
    assert client.post("/api/cameras", headers=admin, json=CAMERA).status_code == 201
    for field in ("latitude", "name", "stream_url", "enabled"):
        res = client.patch(f"/api/cameras/{CAMERA['id']}", headers=admin, json={field: None})
        assert res.status_code == 422, (field, res.text)
        assert res.json()["detail"] == f"{field}: may not be null; leave it out to keep its value"
    camera = client.get(f"/api/cameras/{CAMERA['id']}", headers=admin).json()
    assert (camera["latitude"], camera["name"], camera["enabled"]) == (24.86, CAMERA["name"], True)


def test_a_camera_patch_may_clear_its_lists_and_credentials_with_null(
    client: TestClient, admin: dict[str, str]
) -> None:
    assert client.post("/api/cameras", headers=admin, json=CAMERA).status_code == 201
    res = client.patch(
        f"/api/cameras/{CAMERA['id']}",
        headers=admin,
        json={"username": None, "password": None, "zones": None, "analysis": None},
    )
    assert res.status_code == 200, res.text
    assert res.json()["zones"] == []


def test_a_camera_patch_checks_the_stream_url_like_registration(
    client: TestClient, admin: dict[str, str]
) -> None:
    assert client.post("/api/cameras", headers=admin, json=CAMERA).status_code == 201
    res = client.patch(f"/api/cameras/{CAMERA['id']}", headers=admin, json={"stream_url": "gopher://x"})
    assert res.status_code == 422 and "stream URL must be" in res.json()["detail"]


def test_the_published_schema_says_which_patch_fields_take_null(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    camera = schemas["CameraPatch"]["properties"]
    assert camera["latitude"]["type"] == "number" and "anyOf" not in camera["latitude"]
    assert {"type": "null"} in camera["username"]["anyOf"]
    entry = schemas["HotlistEntryPatch"]["properties"]
    assert "anyOf" not in entry["reason"] and {"type": "null"} in entry["reference"]["anyOf"]


def test_a_hotlist_patch_with_null_empties_what_may_be_empty_and_refuses_the_rest(
    client: TestClient, admin: dict[str, str]
) -> None:
    created = client.post(
        "/api/plates/hotlist",
        headers=admin,
        json={"plate": "LEA4521", "list_name": "stolen", "reason": "FIR 12/24", "vehicle": "white Corolla"},
    )
    assert created.status_code == 201, created.text
    entry_id = created.json()["id"]
    cleared = client.patch(
        f"/api/plates/hotlist/{entry_id}",
        headers=admin,
        json={"why": "owner called", "vehicle": None, "reference": None, "expires_at": None},
    )
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["vehicle"], cleared.json()["reference"]) == ("", "")
    refused = client.patch(
        f"/api/plates/hotlist/{entry_id}", headers=admin, json={"why": "fuzz", "reason": None}
    )
    assert refused.status_code == 422
    assert refused.json()["detail"] == "reason: may not be null; leave it out to keep its value"


def test_dispatch_to_an_empty_alert_or_incident_id_is_refused(
    client: TestClient, admin: dict[str, str]
) -> None:
    res = client.post(
        "/api/dispatch", headers=admin, json={"unit_id": "0", "alert_id": "", "incident_id": ""}
    )
    assert res.status_code == 422
    assert "alert_id" in res.json()["detail"] and "incident_id" in res.json()["detail"]


def test_a_recording_moment_in_year_one_is_refused(client: TestClient, admin: dict[str, str]) -> None:
    assert client.post("/api/cameras", headers=admin, json=CAMERA).status_code == 201
    for url in (
        f"/api/recordings/cameras/{CAMERA['id']}/locate?at=0001-01-01T00:02:00Z",
        f"/api/recordings/cameras/{CAMERA['id']}/timeline?start=0001-01-01T00:00:00Z&end=0001-01-02T00:00:00Z",
        f"/api/recordings/cameras/{CAMERA['id']}/play.mp4?at=9999-12-31T23:59:59Z",
        "/api/recordings/search?start=0001-01-01T00:00:00Z&end=2025-01-01T00:00:00Z",
    ):
        res = client.get(url, headers=admin)
        assert res.status_code == 422, (url, res.text)
        assert "is outside the years 1970 to 9000" in res.json()["detail"], url


def test_a_volume_path_the_disk_cannot_hold_is_refused(client: TestClient, admin: dict[str, str]) -> None:
    body = {"name": "archive", "path": "/srv/" + "0" * 300, "budget_bytes": 1, "reserve_bytes": 1 << 30}
    res = client.put("/api/recordings/volumes", headers=admin, json=body)
    assert res.status_code == 422
    assert (
        res.json()["detail"]
        == "path: Value error, a folder name in the path is 300 bytes; a disk allows at most 255"
    )
    assert client.get("/api/recordings/volumes", headers=admin).status_code == 200


def test_a_volume_whose_folder_cannot_be_read_counts_as_missing(
    ctx: Context, client: TestClient, admin: dict[str, str]
) -> None:
    from safecity.recordings.models import RecordingVolume

    with ctx.db.session() as session:  # a row written before paths were checked
        session.add(RecordingVolume(name="old", path="/srv/" + "0" * 300, budget_bytes=None, reserve_bytes=0))
    res = client.get("/api/recordings/volumes", headers=admin)
    assert res.status_code == 200
    assert next(v for v in res.json() if v["name"] == "old")["state"] == "missing"


def test_a_violation_candidate_with_an_unknown_offence_is_refused_at_the_door(
    client: TestClient, admin: dict[str, str]
) -> None:
    candidate = {"camera_id": "khi-0001", "key": "k1", "at": "2025-01-01T10:00:00Z", "offence": ""}
    res = client.post("/api/violations/candidates", headers=admin, json=candidate)
    assert res.status_code == 422 and res.json()["detail"] == "unknown offence ''"


def test_a_fine_schedule_with_periods_beyond_any_calendar_is_refused(
    client: TestClient, admin: dict[str, str]
) -> None:
    rules = client.get("/api/challans/rules", headers=admin).json()
    res = client.put("/api/challans/rules", headers=admin, json={**rules, "licence_flag_days": 2**40})
    assert res.status_code == 422 and "licence_flag_days" in res.json()["detail"]
    assert client.post("/api/challans/flags/sweep", headers=admin).status_code == 200


def test_a_calibration_with_points_too_far_to_compute_is_refused(
    client: TestClient, admin: dict[str, str]
) -> None:
    assert client.post("/api/cameras", headers=admin, json=CAMERA).status_code == 201
    body = {
        "image_points": [[0, 0], [1e308, 0], [1e308, 1e308], [0, 1e308]],
        "ground_points": [[0, 0], [10, 0], [10, 10], [0, 10]],
    }
    res = client.post(f"/api/enforcement/cameras/{CAMERA['id']}/calibrations", headers=admin, json=body)
    assert res.status_code == 422 and "image_points" in res.json()["detail"]


def test_text_with_a_nul_character_is_refused_on_every_database(any_db_url: str) -> None:
    from sqlalchemy import text

    from safecity.core.db import Database
    from safecity.core.errors import InvalidInput

    db = Database(any_db_url)
    try:
        with db.engine.begin() as connection:
            connection.execute(text("CREATE TABLE nul_probe (value VARCHAR(20))"))
        with pytest.raises(InvalidInput, match="holds a NUL character"), db.engine.begin() as connection:
            connection.execute(text("INSERT INTO nul_probe VALUES (:v)"), [{"v": "ok"}, {"v": "bad\x00"}])
        with db.engine.begin() as connection:
            assert connection.execute(text("SELECT count(*) FROM nul_probe")).scalar() == 0
    finally:
        db.engine.dispose()


def test_a_nul_in_a_request_is_a_422_not_a_database_error(client: TestClient, admin: dict[str, str]) -> None:
    res = client.post("/api/cameras", headers=admin, json={**CAMERA, "name": "Gate\x00 1"})
    assert res.status_code == 422
    assert res.json()["detail"] == "a text value holds a NUL character (0x00), which cannot be stored"
    assert client.get("/api/maintenance/cameras?district=%00South", headers=admin).status_code == 422


def test_a_numeric_id_beyond_an_integer_column_is_refused(client: TestClient, admin: dict[str, str]) -> None:
    # PostgreSQL answered "integer out of range" for ids past 2**31 - 1; SQLite, past 2**63 - 1.
    for method, url in (
        ("POST", "/api/faces/notifications/2147483648/ack"),
        ("DELETE", "/api/tokens/91069165371"),
        ("POST", "/api/faces/notifications/9223372036854775808/ack"),
    ):
        res = client.request(method, url, headers=admin)
        assert res.status_code == 422, (url, res.text)
    assert client.get("/api/cameras?offset=9223372036854775808", headers=admin).status_code == 422
