"""The pages without a browser: who may open which page, what the navigation offers, no internet links."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from safecity.accounts import service as accounts
from safecity.accounts.models import UserIn
from safecity.core.context import Context
from safecity.web import pages

PASSWORD = "correct-horse-battery"
WEB = Path(pages.__file__).resolve().parent


def _signed_in(ctx: Context, client: TestClient, role: str) -> None:
    name = f"{role}-pages"
    with ctx.db.session() as session:
        accounts.create_user(session, UserIn(username=name, role=role, password=PASSWORD), actor="test")
    assert client.post("/api/login", json={"username": name, "password": PASSWORD}).status_code == 200


def test_signed_out_visitors_are_sent_to_the_sign_in_page(client: TestClient) -> None:
    for path in ("/", "/dispatch", "/wall", "/dashboard", "/audit"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/login", path
    assert client.get("/login").status_code == 200


def test_each_role_sees_the_pages_it_may_use_and_is_refused_the_others(
    ctx: Context, client: TestClient
) -> None:
    _signed_in(ctx, client, "operator")
    home = client.get("/")
    assert home.status_code == 200
    nav = re.findall(r'<a href="(/[a-z]*)" data-perm', home.text)
    assert nav == [
        "/",
        "/dispatch",
        "/wall",
        "/cameras",
        "/dashboard",
        "/recordings",
        "/maintenance",
        "/portal",
    ]
    refused = client.get("/audit")
    assert refused.status_code == 403 and "audit:read" in refused.text
    me = client.get("/api/ui/me").json()
    assert (
        me["role"] == "operator"
        and "dispatch:act" in me["permissions"]
        and "audit:read" not in me["permissions"]
    )


def test_an_auditor_reads_the_audit_page_but_not_the_dispatch_controls(
    ctx: Context, client: TestClient
) -> None:
    _signed_in(ctx, client, "auditor")
    assert client.get("/audit").status_code == 200
    assert client.get("/dispatch").status_code == 200  # the board is readable (map:read)…
    assert (
        client.post("/api/dispatch", json={"unit_id": "PU-1", "alert_id": "x"}).status_code == 403
    )  # …not usable


def test_pages_and_scripts_load_nothing_from_the_internet() -> None:
    for path in [*WEB.joinpath("templates").glob("*.html"), *WEB.joinpath("static").glob("*.*")]:
        if path.name.startswith(
            (
                "app",
                "lib",
                "nav",
                "login",
                "dispatch",
                "wall",
                "dashboard",
                "audit",
                "index",
                "base",
                "forbidden",
            )
        ):
            text = path.read_text()
            assert not re.search(
                r"""(src|href)=["']https?://|url\(["']?https?://|import .* from ["']https?://""", text
            ), path
