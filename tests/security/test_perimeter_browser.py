"""In headless Chromium: an attacker's page on another port of the same host tries, with the
supervisor signed in, to approve a watch-list entry and to import a CSV onto the stolen list; and
every page runs under the strict Content-Security-Policy without a single violation.

Another port of the same host is another origin but the same site, so the browser sends even a
SameSite=Strict session cookie along: only the CSRF guard stands between the attacker and the data.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np
import pytest

from safecity.anpr import service as anpr
from safecity.core.clock import utcnow
from safecity.faces import service as faces
from safecity.web.pages import NAV
from tests.browser import LiveServer, free_port, sign_in
from tests.conftest import make_user

pytestmark = pytest.mark.browser

ATTACK = """<!doctype html><html><body>
<form id="approve" method="post" action="{app}/api/faces/entries/{entry}/approve" target="sink"></form>
<iframe name="sink"></iframe>
<script>
  const sneaky = {{ mode: "no-cors", credentials: "include" }};
  const csv = new Blob(["plate,list_name,reason\\nLEA4521,stolen,planted\\n"], {{ type: "text/csv" }});
  const form = new FormData();
  form.append("file", csv, "list.csv");
  Promise.allSettled([
    fetch("{app}/api/plates/hotlist/import", {{ method: "POST", body: form, ...sneaky }}),
    fetch("{app}/api/faces/entries/{entry}/approve", {{ method: "POST", ...sneaky }}),
  ]).then(() => {{ document.getElementById("approve").submit(); document.title = "sent"; }});
</script></body></html>"""


@pytest.fixture
def attacker_site() -> Iterator[tuple[str, dict[str, str]]]:
    """A web server on another port of 127.0.0.1; set `pages["/attack"]` to what it serves."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", pages
    finally:
        server.shutdown()


def test_a_page_on_another_port_cannot_act_for_a_signed_in_supervisor(
    page: Any, live_server: LiveServer, attacker_site: tuple[str, dict[str, str]], caplog: Any
) -> None:
    ctx = live_server.ctx
    ok, jpeg = cv2.imencode(".jpg", np.full((120, 100, 3), 120, dtype=np.uint8))
    assert ok
    with ctx.db.session() as session:
        entry = faces.enroll(
            session,
            ctx.media,
            name="Suspect One",
            category="wanted",
            legal_basis="FIR 123/2024 PS Saddar",
            requested_by="inspector.ali",
            photos=[jpeg.tobytes()],
            expires_at=utcnow() + timedelta(days=30),
            encoder=lambda image: np.ones(128, dtype=np.float32) / np.sqrt(128),
        )
        entry_id = entry.id
    make_user(ctx, "supervisor", "supervisor.sana")
    sign_in(page, live_server.url, "supervisor.sana")

    attacker, pages = attacker_site
    pages["/attack"] = ATTACK.format(app=live_server.url, entry=entry_id)
    caplog.set_level(logging.WARNING, logger="safecity.core.security")
    page.goto(attacker + "/attack")
    page.wait_for_function("() => document.title === 'sent'")
    page.wait_for_timeout(1500)

    with ctx.db.session() as session:
        assert faces.get_entry(session, entry_id).status == "pending"
        assert [e.plate for e in anpr.list_hotlist(session)] == []
    # The three forged requests reached the server, cookie and all, and each was refused.
    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused POST")]
    assert len(refused) == 3, refused
    assert all(attacker in line for line in refused), refused
    # The supervisor's own page still works: the same approval from /watchlists goes through.
    page.goto(live_server.url + "/watchlists")
    token = page.get_attribute('meta[name="csrf-token"]', "content")
    status = page.evaluate(
        """async ([entry, token]) => (await fetch(`/api/faces/entries/${entry}/approve`,
             { method: "POST", headers: { "X-CSRF-Token": token } })).status""",
        [entry_id, token],
    )
    assert status == 200


def test_every_page_runs_under_the_csp_without_a_violation(page: Any, live_server: LiveServer) -> None:
    violations: list[str] = []
    page.on(
        "console",
        lambda m: (
            violations.append(m.text) if "Content Security Policy" in m.text or "CSP" in m.text else None
        ),
    )
    make_user(live_server.ctx, "admin", "admin.csp")
    page.goto(live_server.url + "/portal")
    page.wait_for_load_state("networkidle")
    sign_in(page, live_server.url, "admin.csp")
    page.wait_for_selector("#live-status.on")  # the live socket opened with its ticket under the CSP
    # Every page of the navigation (new ones included) and the account pages; the officer's phone
    # page is an officer's, checked as one below.
    for path in [p for p, _, _ in NAV if p not in ("/portal", "/field")] + [
        "/account",
        "/account/password",
        "/account/second-factor",
    ]:
        response = page.goto(live_server.url + path)
        assert response is not None and response.status == 200, path
        assert "default-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
    page.context.clear_cookies()
    make_user(live_server.ctx, "patrol_officer", "officer.csp")
    sign_in(page, live_server.url, "officer.csp")
    response = page.goto(live_server.url + "/field")
    assert response is not None and response.status == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_load_state("networkidle")
    assert violations == []
