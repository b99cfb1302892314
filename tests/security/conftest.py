"""Helpers of the perimeter tests: a browser-like signed-in client and the page's CSRF token."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from safecity.core.context import Context
from tests.conftest import PASSWORD, make_user

META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


def sign_in(client: TestClient, ctx: Context, role: str, username: str | None = None) -> str:
    """Signs a new user with `role` in through /api/login (the cookie stays in `client`); returns the name."""
    name = make_user(ctx, role, username)
    response = client.post("/api/login", json={"username": name, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return name


def page_token(client: TestClient, path: str = "/login") -> str:
    """Returns the CSRF token a page hands its scripts (the `<meta name="csrf-token">`)."""
    found = META.search(client.get(path).text)
    assert found is not None, f"{path} carries no csrf-token meta"
    return found.group(1)
