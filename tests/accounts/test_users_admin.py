"""Managing users: one-time passwords changed first, disabling that takes effect at once, resets, the CLI."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from safecity.accounts import service as accounts
from safecity.accounts.models import AuthToken
from safecity.cli import app as cli
from safecity.core.context import Context
from safecity.core.db import get_by
from safecity.settings import Settings
from tests.accounts.conftest import bearer, caller, csrf, login
from tests.conftest import PASSWORD, auth_headers, make_user

NEW_PASSWORD = "a-better-passphrase-1"


def _create(client: TestClient, admin: dict[str, str], username: str, role: str = "operator") -> str:
    res = client.post("/api/users", headers=admin, json={"username": username, "role": role})
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["must_change_password"] is True
    return str(body["one_time_password"])


def test_a_one_time_password_must_be_changed_before_anything_else(
    client: TestClient, admin: dict[str, str]
) -> None:
    one_time = _create(client, admin, "officer.raza")
    signed = login(client, "officer.raza", one_time)
    assert signed.status_code == 200 and signed.json()["must_change_password"] is True
    refused = client.get("/api/alerts")
    assert refused.status_code == 403
    assert refused.json()["error"] == "password_change_required"
    assert refused.json()["detail"] == "change your password first"
    assert client.get("/api/me").json()["pending"] == "password"
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/account/password"
    assert client.get("/account/password").status_code == 200
    # A token minted now would carry the same restriction; the API refuses to mint one at all.
    assert client.post("/api/tokens", headers=csrf(client), json={"name": "x"}).status_code == 403

    wrong = client.post(
        "/api/account/password",
        headers=csrf(client),
        json={"current_password": "not-it-at-all", "new_password": NEW_PASSWORD},
    )
    assert wrong.status_code == 403
    changed = client.post(
        "/api/account/password",
        headers=csrf(client),
        json={"current_password": one_time, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 204
    assert client.get("/api/alerts").status_code == 200  # the same session goes on
    assert client.get("/api/me").json()["pending"] is None
    assert login(caller(client.app, "10.0.0.2"), "officer.raza", one_time).status_code == 401
    assert login(caller(client.app, "10.0.0.3"), "officer.raza", NEW_PASSWORD).status_code == 200


def test_changing_a_password_ends_the_other_browser_sessions(ctx: Context, app: Any) -> None:
    name = make_user(ctx, "operator")
    here, there = caller(app, "10.0.1.1"), caller(app, "10.0.1.2")
    assert login(here, name).status_code == 200 and login(there, name).status_code == 200
    res = here.post(
        "/api/account/password",
        headers=csrf(here),
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert res.status_code == 204
    assert here.get("/api/me").status_code == 200
    assert there.get("/api/me").status_code == 401


def test_a_new_password_must_differ_and_be_long_enough(ctx: Context, app: Any) -> None:
    name = make_user(ctx, "operator")
    client = caller(app, "10.0.2.1")
    login(client, name)
    same = client.post(
        "/api/account/password",
        headers=csrf(client),
        json={"current_password": PASSWORD, "new_password": PASSWORD},
    )
    assert same.status_code == 422 and "the one you have" in same.json()["detail"]
    short = client.post(
        "/api/account/password",
        headers=csrf(client),
        json={"current_password": PASSWORD, "new_password": "short"},
    )
    assert short.status_code == 422


def test_disabling_a_user_stops_their_token_and_session_at_once(
    ctx: Context, app: Any, admin: dict[str, str]
) -> None:
    name = make_user(ctx, "investigator")
    browser = caller(app, "10.0.3.1")
    assert login(browser, name).status_code == 200
    with ctx.db.session() as session:
        token, _ = accounts.issue_token(session, accounts.get_by_username(session, name), kind="api", hours=5)
    assert browser.get("/api/me").status_code == 200
    assert browser.get("/api/me", headers=bearer(token)).status_code == 200

    admin_client = caller(app, "10.0.3.9")
    res = admin_client.post(f"/api/users/{name}/disable", headers=admin)
    assert res.status_code == 200 and res.json()["active"] is False
    assert browser.get("/api/me").status_code == 401
    assert browser.get("/api/me", headers=bearer(token)).status_code == 401
    assert browser.get("/", follow_redirects=False).headers["location"] == "/login"
    assert login(caller(app, "10.0.3.2"), name).status_code == 401

    assert admin_client.post(f"/api/users/{name}/enable", headers=admin).json()["active"] is True
    assert login(caller(app, "10.0.3.3"), name).status_code == 200
    assert browser.get("/api/me", headers=bearer(token)).status_code == 401  # ended stays ended


def test_disabling_a_user_closes_their_live_socket(
    ctx: Context, client: TestClient, admin: dict[str, str]
) -> None:
    name = make_user(ctx, "operator")
    assert login(client, name).status_code == 200
    ticket = client.post("/api/live/ticket", headers=csrf(client)).json()["ticket"]
    with client.websocket_connect(f"/ws/live?ticket={ticket}") as socket:
        other = caller(client.app, "10.0.4.9")
        assert other.post(f"/api/users/{name}/disable", headers=admin).status_code == 200
        with pytest.raises(Exception) as closed:
            socket.receive_text()
    assert getattr(closed.value, "code", None) == 4401


def test_the_last_active_admin_cannot_be_disabled(ctx: Context, client: TestClient) -> None:
    only = make_user(ctx, "admin")
    headers = auth_headers(ctx, "admin")
    second = client.get("/api/me", headers=headers).json()["username"]
    assert client.post(f"/api/users/{only}/disable", headers=headers).status_code == 200
    res = client.post(f"/api/users/{second}/disable", headers=headers)
    assert res.status_code == 409 and "last active admin" in res.json()["detail"]


def test_a_reset_gives_a_one_time_password_and_ends_every_session(
    ctx: Context, app: Any, admin: dict[str, str]
) -> None:
    name = make_user(ctx, "supervisor")
    browser = caller(app, "10.0.5.1")
    assert login(browser, name).status_code == 200
    res = caller(app, "10.0.5.9").post(f"/api/users/{name}/reset-password", headers=admin)
    assert res.status_code == 200
    one_time = res.json()["one_time_password"]
    assert browser.get("/api/me").status_code == 401
    assert login(caller(app, "10.0.5.2"), name).status_code == 401  # the old password is gone
    fresh = caller(app, "10.0.5.3")
    assert login(fresh, name, one_time).json()["must_change_password"] is True
    assert fresh.get("/api/alerts").json()["error"] == "password_change_required"


def test_only_admins_manage_users(ctx: Context, client: TestClient) -> None:
    supervisor = auth_headers(ctx, "supervisor")
    target = make_user(ctx, "operator")
    for path in (
        f"/api/users/{target}/disable",
        f"/api/users/{target}/enable",
        f"/api/users/{target}/reset-password",
    ):
        assert client.post(path, headers=supervisor).status_code == 403, path
    assert client.get("/api/users", headers=supervisor).status_code == 403
    assert client.get("/users", headers=supervisor, follow_redirects=False).status_code in (303, 403)


def test_an_admin_may_give_a_password_and_choose_whether_it_must_be_changed(
    client: TestClient, admin: dict[str, str]
) -> None:
    body = {"username": "device.signal7", "role": "device", "password": "a-long-device-password"}
    res = client.post("/api/users", headers=admin, json={**body, "must_change_password": False})
    assert res.status_code == 201 and res.json()["one_time_password"] is None
    assert res.json()["must_change_password"] is False
    assert (
        login(caller(client.app, "10.0.6.1"), "device.signal7", body["password"]).json()[
            "must_change_password"
        ]
        is False
    )


def test_users_command_creates_disables_enables_resets_and_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(tmp_path))
    run = CliRunner().invoke
    created = run(cli, ["users", "create", "officer.ali", "--role", "traffic_officer"])
    assert created.exit_code == 0, created.output
    assert "one-time password" in created.output
    given = run(
        cli, ["users", "create", "device.cam3", "--role", "device", "--password", "a-long-device-password"]
    )
    assert given.exit_code == 0 and "one-time" not in given.output
    assert run(cli, ["users", "disable", "officer.ali"]).exit_code == 0
    listed = run(cli, ["users", "list"])
    assert "officer.ali" in listed.output and "traffic_officer" in listed.output
    assert run(cli, ["users", "enable", "officer.ali"]).exit_code == 0
    reset = run(cli, ["users", "reset-password", "officer.ali"])
    assert reset.exit_code == 0 and "one-time password" in reset.output
    missing = run(cli, ["users", "disable", "nobody.here"])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    token = run(cli, ["users", "token", "device.cam3", "--name", "signal controller 3", "--days", "90"])
    assert token.exit_code == 0, token.output
    secret = token.output.strip().splitlines()[-1]
    context = Context.create(Settings(data_dir=tmp_path))
    try:
        with context.db.session() as session:
            row = get_by(session, AuthToken, name="signal controller 3")
            assert row is not None and row.origin == "cli"
            # Capped at the longest lifetime, not the 90 days asked for.
            assert abs(row.expires_at - row.created_at - timedelta(days=30)) < timedelta(minutes=1)
            assert accounts.principal_for_token(session, secret).username == "device.cam3"
    finally:
        context.db.dispose()


def test_create_admin_one_time_password_forces_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(tmp_path))
    out = CliRunner().invoke(cli, ["users", "create-admin"])
    assert out.exit_code == 0
    context = Context.create(Settings(data_dir=tmp_path))
    try:
        with context.db.session() as session:
            assert accounts.get_by_username(session, "admin").must_change_password is True
    finally:
        context.db.dispose()
