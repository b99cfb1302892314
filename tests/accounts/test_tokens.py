"""API tokens: named, listed, expiring, revocable; none outlives its limits or the session that minted it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from safecity.accounts import service as accounts
from safecity.accounts.consumer import prune_once
from safecity.accounts.models import AuthToken, LoginClient, LoginDevice
from safecity.core.clock import utcnow
from safecity.core.context import Context
from tests.accounts.conftest import bearer, caller, csrf, login
from tests.conftest import auth_headers, make_user


def _token(ctx: Context, username: str, *, hours: float) -> str:
    with ctx.db.session() as session:
        secret, _ = accounts.issue_token(
            session, accounts.get_by_username(session, username), kind="api", hours=hours
        )
    return secret


def _hours_left(expires_at: str) -> float:
    return (datetime.fromisoformat(expires_at) - utcnow()) / timedelta(hours=1)


def test_tokens_are_named_listed_and_revocable(ctx: Context, client: TestClient) -> None:
    name = make_user(ctx, "investigator")
    parent = _token(ctx, name, hours=100)
    minted = client.post("/api/tokens", headers=bearer(parent), json={"name": "case 2291 export"})
    assert minted.status_code == 201
    child = minted.json()["token"]
    listed = client.get("/api/tokens", headers=bearer(child)).json()
    names = {t["name"]: t for t in listed}
    assert "case 2291 export" in names and names["case 2291 export"]["current"] is True
    assert names["case 2291 export"]["origin"] == "token"
    assert all("token" not in t and "token_hash" not in t for t in listed)  # secrets are never listed

    revoked = client.delete(f"/api/tokens/{names['case 2291 export']['id']}", headers=bearer(parent))
    assert revoked.status_code == 204
    assert client.get("/api/me", headers=bearer(child)).status_code == 401
    assert client.get("/api/me", headers=bearer(parent)).status_code == 200


def test_a_token_minted_from_a_web_session_cannot_outlive_the_cap(ctx: Context, app: Any) -> None:
    name = make_user(ctx, "supervisor")
    browser = caller(app, "10.7.0.1")
    assert login(browser, name).status_code == 200
    minted = browser.post("/api/tokens", headers=csrf(browser), json={"name": "from the browser", "days": 30})
    assert minted.status_code == 201
    assert _hours_left(minted.json()["expires_at"]) <= 24.01  # the session cap, not the 30 days asked for
    ctx.settings.session_token_max_hours = 2
    shorter = browser.post("/api/tokens", headers=csrf(browser), json={"name": "shorter"}).json()
    assert _hours_left(shorter["expires_at"]) <= 2.01
    listed = browser.get("/api/tokens").json()
    assert {t["origin"] for t in listed if t["kind"] == "api"} == {"session"}
    # Tied to the user who minted it: it speaks for them, and ends when they are disabled.
    assert browser.get("/api/me", headers=bearer(minted.json()["token"])).json()["username"] == name


def test_a_token_cannot_mint_one_that_outlives_it(ctx: Context, client: TestClient) -> None:
    name = make_user(ctx, "operator")
    parent = _token(ctx, name, hours=3)
    child = client.post("/api/tokens", headers=bearer(parent), json={"name": "longer?", "days": 20}).json()
    assert _hours_left(child["expires_at"]) <= 3.01


def test_no_token_lives_longer_than_the_longest_lifetime(ctx: Context, client: TestClient) -> None:
    name = make_user(ctx, "operator")
    parent = _token(ctx, name, hours=24 * 365)
    child = client.post("/api/tokens", headers=bearer(parent), json={"name": "a year?", "days": 365}).json()
    assert _hours_left(child["expires_at"]) <= 30 * 24 + 0.01


def test_an_old_token_past_its_lifetime_is_refused(ctx: Context, client: TestClient) -> None:
    name = make_user(ctx, "operator")
    # A token from before the limit: a long life asked for and granted, minted 31 days ago.
    old = _token(ctx, name, hours=24 * 400)
    with ctx.db.session() as session:
        row = session.query(AuthToken).order_by(AuthToken.id.desc()).first()
        assert row is not None
        row.created_at = utcnow() - timedelta(days=31)
    refused = client.get("/api/me", headers=bearer(old))
    assert refused.status_code == 401 and "longest lifetime" in refused.json()["detail"]
    ctx.settings.token_max_days = 60  # a city that allows longer lives with it
    assert client.get("/api/me", headers=bearer(old)).status_code == 200


def test_an_expired_token_is_refused(ctx: Context, client: TestClient) -> None:
    name = make_user(ctx, "operator")
    token = _token(ctx, name, hours=1)
    with ctx.db.session() as session:
        row = session.query(AuthToken).order_by(AuthToken.id.desc()).first()
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
    assert client.get("/api/me", headers=bearer(token)).status_code == 401


def test_tokens_are_private_to_their_user_except_to_admins(ctx: Context, client: TestClient) -> None:
    owner = make_user(ctx, "investigator")
    mine = _token(ctx, owner, hours=5)
    other = auth_headers(ctx, "investigator")
    token_id = client.get("/api/tokens", headers=bearer(mine)).json()[0]["id"]
    assert client.delete(f"/api/tokens/{token_id}", headers=other).status_code == 404
    assert client.get(f"/api/tokens?username={owner}", headers=other).status_code == 403
    admin = auth_headers(ctx, "admin")
    seen = client.get(f"/api/tokens?username={owner}", headers=admin).json()
    assert [t["id"] for t in seen] == [token_id]
    assert client.delete(f"/api/tokens/{token_id}", headers=admin).status_code == 204
    assert client.get("/api/me", headers=bearer(mine)).status_code == 401


def test_revoking_a_session_signs_that_browser_out(ctx: Context, app: Any) -> None:
    name = make_user(ctx, "operator")
    laptop, phone = caller(app, "10.7.1.1"), caller(app, "10.7.1.2")
    login(laptop, name)
    login(phone, name)
    sessions = [t for t in laptop.get("/api/tokens").json() if t["kind"] == "session"]
    assert len(sessions) == 2
    other = next(t for t in sessions if not t["current"])
    assert laptop.delete(f"/api/tokens/{other['id']}", headers=csrf(laptop)).status_code == 204
    assert phone.get("/api/me").status_code == 401
    assert laptop.get("/api/me").status_code == 200


def test_housekeeping_forgets_old_windows_browsers_and_ended_tokens(ctx: Context) -> None:
    name = make_user(ctx, "operator")
    live = _token(ctx, name, hours=5)
    ended = _token(ctx, name, hours=5)
    long_ago = utcnow() - timedelta(days=200)
    with ctx.db.session() as session:
        user = accounts.get_by_username(session, name)
        accounts.revoke_token(session, ended)
        for row in session.query(AuthToken).filter(AuthToken.revoked.is_(True)):
            row.created_at = long_ago
        session.add(LoginClient(address="198.51.100.1", attempts=3, window_start=long_ago))
        session.add(LoginClient(address="198.51.100.2", attempts=1, window_start=utcnow()))
        session.add(
            LoginDevice(user_id=user.id, secret_hash="x" * 64, created_at=long_ago, last_used_at=long_ago)
        )
    assert prune_once(ctx) == 3
    with ctx.db.session() as session:
        assert [c.address for c in session.query(LoginClient)] == ["198.51.100.2"]
        assert session.query(LoginDevice).count() == 0
        assert session.query(AuthToken).count() == 1
        assert accounts.principal_for_token(session, live).username == name
