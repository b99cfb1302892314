"""The server: health, metrics, OpenAPI, and live events pushed over the WebSocket."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from safecity.audit import service as audit
from safecity.core.context import Context
from safecity.core.events import CameraHealth, PlateRead
from safecity.core.metrics import EVENTS
from safecity.evidence import service as media_owners
from tests.conftest import PASSWORD, make_user


def test_healthz_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/cameras" in paths and "/api/alerts" in paths


def test_live_socket_pushes_events_as_they_happen(
    ctx: Context, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = make_user(ctx, "supervisor")  # plate reads go to those who may search plates
    client.post("/api/login", json={"username": name, "password": PASSWORD})
    before = EVENTS.labels("plate_read")._value.get()
    with client.websocket_connect("/ws/live") as ws:
        client.portal.call(
            ctx.bus.publish, PlateRead(key="r1", camera_id="cam-1", plate="BKR123", confidence=0.9)
        )  # type: ignore[union-attr]
        message = ws.receive_json()
    assert message["type"] == "plate_read"
    assert message["plate"] == "BKR123"
    monkeypatch.setattr(ctx.settings, "metrics_token", "scrape-token")
    metrics = client.get("/metrics", headers={"Authorization": "Bearer scrape-token"}).text
    assert f'safecity_events_total{{type="plate_read"}} {before + 1}' in metrics


def test_live_hub_follows_the_bus_only_while_a_browser_is_connected(ctx: Context, client: TestClient) -> None:
    assert ctx.live is not None and not ctx.live.following  # nobody watching: no event is decoded for it
    name = make_user(ctx, "supervisor")
    client.post("/api/login", json={"username": name, "password": PASSWORD})
    with client.websocket_connect("/ws/live") as ws:
        assert ctx.live.following
        client.portal.call(
            ctx.bus.publish, PlateRead(key="r2", camera_id="cam-1", plate="LEA4521", confidence=0.9)
        )  # type: ignore[union-attr]
        assert ws.receive_json()["plate"] == "LEA4521"
    deadline = time.monotonic() + 5
    while ctx.live.following and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not ctx.live.following


def test_live_socket_refuses_strangers(client: TestClient) -> None:
    try:
        with client.websocket_connect("/ws/live") as ws:
            ws.receive_json()
    except WebSocketDisconnect as exc:
        assert exc.code == 4401
    else:  # pragma: no cover
        raise AssertionError("an anonymous socket was accepted")


def test_pages_redirect_strangers_to_sign_in(client: TestClient) -> None:
    res = client.get("/", follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/login"
    assert "Sign in" in client.get("/login").text


def test_viewing_a_crop_is_audited_and_strangers_get_none(ctx: Context, client: TestClient) -> None:
    ref = ctx.media.put(b"\xff\xd8fake-jpeg", "jpg")
    with ctx.db.session() as session:
        media_owners.own(session, "alert", "alert-1", [ref])  # the crop an alert shows its handlers
    assert client.get(f"/media/{ref}").status_code == 401
    name = make_user(ctx, "operator")
    client.post("/api/login", json={"username": name, "password": PASSWORD})
    res = client.get(f"/media/{ref}")
    assert res.status_code == 200 and res.content == b"\xff\xd8fake-jpeg"
    with ctx.db.session() as session:
        views = audit.entries(session, action="media.view")
        assert [(v.actor, v.target) for v in views] == [(name, ref)]


def test_live_pages_never_get_watch_list_embeddings_and_auditors_get_no_face_matches(
    ctx: Context, client: TestClient
) -> None:
    from safecity.core.events import FaceMatch
    from safecity.faces.replication import WatchlistChanged

    fields = WatchlistChanged.model_fields
    assert "embeddings" in fields  # the reason it must stay machine-to-machine
    auditor = make_user(ctx, "auditor")
    client.post("/api/login", json={"username": auditor, "password": PASSWORD})
    with client.websocket_connect("/ws/live") as ws:
        assert ctx.live is not None and client.portal is not None
        push = ctx.live.push  # on the server's loop, as the bus delivers
        client.portal.call(push, {"type": "watchlist_changed", "embeddings": [[0.1, 0.2]]})
        client.portal.call(
            push, FaceMatch(key="m1", camera_id="c1", entry_id="e1", similarity=0.95).envelope()
        )
        client.portal.call(
            push, PlateRead(key="r9", camera_id="c1", plate="BKR294", confidence=0.9).envelope()
        )
        client.portal.call(push, CameraHealth(key="h9", camera_id="c1", state="covered").envelope())
        message = ws.receive_json()
    assert message["type"] == "camera_health"  # no embeddings, no face match, no plate read before it
