"""The optional TOTP second factor: set up by QR code, asked at sign-in, recovery codes, required."""

from __future__ import annotations

import time
from typing import Any

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import select

from safecity.accounts.models import RecoveryCode, User
from safecity.core.context import Context
from safecity.core.db import get_by
from tests.accounts.conftest import bearer, caller, csrf, login
from tests.conftest import PASSWORD, make_user


def _code(secret: str, steps_ahead: int = 0) -> str:
    """Returns the app's code now (or one step of 30 s later, still accepted: phone clocks drift)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def _enrol(client: TestClient, headers: dict[str, str]) -> tuple[str, list[str]]:
    """Sets up a second factor for the signed-in client; returns the secret and the recovery codes."""
    setup = client.post("/api/account/second-factor/setup", headers=headers)
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    assert setup.json()["uri"].startswith("otpauth://totp/")
    qr = client.get(setup.json()["qr"], headers=headers)
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in qr.content and qr.headers["cache-control"] == "no-store"
    confirmed = client.post(
        "/api/account/second-factor/confirm", headers=headers, json={"code": _code(secret)}
    )
    assert confirmed.status_code == 200, confirmed.text
    return secret, confirmed.json()["codes"]


def test_with_a_second_factor_sign_in_asks_for_the_code(ctx: Context, app: Any) -> None:
    name = make_user(ctx, "investigator")
    browser = caller(app, "10.8.0.1")
    login(browser, name)
    secret, codes = _enrol(browser, csrf(browser))
    assert len(codes) == 10 and len(set(codes)) == 10
    assert browser.get("/api/me").json()["second_factor"] is True

    elsewhere = caller(app, "10.8.0.2")
    asked = login(elsewhere, name)
    assert asked.status_code == 401 and asked.json()["error"] == "second_factor_required"
    wrong = login(elsewhere, name, code="000000" if _code(secret) != "000000" else "111111")
    assert wrong.status_code == 401 and wrong.json()["detail"] == "that code is not right"
    code = _code(secret, steps_ahead=1)  # the enrolment used this step's code; the next one is fresh
    assert login(elsewhere, name, code=code).status_code == 200
    # The same code a second time (seen over a shoulder) does not sign in again.
    assert login(caller(app, "10.8.0.3"), name, code=code).status_code == 401
    # The wrong password with a right code is still a wrong password.
    assert login(caller(app, "10.8.0.4"), name, "not-the-password", code=_code(secret, 1)).status_code == 401


def test_asking_for_the_code_does_not_count_as_a_failure(ctx: Context, app: Any) -> None:
    name = make_user(ctx, "supervisor")
    browser = caller(app, "10.8.1.1")
    login(browser, name)
    _enrol(browser, csrf(browser))
    for i in range(6):
        assert login(caller(app, f"10.8.1.{10 + i}"), name).json()["error"] == "second_factor_required"
    with ctx.db.session() as session:
        user = get_by(session, User, username=name)
        assert user is not None and user.failed_logins == 0


def test_guessing_codes_with_a_stolen_password_is_slowed_down(ctx: Context, app: Any) -> None:
    name = make_user(ctx, "admin")
    browser = caller(app, "10.8.2.1")
    login(browser, name)
    secret, _ = _enrol(browser, csrf(browser))
    right = _code(secret)
    guesses = [f"{n:06d}" for n in range(100) if f"{n:06d}" != right][:6]
    codes = [login(caller(app, f"10.8.2.{10 + i}"), name, code=g).status_code for i, g in enumerate(guesses)]
    assert codes[:3] == [401, 401, 401] and 429 in codes[3:]


def test_a_recovery_code_signs_in_once(ctx: Context, app: Any) -> None:
    name = make_user(ctx, "investigator")
    browser = caller(app, "10.8.3.1")
    login(browser, name)
    _, codes = _enrol(browser, csrf(browser))
    assert login(caller(app, "10.8.3.2"), name, code=codes[0].lower().replace("-", " ")).status_code == 200
    assert login(caller(app, "10.8.3.3"), name, code=codes[0]).status_code == 401
    with ctx.db.session() as session:
        stored = session.scalars(select(RecoveryCode.code_hash)).all()
    assert not any(c.replace("-", "") in h or c in h for c in codes for h in stored)  # only hashes kept


def test_required_second_factor_is_set_up_before_anything_else(ctx: Context, app: Any) -> None:
    ctx.settings.totp_required = True
    name = make_user(ctx, "admin")
    browser = caller(app, "10.8.4.1")
    assert login(browser, name).status_code == 200
    refused = browser.get("/api/users")
    assert refused.status_code == 403 and refused.json()["error"] == "second_factor_setup_required"
    assert browser.get("/api/me").json()["pending"] == "second_factor"
    page = browser.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/account/second-factor"
    assert browser.get("/account/second-factor").status_code == 200
    _enrol(browser, csrf(browser))
    assert browser.get("/api/users").status_code == 200
    # The role that must have it cannot turn it off.
    off = browser.post(
        "/api/account/second-factor/disable", headers=csrf(browser), json={"password": PASSWORD}
    )
    assert off.status_code == 409 and "must use a second factor" in off.json()["detail"]
    # Operators are not asked.
    operator = make_user(ctx, "operator")
    other = caller(app, "10.8.4.2")
    login(other, operator)
    assert other.get("/api/alerts").status_code == 200


def test_turning_the_second_factor_off_needs_the_password(ctx: Context, app: Any) -> None:
    name = make_user(ctx, "operator")
    browser = caller(app, "10.8.5.1")
    login(browser, name)
    _enrol(browser, csrf(browser))
    wrong = browser.post(
        "/api/account/second-factor/disable", headers=csrf(browser), json={"password": "nope"}
    )
    assert wrong.status_code == 403
    right = browser.post(
        "/api/account/second-factor/disable", headers=csrf(browser), json={"password": PASSWORD}
    )
    assert right.status_code == 204
    assert login(caller(app, "10.8.5.2"), name).status_code == 200


def test_new_recovery_codes_replace_the_old_ones(ctx: Context, app: Any) -> None:
    name = make_user(ctx, "operator")
    browser = caller(app, "10.8.6.1")
    login(browser, name)
    _, old = _enrol(browser, csrf(browser))
    res = browser.post(
        "/api/account/second-factor/recovery-codes", headers=csrf(browser), json={"password": PASSWORD}
    )
    new = res.json()["codes"]
    assert res.status_code == 200 and not set(new) & set(old)
    assert login(caller(app, "10.8.6.2"), name, code=old[1]).status_code == 401
    assert login(caller(app, "10.8.6.3"), name, code=new[1]).status_code == 200


def test_an_admin_reset_can_clear_a_lost_second_factor(ctx: Context, app: Any, admin: dict[str, str]) -> None:
    name = make_user(ctx, "investigator")
    browser = caller(app, "10.8.7.1")
    login(browser, name)
    _enrol(browser, csrf(browser))
    reset = caller(app, "10.8.7.9").post(
        f"/api/users/{name}/reset-password?clear_second_factor=true", headers=admin
    )
    one_time = reset.json()["one_time_password"]
    fresh = caller(app, "10.8.7.2")
    assert login(fresh, name, one_time).json()["must_change_password"] is True  # no code asked


def test_the_code_is_only_checked_for_an_enrolment_under_way(ctx: Context, client: TestClient) -> None:
    name = make_user(ctx, "operator")
    token = client.post("/api/login", json={"username": name, "password": PASSWORD}).json()["token"]
    headers = bearer(token)
    nothing = client.post("/api/account/second-factor/confirm", headers=headers, json={"code": "123456"})
    assert nothing.status_code == 422 and "being set up" in nothing.json()["detail"]
    setup = client.post("/api/account/second-factor/setup", headers=headers).json()
    bad = client.post("/api/account/second-factor/confirm", headers=headers, json={"code": "12345x"})
    assert bad.status_code == 422
    assert setup["secret"] and login(caller(client.app, "10.8.8.1"), name).status_code == 200  # not on yet
