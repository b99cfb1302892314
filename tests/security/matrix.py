"""The role matrix: every route of the app called as every role and as a stranger, against the map.

Shared by `test_permission_matrix.py` and `bench/bench_audit.py`. Each call carries no body and
placeholder path values, so an admitted caller gets an answer such as 404 or 422 and nothing changes;
what matters is whether the answer is a refusal (401/403, or a page's redirect to /login) or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from safecity.accounts import service as accounts
from safecity.accounts.api import SESSION_COOKIE
from safecity.accounts.models import Role
from safecity.core.context import Context
from safecity.web.access import Answer, RouteAccess, inventory, page_guards
from safecity.web.pages import NAV
from tests.conftest import make_user

ROLES: list[str | None] = [role.value for role in Role] + [None]
PLACEHOLDER = "999999"


@dataclass
class Difference:
    """A route that answered a role otherwise than the map says."""

    method: str
    path: str
    role: str | None
    expected: Answer
    status: int

    def __str__(self) -> str:
        who = self.role or "anonymous"
        return f"{self.method} {self.path} as {who}: expected {self.expected}, got {self.status}"


@dataclass
class Matrix:
    """What calling every route as every role found."""

    routes: list[RouteAccess]
    cells: int = 0
    differences: list[Difference] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    statuses: dict[tuple[str, str, str | None], int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Returns the figures a report prints."""
        return {
            "routes": len(self.routes),
            "roles": len(ROLES),
            "cells": self.cells,
            "differences": [str(d) for d in self.differences],
            "server_errors": self.errors,
        }


def new_token(ctx: Context, name: str) -> str:
    """Returns a fresh API token of user `name`."""
    with ctx.db.session() as session:
        user = accounts.get_by_username(session, name)
        token, _ = accounts.issue_token(session, user, kind="api", hours=1)
    return token


def _url(route: RouteAccess) -> str:
    path = route.path
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + PLACEHOLDER + path[end + 1 :]
    return path


def answer_of(status: int, location: str) -> Answer:
    """Returns what an answer means: a refusal to a stranger, a refusal to a role, or admitted."""
    if status == 401 or (status in (302, 303, 307) and location.startswith("/login")):
        return "signed_out"
    if status == 403:
        return "forbidden"
    return "allowed"


def call(client: TestClient, route: RouteAccess, token: str | None) -> tuple[int, str]:
    """Calls one route once; GETs carry the token as cookie too (pages read only the cookie)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client.cookies.clear()
    if token and route.method == "GET":
        client.cookies.set(SESSION_COOKIE, token)
    response = client.request(route.method, _url(route), headers=headers, follow_redirects=False)
    client.cookies.clear()
    return response.status_code, response.headers.get("location", "")


def run(ctx: Context, app: FastAPI, client: TestClient, *, only: str = "") -> Matrix:
    """Calls every route (under `only`) as every role and as a stranger; returns where it breaks the map."""
    routes = [r for r in inventory(app, page_guards(NAV)) if r.path.startswith(only)]
    users = {role: make_user(ctx, role) for role in ROLES if role is not None}
    tokens: dict[str | None, str | None] = {role: new_token(ctx, name) for role, name in users.items()}
    tokens[None] = None
    matrix = Matrix(routes)
    for route in routes:
        anonymous = None
        for role in ROLES:
            token = tokens[role]
            if route.path == "/api/logout" and role is not None:
                token = new_token(ctx, users[role])  # signing out revokes the token it is called with
            status, location = call(client, route, token)
            matrix.cells += 1
            matrix.statuses[(route.method, route.path, role)] = status
            if status >= 500:
                matrix.errors.append(f"{route.method} {route.path} as {role or 'anonymous'}: {status}")
            if role is None:
                anonymous = status
            expected = route.expected(role)
            got = answer_of(status, location)
            if expected == "as_anonymous":
                continue  # judged once the stranger's answer is known, below
            if got != expected:
                matrix.differences.append(Difference(route.method, route.path, role, expected, status))
        if route.access == "own_credential":
            for role in ROLES[:-1]:
                status = matrix.statuses[(route.method, route.path, role)]
                if answer_of(status, "") != answer_of(anonymous or 0, ""):
                    difference = Difference(route.method, route.path, role, "as_anonymous", status)
                    matrix.differences.append(difference)
    return matrix
