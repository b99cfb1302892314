"""Pages a person meets off the beaten track: API docs without internet, styled 403 and 404, a favicon."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from safecity.accounts.models import Role
from safecity.core.context import Context
from tests.conftest import auth_headers

HTML = {"Accept": "text/html,application/xhtml+xml"}


def test_the_api_docs_load_everything_from_the_app_itself(client: TestClient) -> None:
    for path, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        page = client.get(path)
        assert page.status_code == 200
        # Nothing the page loads comes from outside (a command centre may have no internet).
        loaded = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: *'([^']+)'", page.text)
        assert loaded and all(url.startswith("/") for url in loaded), loaded
        assert f"/static/apidocs/{asset}" in page.text
        assert "https://" not in page.headers["content-security-policy"]
        assert client.get(f"/static/apidocs/{asset}").status_code == 200


def test_a_browser_gets_a_styled_page_for_a_missing_or_forbidden_page_and_an_api_client_gets_json(
    ctx: Context, client: TestClient
) -> None:
    missing = client.get("/no-such-page", headers=HTML)
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert "Not found" in missing.text and 'href="/static/app.css"' in missing.text
    assert client.get("/api/no-such-thing").json()["error"] == "http_error"

    cashier = auth_headers(ctx, Role.cashier)
    refused = client.get("/recordings", headers={**HTML, **cashier})
    assert refused.status_code == 403 and "text/html" in refused.headers["content-type"]
    assert "Not allowed" in refused.text and "recordings:read" in refused.text
    as_api = client.get("/recordings", headers=cashier)
    assert as_api.status_code == 403 and as_api.json()["error"] == "forbidden"


def test_every_page_has_a_favicon(client: TestClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert '<link rel="icon" href="/static/favicon.svg"' in client.get("/login").text
