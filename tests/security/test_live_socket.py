"""The live socket: a one-use ticket to open it, each message only to roles that may see it, and an end
when the session ends, the user is disabled or the role changes.

Issue 16 found /ws/live sending every plate read to roles that may not search plates, accepting any
Origin, streaming on after sign-out, and taking a session token in its URL (into the access log).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from starlette.websockets import WebSocketDisconnect

from safecity.accounts import service as accounts
from safecity.accounts.models import AuthToken, Role, User
from safecity.accounts.permissions import PERMISSIONS
from safecity.core import security
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import (
    EVENT_TYPES,
    AlertChanged,
    AnalyticsEvent,
    CameraHealth,
    Event,
    FaceMatch,
    PlateRead,
    ViolationCandidate,
)
from safecity.domains import domain_modules
from safecity.web.live import LIVE_PERMISSIONS, NEVER_SENT, LiveHub
from tests.conftest import auth_headers
from tests.security.conftest import page_token, sign_in

ATTACKER = "http://127.0.0.1:9999"


@pytest.fixture
def app(ctx: Context):  # type: ignore[no-untyped-def]
    """The app with a hub that re-checks sessions every 0.2 s (30 s in service)."""
    from safecity.server import create_app

    ctx.live = LiveHub(recheck_s=0.2)
    return create_app(ctx)


def ticket(client: TestClient, **headers: str) -> str:
    response = client.post("/api/live/ticket", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["ticket"])


def signed_in_ticket(client: TestClient, ctx: Context, role: str) -> str:
    sign_in(client, ctx, role)
    return ticket(client, **{"X-CSRF-Token": page_token(client)})


def refused(client: TestClient, url: str, **headers: str) -> int:
    """Returns the close code a socket at `url` is refused with."""
    with pytest.raises(WebSocketDisconnect) as caught, client.websocket_connect(url, headers=headers) as ws:
        ws.receive_json()
    return caught.value.code


def closed_with(ws: Any, within_s: float = 5.0) -> int:
    """Returns the close code the server ends `ws` with (failing if it keeps it open past `within_s`)."""

    def until_closed() -> int:
        while True:
            message = ws.receive()
            if message["type"] == "websocket.close":
                return int(message["code"])

    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(until_closed).result(timeout=within_s)
    except FutureTimeout:
        raise AssertionError(f"the socket stayed open for {within_s} s") from None
    finally:
        pool.shutdown(wait=False)


def every_event() -> list[Event]:
    """One event of every type the centre publishes (the domains' own types included)."""
    for part in ("models", "service", "api", "consumer"):
        list(domain_modules(part))  # every domain registers its event types on import
    from safecity.dispatch.service import UnitChanged
    from safecity.enforcement.calibrations.models import CalibrationChanged
    from safecity.enforcement.models import SignalPhaseChanged, ViolationApproved
    from safecity.faces.replication import WatchlistChanged

    return [
        PlateRead(key="r1", camera_id="c1", plate="LEA4521", confidence=0.9),
        FaceMatch(key="m1", camera_id="c1", entry_id="e1", similarity=0.95),
        AnalyticsEvent(key="a1", camera_id="c1", kind="loitering"),
        CameraHealth(key="h1", camera_id="c1", state="covered"),
        ViolationCandidate(key="v1", camera_id="c1", offence="red_light", plate="LEA4521"),
        AlertChanged(key="al1", alert_id="A1", kind="hotlist", priority=1, status="new", title="Stolen"),
        ViolationApproved(key="va1", violation_id="V1", offence="red_light", plate="LEA4521"),
        SignalPhaseChanged(key="s1", junction="J1", phase="red"),
        UnitChanged(key="u1", unit_id="U1", callsign="Alpha-1", status="available"),
        WatchlistChanged(key="w1", entry_id="e1", action="add", entry_version=1, embeddings=[[0.1]]),
        CalibrationChanged(
            key="c1",
            camera_id="c1",
            calibration_id=1,
            image_points=[[0, 0], [1, 0], [1, 1], [0, 1]],
            ground_points=[[0, 0], [1, 0], [1, 1], [0, 1]],
            valid_from=utcnow(),
            valid_until=utcnow(),
        ),
    ]


def test_every_event_type_is_classified_for_the_live_pages() -> None:
    events = every_event()
    assert {e.type for e in events} == set(EVENT_TYPES), "a new event type needs a line in LIVE_PERMISSIONS"
    for kind in EVENT_TYPES:
        assert kind in LIVE_PERMISSIONS or kind in NEVER_SENT, kind
    # Unknown types are never sent: the hub decides by allow-list.
    hub = LiveHub()
    hub.push({"type": "something_new", "secret": 1})
    assert hub.sent == 0


@pytest.mark.parametrize("role", [r for r in Role if "alerts:read" in PERMISSIONS[r]])
def test_each_role_gets_only_the_messages_its_permissions_allow(
    ctx: Context, client: TestClient, role: Role
) -> None:
    events = every_event()
    expected = [
        e.type for e in events if e.type in LIVE_PERMISSIONS and LIVE_PERMISSIONS[e.type] in PERMISSIONS[role]
    ]
    with client.websocket_connect(f"/ws/live?ticket={signed_in_ticket(client, ctx, role)}") as ws:
        assert ctx.live is not None and client.portal is not None
        # Straight into the hub's bus handler: the domains' consumers need not chew on made-up events.
        for event in events:
            client.portal.call(ctx.live.on_event, event)
        sentinel = AlertChanged(key="end", alert_id="END", kind="x", priority=5, status="new", title="end")
        client.portal.call(ctx.live.on_event, sentinel)
        received = []
        while True:
            message = ws.receive_json()
            if message.get("alert_id") == "END":
                break
            received.append(message["type"])
    assert received == expected
    if "plates:search" not in PERMISSIONS[role]:
        assert "plate_read" not in received
    assert "watchlist_changed" not in received


def test_operators_and_auditors_get_no_plate_reads(ctx: Context, client: TestClient) -> None:
    for role in ("operator", "auditor"):
        with client.websocket_connect(f"/ws/live?ticket={signed_in_ticket(client, ctx, role)}") as ws:
            assert client.portal is not None
            client.portal.call(ctx.bus.publish, PlateRead(key=f"p-{role}", plate="LEA4521", confidence=0.9))
            client.portal.call(
                ctx.bus.publish, CameraHealth(key=f"h-{role}", camera_id="c1", state="covered")
            )
            assert ws.receive_json()["type"] == "camera_health"
        client.cookies.clear()


def test_a_ticket_opens_one_socket_once(ctx: Context, client: TestClient) -> None:
    once = signed_in_ticket(client, ctx, "supervisor")
    client.cookies.clear()  # the ticket alone opens the socket: no cookie, no token in the URL
    with client.websocket_connect(f"/ws/live?ticket={once}") as ws:
        assert client.portal is not None
        client.portal.call(ctx.bus.publish, PlateRead(key="t1", plate="LEA4521", confidence=0.9))
        assert ws.receive_json()["plate"] == "LEA4521"
    assert refused(client, f"/ws/live?ticket={once}") == 4401


def test_forged_expired_and_token_urls_are_refused(ctx: Context, client: TestClient, app: Any) -> None:
    good = signed_in_ticket(client, ctx, "supervisor")
    body, mac = good.split(".")
    assert refused(client, f"/ws/live?ticket={body}.{mac[::-1]}") == 4401
    expired = security.sign(app.state.secret_key, "live", {"u": "x", "k": 1, "n": "n1"}, ttl_s=-1)
    assert refused(client, f"/ws/live?ticket={expired}") == 4401
    other_key = security.sign(b"k" * 48, "live", {"u": "x", "k": 1, "n": "n2"}, ttl_s=30)
    assert refused(client, f"/ws/live?ticket={other_key}") == 4401
    # A session token in a URL is refused outright (it would land in every access log on the way).
    session = client.cookies.get("safecity_session")
    assert refused(client, f"/ws/live?token={session}") == 4400


def test_another_origin_cannot_open_the_socket(ctx: Context, client: TestClient) -> None:
    good = signed_in_ticket(client, ctx, "supervisor")
    assert refused(client, "/ws/live", Origin=ATTACKER) == 4403  # the cookie path
    assert refused(client, f"/ws/live?ticket={good}", Origin=ATTACKER) == 4403
    # Another origin cannot get a ticket either: the ticket is a POST and needs the page's token.
    assert client.post("/api/live/ticket", headers={"Origin": ATTACKER}).status_code == 403
    assert client.post("/api/live/ticket").status_code == 403


def test_api_clients_get_a_ticket_with_their_bearer_token(ctx: Context, client: TestClient) -> None:
    headers = auth_headers(ctx, "operator")
    one = client.post("/api/live/ticket", headers=headers).json()["ticket"]
    with client.websocket_connect(f"/ws/live?ticket={one}") as ws:
        assert client.portal is not None
        client.portal.call(ctx.bus.publish, CameraHealth(key="h9", camera_id="c1", state="covered"))
        assert ws.receive_json()["type"] == "camera_health"
    assert client.post("/api/live/ticket", headers=auth_headers(ctx, "device")).status_code == 403


def test_signing_out_closes_the_socket_at_once(ctx: Context, client: TestClient) -> None:
    sign_in(client, ctx, "supervisor")
    token = page_token(client)
    assert ctx.live is not None
    ctx.live.recheck_s = 3600  # not the periodic check: sign-out itself closes it
    with client.websocket_connect(f"/ws/live?ticket={ticket(client, **{'X-CSRF-Token': token})}") as ws:
        assert client.post("/api/logout", headers={"X-CSRF-Token": token}).status_code == 204
        assert closed_with(ws) == 4401


def test_signing_out_elsewhere_closes_the_socket_at_the_next_check(ctx: Context, client: TestClient) -> None:
    sign_in(client, ctx, "supervisor")
    token = page_token(client)
    with client.websocket_connect(f"/ws/live?ticket={ticket(client, **{'X-CSRF-Token': token})}") as ws:
        # Another serve revoked the session: this one's hub only learns it by checking.
        with ctx.db.session() as session:
            accounts.revoke_token(session, client.cookies["safecity_session"])
        assert closed_with(ws) == 4401


def test_disabling_a_user_closes_the_socket_at_once(ctx: Context, client: TestClient) -> None:
    name = sign_in(client, ctx, "operator")
    token = page_token(client)
    assert ctx.live is not None
    ctx.live.recheck_s = 3600  # only close_for can end it this fast
    with client.websocket_connect(f"/ws/live?ticket={ticket(client, **{'X-CSRF-Token': token})}") as ws:
        assert ctx.live.close_for(name, "disabled by an admin") == 1
        assert closed_with(ws) == 4401


def test_an_admin_disabling_the_user_closes_their_socket_at_once(ctx: Context, client: TestClient) -> None:
    name = sign_in(client, ctx, "operator")
    token = page_token(client)
    assert ctx.live is not None
    ctx.live.recheck_s = 3600
    with client.websocket_connect(f"/ws/live?ticket={ticket(client, **{'X-CSRF-Token': token})}") as ws:
        disabled = client.post(f"/api/users/{name}/disable", headers=auth_headers(ctx, "admin"))
        assert disabled.status_code == 200, disabled.text
        assert closed_with(ws) == 4401


def test_a_disabled_user_or_a_changed_role_ends_the_socket_at_the_next_check(
    ctx: Context, client: TestClient
) -> None:
    name = sign_in(client, ctx, "supervisor")
    token = page_token(client)
    with client.websocket_connect(f"/ws/live?ticket={ticket(client, **{'X-CSRF-Token': token})}") as ws:
        with ctx.db.session() as session:
            session.execute(update(User).where(User.username == name).values(role=Role.auditor.value))
        assert closed_with(ws) == 4403
    with ctx.db.session() as session:
        session.execute(update(User).where(User.username == name).values(role=Role.supervisor.value))
    with client.websocket_connect(f"/ws/live?ticket={ticket(client, **{'X-CSRF-Token': token})}") as ws:
        with ctx.db.session() as session:
            session.execute(update(User).where(User.username == name).values(active=False))
        assert closed_with(ws) == 4401


def test_an_expired_session_ends_the_socket(ctx: Context, client: TestClient) -> None:
    sign_in(client, ctx, "supervisor")
    token = page_token(client)
    with client.websocket_connect(f"/ws/live?ticket={ticket(client, **{'X-CSRF-Token': token})}") as ws:
        with ctx.db.session() as session:
            session.execute(update(AuthToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        assert closed_with(ws) == 4401


def test_tickets_and_tokens_never_reach_the_access_log() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
        ("10.0.0.5:5000", "GET", "/ws/live?ticket=abc.def&x=1", "1.1", 101), None,
    )  # fmt: skip
    security.RedactSecretsInAccessLog().filter(record)
    assert "abc.def" not in record.getMessage() and "x=1" in record.getMessage()
    portal = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
        ("10.0.0.5:5000", "GET", "/api/portal/challans/C1/notice?t=secret-portal-token", "1.1", 200), None,
    )  # fmt: skip
    security.RedactSecretsInAccessLog().filter(portal)
    assert "secret-portal-token" not in portal.getMessage()
