"""Signing in, sessions and tokens, and roles on every route (guessing: test_signin_limits.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from safecity.accounts.models import User
from safecity.core.context import Context
from safecity.core.db import get_by
from tests.accounts.conftest import csrf
from tests.conftest import PASSWORD, auth_headers, make_user


def test_password_is_stored_as_argon2_hash(ctx: Context) -> None:
    name = make_user(ctx, "operator")
    with ctx.db.session() as session:
        user = get_by(session, User, username=name)
        assert user is not None
        assert user.password_hash.startswith("$argon2")
        assert PASSWORD not in user.password_hash


def test_sign_in_sets_a_session_that_opens_the_api(ctx: Context, client: TestClient) -> None:
    name = make_user(ctx, "operator")
    res = client.post("/api/login", json={"username": name, "password": PASSWORD})
    assert res.status_code == 200
    assert "safecity_session" in res.cookies
    assert client.get("/api/me").json()["username"] == name


def test_wrong_password_is_401_with_a_plain_message(ctx: Context, client: TestClient) -> None:
    name = make_user(ctx, "operator")
    res = client.post("/api/login", json={"username": name, "password": "wrong-password"})
    assert res.status_code == 401
    assert res.json()["detail"] == "wrong user name or password"


def test_signed_out_session_no_longer_works(ctx: Context, client: TestClient) -> None:
    name = make_user(ctx, "operator")
    client.post("/api/login", json={"username": name, "password": PASSWORD})
    assert client.post("/api/logout", headers=csrf(client)).status_code == 204
    assert client.get("/api/me").status_code == 401


def test_routes_refuse_roles_without_the_permission(ctx: Context, client: TestClient) -> None:
    auditor = auth_headers(ctx, "auditor")
    res = client.post(
        "/api/users", headers=auditor, json={"username": "x1234", "role": "operator", "password": "p" * 12}
    )
    assert res.status_code == 403
    assert "auditor" in res.json()["detail"]
    assert client.get("/api/audit", headers=auditor).status_code == 200
    operator = auth_headers(ctx, "operator")
    assert client.get("/api/audit", headers=operator).status_code == 403


def test_admin_creates_users_and_duplicates_are_409(client: TestClient, admin: dict[str, str]) -> None:
    body = {"username": "officer.khan", "role": "traffic_officer", "password": "a-long-password"}
    assert client.post("/api/users", headers=admin, json=body).status_code == 201
    res = client.post("/api/users", headers=admin, json=body)
    assert res.status_code == 409
    assert "already exists" in res.json()["detail"]


def test_api_token_authenticates_without_a_cookie(ctx: Context, client: TestClient) -> None:
    headers = auth_headers(ctx, "investigator")
    assert client.get("/api/me", headers=headers).json()["role"] == "investigator"
    assert client.get("/api/me", headers={"Authorization": "Bearer not-a-token"}).status_code == 401


def test_create_admin_command_prints_a_one_time_password(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from safecity.cli import app

    monkeypatch.setenv("SAFECITY_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["users", "create-admin"])
    assert result.exit_code == 0, result.output
    assert "one-time password" in result.output
    again = CliRunner().invoke(app, ["users", "create-admin"])
    assert again.exit_code == 1
    assert "already exists" in again.output
