"""The ANPR API and page: investigators search plate histories (audited); supervisors keep the hot lists."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from safecity.anpr import service
from safecity.audit import service as audit
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import PlateRead
from tests.conftest import auth_headers

NOW = utcnow()


def seed_reads(ctx: Context) -> None:
    with ctx.db.session() as session:
        for camera_id, lat, lon in (("cam-a", 24.81, 67.03), ("cam-b", 24.86, 67.00)):
            cameras.create(
                session,
                CameraIn(
                    id=camera_id,
                    name=f"Camera {camera_id}",
                    kind="anpr",
                    district="South",
                    latitude=lat,
                    longitude=lon,
                ),
                actor="test",
            )
        # The reads take their position from the camera, as the worker's reads do.
        for minutes, plate, camera_id in (
            (50, "LEA4521", "cam-a"),
            (40, "LEA4521", "cam-b"),
            (30, "LEB4599", "cam-a"),
            (20, "KHI4521", "cam-b"),
            (10, "ABC123", "cam-a"),
            (60, "KHZ901", "cam-b"),
        ):
            service.store_read(
                session,
                PlateRead(
                    key=f"{plate}:{minutes}",
                    plate=plate,
                    confidence=0.9,
                    camera_id=camera_id,
                    at=NOW - timedelta(minutes=minutes),
                ),
            )


def search(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get("/api/plates/reads", params={"reason": "case 17/24", **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_investigator_searches_exact_partial_and_wildcard(client: TestClient, ctx: Context) -> None:
    seed_reads(ctx)
    headers = auth_headers(ctx, "investigator")
    exact = search(client, headers, plate="lea-4521")
    assert [r["camera_id"] for r in exact["reads"]] == ["cam-b", "cam-a"]  # newest first
    assert exact["match"] == "exact"
    assert [c["camera_id"] for c in exact["cameras"]] == ["cam-a", "cam-b"]  # map, in order first seen
    assert exact["cameras"][0]["name"] == "Camera cam-a" and exact["cameras"][0]["latitude"] == 24.81
    assert {r["plate"] for r in search(client, headers, plate="4521", match="partial")["reads"]} == {
        "LEA4521",
        "KHI4521",
    }
    assert {r["plate"] for r in search(client, headers, plate="LE?45*")["reads"]} == {"LEA4521", "LEB4599"}
    assert {r["plate"] for r in search(client, headers, plate="*4521")["reads"]} == {"LEA4521", "KHI4521"}
    assert [r["plate"] for r in search(client, headers, plate="KHZ*")["reads"]] == ["KHZ901"]
    assert [r["plate"] for r in search(client, headers, plate="KH?9*")["reads"]] == ["KHZ901"]


def test_search_by_camera_and_time_range(client: TestClient, ctx: Context) -> None:
    seed_reads(ctx)
    headers = auth_headers(ctx, "investigator")
    found = search(client, headers, camera_id="cam-a", since=(NOW - timedelta(minutes=35)).isoformat())
    assert [r["plate"] for r in found["reads"]] == ["ABC123", "LEB4599"]
    limited = search(client, headers, camera_id="cam-a", limit=1)
    assert limited["truncated"] is True and len(limited["reads"]) == 1


def test_every_search_is_audited_with_who_what_and_why(client: TestClient, ctx: Context) -> None:
    seed_reads(ctx)
    headers = auth_headers(ctx, "investigator", username="insp.raza")
    search(client, headers, plate="LEA4521")
    with ctx.db.session() as session:
        [entry] = audit.entries(session, action="anpr.search")
    assert (entry.actor, entry.target) == ("insp.raza", "LEA4521")
    assert entry.detail["reason"] == "case 17/24" and entry.detail["results"] == 2


def test_bad_searches_get_a_clear_422(client: TestClient, ctx: Context) -> None:
    headers = auth_headers(ctx, "investigator")
    cases = [
        {"plate": "LEA4521"},  # no reason
        {"plate": "LEA;DROP", "reason": "case 1"},
        {"reason": "case 1"},  # neither plate nor camera
        {"plate": "LE*", "match": "exact", "reason": "case 1"},
        {"plate": "LEA", "match": "fuzzy", "reason": "case 1"},
        {
            "plate": "LEA",
            "reason": "case 1",
            "since": NOW.isoformat(),
            "until": (NOW - timedelta(1)).isoformat(),
        },
        {"plate": "LEA", "reason": "case 1", "limit": "0"},
        {"plate": "LEA", "reason": "case 1", "since": "yesterday"},
    ]
    for params in cases:
        response = client.get("/api/plates/reads", params=params, headers=headers)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"] == "invalid_input"
    with ctx.db.session() as session:
        assert audit.entries(session, action="anpr.search") == []


def test_roles_without_plate_search_cannot_search(client: TestClient, ctx: Context) -> None:
    response = client.get(
        "/api/plates/reads",
        params={"plate": "LEA4521", "reason": "curious"},
        headers=auth_headers(ctx, "operator"),
    )
    assert response.status_code == 403
    assert client.get("/api/plates/reads", params={"plate": "LEA4521", "reason": "x y z"}).status_code == 401


def test_supervisor_adds_edits_and_removes_hotlist_entries_with_who_and_why(
    client: TestClient, ctx: Context
) -> None:
    headers = auth_headers(ctx, "supervisor", username="sup.ali")
    body = {"plate": "lea 4521", "list_name": "stolen", "reason": "FIR 12/24", "vehicle": "white Corolla"}
    created = client.post("/api/plates/hotlist", json=body, headers=headers)
    assert created.status_code == 201, created.text
    entry = created.json()
    assert (entry["plate"], entry["added_by"]) == ("LEA4521", "sup.ali")
    assert client.post("/api/plates/hotlist", json=body, headers=headers).status_code == 409
    changed = client.patch(
        f"/api/plates/hotlist/{entry['id']}",
        json={"why": "armed suspect", "list_name": "wanted"},
        headers=headers,
    )
    assert changed.status_code == 200 and changed.json()["list_name"] == "wanted"
    matches = client.get("/api/plates/hotlist/check", params={"plate": "LEA452I"}, headers=headers).json()
    assert [(m["entry"]["id"], m["kind"]) for m in matches] == [(entry["id"], "confusion")]
    assert client.delete(f"/api/plates/hotlist/{entry['id']}", headers=headers).status_code == 422  # no why
    gone = client.delete(f"/api/plates/hotlist/{entry['id']}", params={"why": "recovered"}, headers=headers)
    assert gone.status_code == 204
    assert client.get("/api/plates/hotlist", headers=headers).json() == []
    with ctx.db.session() as session:
        actions = [e.action for e in audit.entries(session, actor="sup.ali")]
    assert actions[:5] == [
        "anpr.hotlist_list",
        "anpr.hotlist_remove",
        "anpr.hotlist_check",
        "anpr.hotlist_update",
        "anpr.hotlist_add",
    ]


def test_bad_hotlist_input_gets_a_4xx(client: TestClient, ctx: Context) -> None:
    headers = auth_headers(ctx, "supervisor")
    for body in (
        {"plate": "L", "list_name": "stolen", "reason": "FIR 1"},
        {"plate": "LEA4521", "list_name": "lost", "reason": "FIR 1"},
        {"plate": "LEA4521", "list_name": "stolen"},
        {"plate": "LEA4521", "list_name": "stolen", "reason": "FIR 1", "colour": "red"},
    ):
        assert client.post("/api/plates/hotlist", json=body, headers=headers).status_code == 422, body
    assert client.patch("/api/plates/hotlist/nope", json={"why": "fix"}, headers=headers).status_code == 404
    assert (
        client.post(
            "/api/plates/hotlist", json={"plate": "LEA4521"}, headers=auth_headers(ctx, "operator")
        ).status_code
        == 403
    )


def test_csv_import_over_http_is_all_or_nothing(client: TestClient, ctx: Context) -> None:
    headers = auth_headers(ctx, "supervisor")
    bad = "plate,list,reason\nLEA4521,stolen,FIR 1\nBKR8090,lost,FIR 2\n"
    response = client.post("/api/plates/hotlist/import", files={"file": ("list.csv", bad)}, headers=headers)
    assert response.status_code == 422 and "line 3" in response.json()["detail"]
    assert client.get("/api/plates/hotlist", headers=headers).json() == []
    good = "plate,list,reason\nLEA4521,stolen,FIR 1\nBKR8090,bolo,FIR 2\n"
    response = client.post("/api/plates/hotlist/import", files={"file": ("list.csv", good)}, headers=headers)
    assert response.json() == {"created": 2, "updated": 0, "errors": []}
    binary = client.post(
        "/api/plates/hotlist/import", files={"file": ("x.csv", b"\xff\xfe\x00")}, headers=headers
    )
    assert binary.status_code == 422
    summary = client.get("/api/plates/hotlist/summary", headers=headers).json()
    assert summary == {"stolen": 1, "bolo": 1}


def test_sensitive_areas_are_defined_by_supervisors_with_known_cameras(
    client: TestClient, ctx: Context
) -> None:
    seed_reads(ctx)
    headers = auth_headers(ctx, "supervisor")
    body = {"name": "Red Zone", "camera_ids": ["cam-a"], "exit_camera_ids": ["cam-b"], "plates": ["vip-001"]}
    created = client.post("/api/plates/areas", json=body, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["plates"] == ["VIP001"]
    unknown = client.post(
        "/api/plates/areas", json={**body, "name": "Other", "camera_ids": ["cam-x"]}, headers=headers
    )
    assert unknown.status_code == 422 and "cam-x" in unknown.json()["detail"]
    assert client.post("/api/plates/areas", json=body, headers=headers).status_code == 409
    assert [a["name"] for a in client.get("/api/plates/areas", headers=headers).json()] == ["Red Zone"]
    visits = client.get("/api/plates/visits", headers=auth_headers(ctx, "investigator"))
    assert visits.status_code == 200 and visits.json() == []


def test_only_admins_change_the_anpr_settings(
    client: TestClient, ctx: Context, admin: dict[str, str]
) -> None:
    supervisor = auth_headers(ctx, "supervisor")
    assert client.get("/api/plates/config", headers=supervisor).json()["clone_max_speed_kmh"] == 150
    body = {"clone_max_speed_kmh": 120, "edit_distance": True}
    assert client.put("/api/plates/config", json=body, headers=supervisor).status_code == 403
    assert client.put("/api/plates/config", json=body, headers=admin).status_code == 200
    assert client.put("/api/plates/config", json={"max_confusions": 9}, headers=admin).status_code == 422
    with ctx.db.session() as session:
        config = service.get_config(session)
    assert (config.clone_max_speed_kmh, config.edit_distance, config.max_confusions) == (120, True, 1)


def test_the_plates_page_is_served_to_signed_in_users_with_the_right_role(
    client: TestClient, ctx: Context
) -> None:
    page = client.get("/plates", headers=auth_headers(ctx, "investigator"))
    assert page.status_code == 200
    assert 'id="plate-search"' in page.text and "/static/anpr.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert client.get("/plates", headers=auth_headers(ctx, "operator")).status_code == 403
    assert client.get("/static/anpr.js").status_code == 200
