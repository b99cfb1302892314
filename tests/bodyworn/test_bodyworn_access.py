"""Who may open a body-worn item: roles, access classes, and never through /media/{ref}, held or not."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from safecity.bodyworn import custody
from safecity.bodyworn import service as items
from safecity.core.context import Context
from tests.bodyworn.bodyworn_support import ingest_one
from tests.conftest import auth_headers

API = "/api/bodyworn/items"


def test_restricted_and_confidential_items_open_only_for_those_allowed_and_refusals_are_recorded(
    ctx: Context, client: TestClient, tmp_path: Path
) -> None:
    item_id = ingest_one(ctx, tmp_path / "d").item_id
    supervisor = auth_headers(ctx, "supervisor", "insp.rana")
    admin = auth_headers(ctx, "admin", "admin.one")
    investigator = auth_headers(ctx, "investigator", "si.khan")
    operator = auth_headers(ctx, "operator")
    assert client.get(f"{API}/{item_id}", headers=operator).status_code == 403  # no bodycam:read at all
    assert client.get(f"{API}/{item_id}", headers=admin).status_code == 200

    restricted = client.post(
        f"{API}/{item_id}/classify",
        json={"access_class": "restricted", "reason": "a minor is visible"},
        headers=supervisor,
    )
    assert restricted.status_code == 200
    assert client.get(f"{API}/{item_id}", headers=admin).status_code == 403
    assert client.get(f"{API}/{item_id}/video", headers=admin).status_code == 403
    assert client.get(f"{API}/{item_id}", headers=investigator).status_code == 200
    assert item_id not in [i["id"] for i in client.get(API, headers=admin).json()]

    missing_names = client.post(
        f"{API}/{item_id}/classify",
        json={"access_class": "confidential", "reason": "internal inquiry"},
        headers=supervisor,
    )
    assert missing_names.status_code == 422
    confidential = client.post(
        f"{API}/{item_id}/classify",
        json={"access_class": "confidential", "allowed_users": ["insp.rana"], "reason": "internal inquiry"},
        headers=supervisor,
    )
    assert confidential.status_code == 200
    assert client.get(f"{API}/{item_id}", headers=investigator).status_code == 403
    assert client.get(f"{API}/{item_id}", headers=supervisor).status_code == 200
    with ctx.db.session() as session:
        refused = [e for e in custody.entries_of(session, item_id or "") if e.action == "refused"]
    assert [(e.actor, e.detail["wanted"]) for e in refused] == [
        ("admin.one", "view"),
        ("admin.one", ""),
        ("si.khan", "view"),
    ]


def test_a_body_worn_original_is_never_served_by_media_even_under_a_hold(
    ctx: Context, client: TestClient, tmp_path: Path
) -> None:
    item_id = ingest_one(ctx, tmp_path / "d").item_id or ""
    with ctx.db.session() as session:
        ref = items.get(session, item_id).ref
        items.hold(session, item_id, reference="Court order 7/2026", reason="preserve it", actor="si.khan")
    for role in ("investigator", "admin", "supervisor"):
        answer = client.get(f"/media/{ref}", headers=auth_headers(ctx, role))
        assert answer.status_code == 403, role
        assert f"/evidence/items/{item_id}" in answer.json()["hint"]


def test_each_role_sees_the_pages_its_permissions_open(
    ctx: Context, client: TestClient, tmp_path: Path
) -> None:
    item_id = ingest_one(ctx, tmp_path / "d").item_id
    for role, list_page, item_page in [
        ("investigator", 200, 200),
        ("traffic_officer", 200, 403),
        ("operator", 403, 403),
        ("device", 200, 403),
        ("auditor", 403, 403),
    ]:
        token = auth_headers(ctx, role)["Authorization"].removeprefix("Bearer ")
        client.cookies.set("safecity_session", token)
        assert client.get("/evidence").status_code == list_page, role
        assert client.get(f"/evidence/items/{item_id}").status_code == item_page, role
        client.cookies.clear()
