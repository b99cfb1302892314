"""Helpers of the account tests: callers at chosen addresses, the CSRF header of a browser session."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from safecity.accounts.auth import SESSION_COOKIE
from safecity.core.clock import utcnow
from tests.conftest import PASSWORD


def caller(app: Any, address: str) -> TestClient:
    """Returns a client that reaches `app` from `address` (its own cookies, like another browser)."""
    return TestClient(app, client=(address, 40000))


def csrf(client: TestClient) -> dict[str, str]:
    """Returns the X-CSRF-Token header a page of this client's browser session would send."""
    from safecity.core import security

    session = client.cookies.get(SESSION_COOKIE)
    assert session, "sign in first"
    return {"X-CSRF-Token": security.csrf_token(client.app.state.secret_key, session)}  # type: ignore[attr-defined]


def login(client: TestClient, username: str, password: str = PASSWORD, **extra: Any) -> httpx.Response:
    """Posts the sign-in form's request."""
    return client.post("/api/login", json={"username": username, "password": password, **extra})


def bearer(token: str) -> dict[str, str]:
    """Returns the Authorization header of an API token."""
    return {"Authorization": f"Bearer {token}"}


class Clock:
    """The sign-in limits' clock, moved by hand: an attack that goes on for hours takes no time."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Stops the sign-in limits' clock (it moves only when the test says so)."""
    frozen = Clock()
    monkeypatch.setattr("safecity.accounts.signin.service.utcnow", frozen)
    return frozen
