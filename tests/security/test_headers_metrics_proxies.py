"""Security headers on every response, /metrics behind a token or an address, proxies trusted by name.

Issue 16: no Content-Security-Policy, frame, nosniff or referrer headers anywhere; /metrics open to
all; X-Forwarded-For believed from anyone (rate limits bypassed, spoofed addresses in the audit log).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from safecity.core.context import Context
from safecity.core.http import client_address, is_https
from safecity.settings import Settings

STRICT = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


def strict(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    csp = headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
    assert "unsafe-inline" not in csp.split("style-src")[0], csp  # never for scripts
    for name, value in STRICT.items():
        assert headers.get(name) == value, name


@contextmanager
def served(
    tmp_path: Path, peer: str = "testclient", base_url: str = "http://testserver", **settings: object
) -> Iterator[tuple[FastAPI, TestClient]]:
    """An app of its own with `settings`, and a client calling it from `peer`."""
    from safecity.server import create_app

    ctx = Context.create(Settings(data_dir=tmp_path / f"data-{uuid.uuid4().hex[:6]}", **settings))  # type: ignore[arg-type]
    app = create_app(ctx, consumers=False)

    @app.get("/whoami")
    def whoami(request: Request) -> dict[str, object]:
        return {"address": client_address(request), "https": is_https(request)}

    try:
        with TestClient(app, client=(peer, 4000), base_url=base_url) as client:
            yield app, client
    finally:
        ctx.db.dispose()


@pytest.fixture
def boom_app(app: FastAPI) -> FastAPI:
    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    return app


def test_every_kind_of_response_carries_the_strict_headers(boom_app: FastAPI) -> None:
    with TestClient(boom_app, raise_server_exceptions=False) as client:
        responses = {
            "page": client.get("/login"),
            "api": client.get("/api/me"),
            "static": client.get("/static/lib.js"),
            "health": client.get("/healthz"),
            "not found": client.get("/no-such-page"),
            "invalid": client.post("/api/login", json={"username": ""}),
            "csrf": client.post("/api/login", json={}, headers={"Origin": "http://evil.example"}),
            "too large": client.post("/api/portal/lookup", content=b"x" * 100_000),
            "crash": client.get("/boom"),
        }
    for what, response in responses.items():
        strict(response)
        assert "strict-transport-security" not in response.headers, what  # plain HTTP: no HSTS
    assert responses["crash"].status_code == 500
    assert responses["crash"].json()["error"] == "internal_error" and "a bug" not in responses["crash"].text
    assert responses["api"].headers["cache-control"] == "no-store"


def test_pages_hold_no_inline_script_or_style() -> None:
    templates = Path(__file__).resolve().parents[2] / "src/safecity/web/templates"
    for template in templates.glob("*.html"):
        text = template.read_text()
        assert "<style" not in text and " style=" not in text, template.name
        for tag in text.split("<script")[1:]:
            assert ' src="/static/' in tag.split(">")[0], f"{template.name}: inline <script>"
        assert not re.search(r"<[^>]*\son[a-z]+=", text), f"{template.name}: inline event handler"


def test_api_docs_allow_only_their_own_inline_script_by_hash(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    csp = docs.headers["content-security-policy"]
    assert "'sha256-" in csp and "'unsafe-inline'" not in csp.split("style-src")[0]
    assert "frame-ancestors 'none'" in csp


def test_hsts_under_tls_and_from_a_trusted_tls_proxy_only(tmp_path: Path) -> None:
    proxies = ["10.0.0.0/8"]
    with served(tmp_path, base_url="https://testserver", trusted_proxies=proxies) as (_, client):
        assert "max-age=" in client.get("/healthz").headers["strict-transport-security"]
    with served(tmp_path, "10.0.0.2", trusted_proxies=proxies) as (_, behind_proxy):
        forwarded = behind_proxy.get("/whoami", headers={"X-Forwarded-Proto": "https"})
        assert "strict-transport-security" in forwarded.headers and forwarded.json()["https"] is True
    with served(tmp_path, "192.168.1.9", trusted_proxies=proxies) as (_, stranger):
        spoofed = stranger.get("/whoami", headers={"X-Forwarded-Proto": "https"})
        assert "strict-transport-security" not in spoofed.headers and spoofed.json()["https"] is False


def test_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    def seen(peer: str, forwarded: str | None) -> str:
        with served(tmp_path, peer, trusted_proxies=["10.0.0.1", "10.0.1.0/24"]) as (_, client):
            headers = {"X-Forwarded-For": forwarded} if forwarded else {}
            return str(client.get("/whoami", headers=headers).json()["address"])

    assert seen("192.168.1.9", "1.2.3.4") == "192.168.1.9"  # a stranger's header is ignored
    assert seen("10.0.0.1", "203.0.113.7") == "203.0.113.7"  # the proxy's is believed
    # The client typed an address at the left; our proxies appended the real one: the right one counts.
    assert seen("10.0.0.1", "1.2.3.4, 203.0.113.7, 10.0.1.5") == "203.0.113.7"
    assert seen("10.0.0.1", "garbage") == "10.0.0.1"
    assert seen("10.0.0.1", None) == "10.0.0.1"


def test_spoofed_forwarded_for_neither_escapes_the_portal_limit_nor_lands_in_the_audit_log(
    client: TestClient, ctx: Context
) -> None:
    from safecity.audit import service as audit

    codes = [
        client.post(
            "/api/portal/lookup",
            json={"plate": f"LEA{1000 + i}", "cnic": "42101-1234567-1"},  # a new plate each time
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
        ).status_code
        for i in range(40)
    ]
    assert 429 in codes, codes  # rotating the header does not make forty callers out of one
    with ctx.db.session() as session:
        rows = audit.entries(session)
        assert not any("198.51.100." in f"{row.actor} {row.detail}" for row in rows)


def test_metrics_need_the_token_or_a_listed_address(tmp_path: Path) -> None:
    scraping = {"metrics_token": "scrape-me-0123456789", "metrics_addresses": ["10.9.0.0/16"]}
    with served(tmp_path, "192.168.1.9", **scraping) as (_, stranger):
        assert stranger.get("/metrics").status_code == 401
        assert stranger.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert stranger.get("/metrics", headers={"X-Forwarded-For": "10.9.0.1"}).status_code == 401
        scraped = stranger.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"})
        assert scraped.status_code == 200 and "safecity_" in scraped.text
        assert stranger.get("/healthz").status_code == 200  # liveness stays open
    with served(tmp_path, "10.9.3.4", **scraping) as (_, prometheus):
        assert prometheus.get("/metrics").status_code == 200


def test_metrics_answer_this_host_only_by_default(tmp_path: Path) -> None:
    with served(tmp_path, "192.168.1.9") as (_, stranger):
        refused = stranger.get("/metrics")
        assert refused.status_code == 403 and "SAFECITY_METRICS_TOKEN" in refused.json()["hint"]
    with served(tmp_path, "127.0.0.1") as (_, local):
        assert local.get("/metrics").status_code == 200
    with served(tmp_path, "::1") as (_, local6):
        assert local6.get("/metrics").status_code == 200
