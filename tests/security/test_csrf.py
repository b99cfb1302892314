"""CSRF: a page of another origin cannot change anything in a signed-in user's name.

The attack of issue 16: a page served from another port of the same host (same site, so even
SameSite=Strict cookies go along) made a supervisor's browser approve a pending watch-list entry and
import a CSV onto the stolen list. Here the same requests, from the attacker's side, are refused
before they are read; the pages themselves (token in their meta tag) and API clients with a bearer
token still work.
"""

from __future__ import annotations

from datetime import timedelta

import cv2
import numpy as np
import numpy.typing as npt
from fastapi.testclient import TestClient

from safecity.anpr import service as anpr
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.faces import service as faces
from tests.conftest import auth_headers
from tests.security.conftest import page_token, sign_in

ATTACKER = "http://127.0.0.1:9999"  # another port of the same host: another origin, the same site
STOLEN_CSV = b"plate,list,reason\nLEA4521,stolen,planted by a forged request\n"


def _encoder(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    vector = np.ones(128, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def pending_entry(ctx: Context) -> str:
    """Returns the id of a watch-list entry an investigator requested and nobody approved yet."""
    ok, jpeg = cv2.imencode(".jpg", np.full((120, 100, 3), 120, dtype=np.uint8))
    assert ok
    with ctx.db.session() as session:
        entry = faces.enroll(
            session,
            ctx.media,
            name="Suspect One",
            category="wanted",
            legal_basis="FIR 123/2024 PS Saddar",
            requested_by="inspector.ali",
            photos=[jpeg.tobytes()],
            expires_at=utcnow() + timedelta(days=30),
            encoder=_encoder,
        )
        return entry.id


def entry_status(ctx: Context, entry_id: str) -> str:
    with ctx.db.session() as session:
        return str(faces.get_entry(session, entry_id).status)


def hot_plates(ctx: Context) -> list[str]:
    with ctx.db.session() as session:
        return [entry.plate for entry in anpr.list_hotlist(session)]


def test_another_origin_cannot_approve_a_watch_list_entry(ctx: Context, client: TestClient) -> None:
    entry_id = pending_entry(ctx)
    sign_in(client, ctx, "supervisor")
    forged = client.post(f"/api/faces/entries/{entry_id}/approve", headers={"Origin": ATTACKER})
    assert forged.status_code == 403
    assert forged.json()["error"] == "cross_origin" and ATTACKER in forged.json()["detail"]
    # Without an Origin header (an older browser, a stripped header) the missing token still refuses it.
    tokenless = client.post(f"/api/faces/entries/{entry_id}/approve")
    assert tokenless.status_code == 403 and tokenless.json()["error"] == "csrf_failed"
    assert entry_status(ctx, entry_id) == "pending"
    # The supervisor's own page (same origin, its token) approves it.
    token = page_token(client, "/watchlists")
    approved = client.post(
        f"/api/faces/entries/{entry_id}/approve",
        headers={"X-CSRF-Token": token, "Origin": str(client.base_url)},
    )
    assert approved.status_code == 200, approved.text
    assert entry_status(ctx, entry_id) == "approved"


def test_another_origin_cannot_import_a_csv_onto_the_stolen_list(ctx: Context, client: TestClient) -> None:
    sign_in(client, ctx, "supervisor")
    files = {"file": ("list.csv", STOLEN_CSV, "text/csv")}
    for headers in ({"Origin": ATTACKER}, {"Sec-Fetch-Site": "same-site"}, {"Origin": "null"}, {}):
        forged = client.post("/api/plates/hotlist/import", files=files, headers=headers)
        assert forged.status_code == 403, (headers, forged.text)
    assert hot_plates(ctx) == []
    token = page_token(client, "/plates")
    mine = client.post("/api/plates/hotlist/import", files=files, headers={"X-CSRF-Token": token})
    assert mine.status_code == 200, mine.text
    assert hot_plates(ctx) == ["LEA4521"]


def test_every_method_with_the_cookie_needs_the_token(ctx: Context, client: TestClient) -> None:
    sign_in(client, ctx, "supervisor")
    created = client.post(
        "/api/plates/hotlist", json={"plate": "BKR8090", "list_name": "bolo", "reason": "FIR 2"}
    )
    assert created.status_code == 403 and created.json()["error"] == "csrf_failed"
    token = page_token(client, "/plates")
    created = client.post(
        "/api/plates/hotlist",
        json={"plate": "BKR8090", "list_name": "bolo", "reason": "FIR 2"},
        headers={"X-CSRF-Token": token},
    )
    assert created.status_code == 201, created.text
    entry_id = created.json()["id"]
    for method in ("PATCH", "DELETE"):
        refused = client.request(method, f"/api/plates/hotlist/{entry_id}?why=test", json={"reason": "x"})
        assert refused.status_code == 403, method
    assert hot_plates(ctx) == ["BKR8090"]
    # Signing out is a change too: another origin cannot end a session either.
    assert client.post("/api/logout", headers={"Origin": ATTACKER}).status_code == 403
    assert client.get("/api/me").status_code == 200


def test_a_token_of_another_sign_in_is_refused(ctx: Context, client: TestClient) -> None:
    sign_in(client, ctx, "supervisor")
    stale = page_token(client, "/plates")
    sign_in(client, ctx, "supervisor")  # a new session: the token of the last one is worth nothing
    refused = client.post(
        "/api/plates/hotlist",
        json={"plate": "BKR8090", "list_name": "bolo", "reason": "FIR 2"},
        headers={"X-CSRF-Token": stale},
    )
    assert refused.status_code == 403 and "reload the page" in refused.json()["hint"]
    assert page_token(client, "/plates") != stale


def test_bearer_token_clients_need_no_csrf_token(ctx: Context, client: TestClient) -> None:
    headers = auth_headers(ctx, "supervisor")
    created = client.post(
        "/api/plates/hotlist",
        json={"plate": "BKR8090", "list_name": "bolo", "reason": "FIR 2"},
        headers=headers,
    )
    assert created.status_code == 201, created.text


def test_sign_in_from_another_origin_is_refused(ctx: Context, client: TestClient) -> None:
    from tests.conftest import PASSWORD, make_user

    name = make_user(ctx, "operator")
    forged = client.post(
        "/api/login", json={"username": name, "password": PASSWORD}, headers={"Origin": ATTACKER}
    )
    assert forged.status_code == 403 and "safecity_session" not in forged.cookies
    # The sign-in page itself, and scripts without a browser's Origin, sign in.
    assert (
        client.post(
            "/api/login",
            json={"username": name, "password": PASSWORD},
            headers={"Origin": str(client.base_url)},
        ).status_code
        == 200
    )


def test_the_citizens_portal_refuses_another_origin_but_serves_its_own_page(client: TestClient) -> None:
    body = {"plate": "LEA4521", "cnic": "42101-1234567-1"}
    assert client.post("/api/portal/lookup", json=body, headers={"Origin": ATTACKER}).status_code == 403
    page = page_token(client, "/portal")
    assert page == ""  # nobody signed in: the portal needs no token, only its own origin
    own = client.post("/api/portal/lookup", json=body, headers={"Origin": str(client.base_url)})
    assert own.status_code == 200, own.text
