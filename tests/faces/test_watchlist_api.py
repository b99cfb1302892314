"""The watch list over HTTP: who may request, approve, remove and search; bad requests; the page.

The face pipeline is replaced by the stand-in encoder here (see test_watchlist_governance); requests
with real photos and the real pipeline are in test_watchlist_photos.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from test_watchlist_governance import person_photo, stand_in_encoder

from safecity.accounts.models import Role
from safecity.audit import service as audit
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.faces import service
from tests.conftest import PASSWORD, auth_headers, make_user


@pytest.fixture(autouse=True)
def stand_in_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "pipeline_encoder", lambda: stand_in_encoder)
    monkeypatch.setattr(service, "live_encoder", lambda: stand_in_encoder)
    monkeypatch.setattr(service, "default_threshold", lambda settings: 0.9)


def form(**overrides: str) -> dict[str, str]:
    fields = {
        "name": "Kamran Sheikh",
        "category": "wanted",
        "legal_basis": "FIR 455/2024 PS Clifton",
        "expires_at": (utcnow() + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M"),
    }
    fields.update(overrides)
    return fields


def photos(*shades: int) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [
        ("photos", (f"p{i}.jpg", person_photo(shade, noise=i), "image/jpeg"))
        for i, shade in enumerate(shades)
    ]


def test_request_then_approval_by_another_officer(ctx: Context, client: TestClient) -> None:
    maker = auth_headers(ctx, Role.investigator, "inspector.ali")
    checker = auth_headers(ctx, Role.supervisor, "supervisor.sana")
    created = client.post("/api/faces/entries", data=form(), files=photos(120, 120), headers=maker)
    assert created.status_code == 201, created.text
    entry = created.json()
    assert (entry["status"], entry["active"], entry["requested_by"]) == ("pending", False, "inspector.ali")
    assert len(entry["photos"]) == 2 and entry["photos"][0]["media_ref"].startswith("sha256:")
    assert client.post(f"/api/faces/entries/{entry['id']}/approve", headers=maker).status_code == 403
    approved = client.post(f"/api/faces/entries/{entry['id']}/approve", headers=checker)
    assert approved.status_code == 200 and approved.json()["active"] is True
    assert approved.json()["approved_by"] == "supervisor.sana"
    listed = client.get("/api/faces/entries?status=approved", headers=checker).json()
    assert [e["id"] for e in listed] == [entry["id"]]


def test_admin_holding_both_rights_still_cannot_approve_their_own_request(
    ctx: Context, client: TestClient
) -> None:
    admin = auth_headers(ctx, Role.admin, "admin.one")
    entry = client.post("/api/faces/entries", data=form(), files=photos(120), headers=admin).json()
    refused = client.post(f"/api/faces/entries/{entry['id']}/approve", headers=admin)
    assert refused.status_code == 403
    assert "maker-checker" in refused.json()["detail"] and "another officer" in refused.json()["hint"]
    assert client.get(f"/api/faces/entries/{entry['id']}", headers=admin).json()["status"] == "pending"


@pytest.mark.parametrize(
    ("fields", "files", "message"),
    [
        ({}, photos(120, 0), "photo 2: no face found"),
        ({"category": "suspect"}, photos(120), "unknown category"),
        ({"legal_basis": ""}, photos(120), "legal_basis"),
        ({"expires_at": "next week"}, photos(120), "expires_at"),
        ({"category": "event"}, photos(120), "event's cameras"),
        ({}, [("photos", ("x.jpg", b"GIF89a....", "image/gif"))], "not a readable image"),
    ],
)
def test_bad_request_gets_a_clear_422_and_stores_nothing(
    ctx: Context, client: TestClient, fields: dict[str, str], files: list, message: str
) -> None:
    maker = auth_headers(ctx, Role.investigator)
    response = client.post("/api/faces/entries", data=form(**fields), files=files, headers=maker)
    assert response.status_code == 422
    assert message in response.json()["detail"]
    admin = auth_headers(ctx, Role.admin)
    assert client.get("/api/faces/entries", headers=admin).json() == []


def test_who_may_do_what(ctx: Context, client: TestClient) -> None:
    operator = auth_headers(ctx, Role.operator)
    investigator = auth_headers(ctx, Role.investigator)
    supervisor = auth_headers(ctx, Role.supervisor)
    assert (
        client.post("/api/faces/entries", data=form(), files=photos(120), headers=operator).status_code == 403
    )
    assert (
        client.post("/api/faces/entries", data=form(), files=photos(120), headers=supervisor).status_code
        == 403
    )
    entry = client.post("/api/faces/entries", data=form(), files=photos(120), headers=investigator).json()
    other_investigator = auth_headers(ctx, Role.investigator)
    assert (
        client.post(f"/api/faces/entries/{entry['id']}/approve", headers=other_investigator).status_code
        == 403
    )
    refused = client.post(
        f"/api/faces/entries/{entry['id']}/refuse", json={"reason": "no warrant attached"}, headers=supervisor
    )
    assert refused.status_code == 200 and refused.json()["status"] == "refused"
    assert client.post(f"/api/faces/entries/{entry['id']}/approve", headers=supervisor).status_code == 409
    assert client.get("/api/faces/entries/nope", headers=supervisor).status_code == 404


def test_removal_needs_a_reason_and_is_audited(ctx: Context, client: TestClient) -> None:
    maker = auth_headers(ctx, Role.investigator, "inspector.ali")
    checker = auth_headers(ctx, Role.supervisor, "supervisor.sana")
    entry = client.post("/api/faces/entries", data=form(), files=photos(120), headers=maker).json()
    client.post(f"/api/faces/entries/{entry['id']}/approve", headers=checker)
    assert (
        client.post(f"/api/faces/entries/{entry['id']}/remove", json={}, headers=checker).status_code == 422
    )
    removed = client.post(
        f"/api/faces/entries/{entry['id']}/remove", json={"reason": "arrested"}, headers=checker
    )
    assert (
        removed.status_code == 200 and removed.json()["status"] == "removed" and not removed.json()["active"]
    )
    with ctx.db.session() as session:
        actions = [(e.action, e.actor) for e in audit.entries(session, action="faces.")]
    assert ("faces.remove", "supervisor.sana") in actions
    assert ("faces.approve", "supervisor.sana") in actions
    assert ("faces.request", "inspector.ali") in actions


def test_search_by_photo_needs_the_investigator_role_and_a_reason(ctx: Context, client: TestClient) -> None:
    maker = auth_headers(ctx, Role.investigator, "inspector.ali")
    checker = auth_headers(ctx, Role.supervisor)
    entry = client.post("/api/faces/entries", data=form(), files=photos(120), headers=maker).json()
    client.post(f"/api/faces/entries/{entry['id']}/approve", headers=checker)
    probe = {"photo": ("probe.jpg", person_photo(121), "image/jpeg")}
    assert (
        client.post("/api/faces/search", data={"reason": "x"}, files=probe, headers=checker).status_code
        == 403
    )
    no_reason = client.post("/api/faces/search", data={"reason": " "}, files=probe, headers=maker)
    assert no_reason.status_code == 422
    found = client.post(
        "/api/faces/search",
        data={"reason": "still from a robbery", "case_reference": "FIR 9/2025"},
        files=probe,
        headers=maker,
    )
    assert found.status_code == 200
    (candidate,) = found.json()
    assert candidate["entry_id"] == entry["id"] and candidate["match"] and candidate["similarity"] > 0.99
    with ctx.db.session() as session:
        (logged,) = audit.entries(session, action="faces.search")
        assert logged.actor == "inspector.ali" and logged.detail["case_reference"] == "FIR 9/2025"


def test_footage_search_needs_a_case_reference(ctx: Context, client: TestClient) -> None:
    investigator = auth_headers(ctx, Role.investigator)
    probe = {"photo": ("probe.jpg", person_photo(121), "image/jpeg")}
    missing = client.post(
        "/api/faces/footage-search", data={"reason": "robbery"}, files=probe, headers=investigator
    )
    assert missing.status_code == 422 and "case_reference" in missing.json()["detail"]
    short = client.post(
        "/api/faces/footage-search",
        data={"reason": "robbery", "case_reference": "x"},
        files=probe,
        headers=investigator,
    )
    assert short.status_code == 422 and "case reference" in short.json()["detail"]


def test_watchlists_page_serves_signed_in_roles_and_turns_others_away(
    ctx: Context, client: TestClient
) -> None:
    assert client.get("/watchlists", follow_redirects=False).headers["location"] == "/login"
    make_user(ctx, Role.supervisor, "supervisor.page")
    client.post("/api/login", json={"username": "supervisor.page", "password": PASSWORD})
    page = client.get("/watchlists")
    assert page.status_code == 200
    assert 'data-can-approve="yes"' in page.text and 'data-can-request="no"' in page.text
    assert "/static/faces.js" in page.text and "http://" not in page.text and "https://" not in page.text
    assert client.get("/static/faces.js").status_code == 200
    client.cookies.clear()
    make_user(ctx, Role.auditor, "auditor.page")
    client.post("/api/login", json={"username": "auditor.page", "password": PASSWORD})
    assert client.get("/watchlists").status_code == 403
