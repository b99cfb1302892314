"""The account pages in headless Chromium, under the strict CSP: one-time passwords, users, TOTP, tokens."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest

from safecity.accounts import service as accounts
from safecity.accounts.models import Role, UserIn
from safecity.core.context import Context
from tests.browser import LiveServer, sign_in
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.browser

NEW_PASSWORD = "my-own-passphrase-42"


@pytest.fixture
def csp_violations(page: Any) -> Iterator[list[str]]:
    """Collects what the browser refused under the Content-Security-Policy (the test asserts none)."""
    refused: list[str] = []
    page.on(
        "console", lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None
    )
    yield refused


def _sign_in_form(tab: Any, url: str, username: str, password: str) -> None:
    tab.goto(url + "/login")
    tab.fill("#username", username)
    tab.fill("#password", password)
    tab.click("#sign-in")


def _change_password(tab: Any, current: str) -> None:
    tab.fill("#current-password", current)
    tab.fill("#new-password", NEW_PASSWORD)
    tab.fill("#repeat-password", NEW_PASSWORD)
    tab.click("#change-password")


def test_the_demo_admin_changes_the_one_time_password_before_anything_else(
    ctx: Context, live_server: LiveServer, page: Any, csp_violations: list[str]
) -> None:
    one_time = accounts.generate_password()
    with ctx.db.session() as session:  # as `make demo` and `safecity users create-admin` do
        accounts.create_user(
            session,
            UserIn(username="admin", role=Role.admin, password=one_time),
            actor="demo",
            must_change_password=True,
        )
    url, tab = live_server.url, page
    _sign_in_form(tab, url, "admin", one_time)
    tab.wait_for_url(re.compile(r".*/account/password$"))
    tab.goto(url + "/dashboard")
    assert tab.url.endswith("/account/password")  # every page leads here until it is done
    tab.fill("#current-password", one_time)
    tab.fill("#new-password", NEW_PASSWORD)
    tab.fill("#repeat-password", "something-else-entirely")
    tab.click("#change-password")
    assert "differ" in tab.locator("#password-message").inner_text()
    _change_password(tab, one_time)
    tab.wait_for_url(re.compile(r".*/$"))
    tab.goto(url + "/users")
    tab.locator('#users tr[data-username="admin"]').wait_for()
    assert not csp_violations


def test_an_admin_creates_disables_and_resets_a_user_on_the_users_page(
    ctx: Context, live_server: LiveServer, page: Any, chromium: Any, csp_violations: list[str]
) -> None:
    url, tab = live_server.url, page
    admin = make_user(ctx, Role.admin)
    sign_in(tab, url, admin)
    tab.goto(url + "/users")
    tab.wait_for_function("() => document.body.dataset.ready === 'yes'")
    tab.fill("#new-username", "officer.bano")
    tab.fill("#new-full-name", "Bano Qureshi")
    tab.select_option("#new-role", "traffic_officer")
    tab.click("#create-user")
    tab.locator("#one-time:not([hidden])").wait_for()
    one_time = tab.locator("#one-time-password").inner_text().strip()
    row = tab.locator('#users tr[data-username="officer.bano"]')
    row.wait_for()
    assert "must change password" in row.inner_text()

    officer_context = chromium.new_context()
    officer = officer_context.new_page()
    try:
        _sign_in_form(officer, url, "officer.bano", one_time)
        officer.wait_for_url(re.compile(r".*/account/password$"))
        _change_password(officer, one_time)
        officer.wait_for_url(re.compile(r".*/$"))

        row.locator("button.disable").click()
        tab.locator('#users tr.disabled[data-username="officer.bano"]').wait_for()
        # The officer's open page loses its live socket at once and goes to sign-in; so does any page.
        officer.wait_for_url(re.compile(r".*/login$"), timeout=10_000)
        officer.goto(url + "/")
        officer.wait_for_url(re.compile(r".*/login$"))

        row.locator("button.enable").click()
        tab.locator('#users tr[data-username="officer.bano"] button.disable').wait_for()
        row.locator("button.reset").click()
        tab.wait_for_function(
            "() => document.querySelector('#one-time-user').textContent === 'officer.bano'"
            " && document.querySelector('#one-time-password').textContent.length > 10"
            f" && document.querySelector('#one-time-password').textContent !== '{one_time}'"
        )
    finally:
        officer_context.close()
    assert not csp_violations


def test_an_operator_sets_up_a_second_factor_mints_a_token_and_signs_in_with_a_code(
    ctx: Context, live_server: LiveServer, page: Any, csp_violations: list[str]
) -> None:
    url, tab = live_server.url, page
    name = make_user(ctx, Role.operator)
    sign_in(tab, url, name)
    tab.click("#whoami")
    tab.wait_for_url(re.compile(r".*/account$"))
    tab.wait_for_function("() => document.body.dataset.ready === 'yes'")

    tab.click("#sf-start")
    tab.locator("#sf-enrol:not([hidden])").wait_for()
    tab.wait_for_function("() => document.querySelector('#sf-qr').naturalWidth > 0")  # the QR code drew
    secret = tab.locator("#sf-secret").inner_text().strip()
    tab.fill("#sf-code", pyotp.TOTP(secret).now())
    tab.click("#sf-turn-on")
    tab.locator("#sf-codes:not([hidden])").wait_for()
    assert tab.locator("#sf-code-list li").count() == 10

    tab.fill("#token-name", "night-shift report")
    tab.click("#mint-token")
    tab.locator("#token-secret-box:not([hidden])").wait_for()
    assert len(tab.locator("#token-secret").inner_text().strip()) > 30
    minted = tab.locator("#tokens tr", has_text="night-shift report")
    minted.wait_for()
    minted.locator("button.revoke").click()
    minted.wait_for(state="detached")

    tab.click("#logout")
    tab.wait_for_url(re.compile(r".*/login$"))
    _sign_in_form(tab, url, name, PASSWORD)
    tab.locator("#code-row:not([hidden])").wait_for()
    assert "authenticator" in tab.locator("#login-error").inner_text()
    # The enrolment spent this 30-second step's code; the next step's is accepted too.
    tab.fill("#code", pyotp.TOTP(secret).at(time.time() + 30))
    tab.click("#sign-in")
    tab.wait_for_url(re.compile(r".*/$"))
    assert not csp_violations
