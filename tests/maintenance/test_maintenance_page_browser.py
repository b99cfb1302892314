"""The /maintenance page in headless Chromium: states, evidence, the history chart, a ticket's whole life."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn

from safecity.accounts.models import Role
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.maintenance import service
from tests.conftest import PASSWORD, make_user
from tests.maintenance.maintenance_support import add_camera, health

pytestmark = pytest.mark.browser
CHROMIUM = Path(os.environ.get("SAFECITY_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture
def served(ctx: Context) -> Iterator[str]:
    """Serves the real app, consumers included, on a free loopback port; yields its base URL."""
    from safecity.server import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def tab() -> Iterator[Any]:
    """A headless Chromium tab that fails the test on any script error (skips without Chromium)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHROMIUM} is missing (CI=true requires the browser tests)")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield page
        finally:
            browser.close()
        assert not errors, f"script errors on the page: {errors}"


def wait_for(check: Callable[[], bool], what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def open_faults(ctx: Context) -> int:
    with ctx.db.session() as session:
        return len(service.list_faults(session, open_only=True))


def sign_in(page: Any, url: str, username: str) -> None:
    page.goto(url + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(re.compile(r".*/$"))


def test_a_supervisor_sees_a_covered_camera_with_its_evidence_and_works_its_ticket_to_the_end(
    ctx: Context, served: str, tab: Any
) -> None:
    add_camera(ctx, "cam-saddar", name="Saddar Empress Market", district="South")
    add_camera(ctx, "cam-gulshan", name="Gulshan Chowrangi", district="East")
    picture = np.full((90, 160, 3), 40, np.uint8)
    frame_ref = ctx.media.put_image(picture)
    now = utcnow()
    for event in (
        health("cam-saddar", "online", now - timedelta(days=2)),
        health("cam-gulshan", "online", now - timedelta(days=3)),
        health("cam-saddar", "offline", now - timedelta(days=1, hours=2), detail="no picture for 6 s"),
        health("cam-saddar", "online", now - timedelta(days=1)),
        health(
            "cam-saddar", "covered", now - timedelta(minutes=30), detail="lens covered", frame_ref=frame_ref
        ),
    ):
        ctx.bus.publish_threadsafe(event)
    wait_for(lambda: open_faults(ctx) == 1, "the covered fault")
    supervisor = make_user(ctx, Role.supervisor, "sup.khan")
    make_user(ctx, Role.operator, "tech.ali")

    sign_in(tab, served, supervisor)
    tab.goto(served + "/maintenance")
    row = tab.locator('#mnt-camera-table tr[data-camera="cam-saddar"]')
    row.locator(".health.covered").wait_for()
    assert "lens covered" in row.inner_text()
    assert tab.locator('#mnt-camera-table tr[data-camera="cam-gulshan"] .health.online').count() == 1

    tab.check("#mnt-faulty-only")
    tab.wait_for_function("document.querySelectorAll('#mnt-camera-table tbody tr').length === 1")
    assert tab.locator("#mnt-camera-table tbody tr").get_attribute("data-camera") == "cam-saddar"

    evidence = tab.locator(".mnt-fault img")
    evidence.wait_for()
    tab.wait_for_function("document.querySelector('.mnt-fault img').naturalWidth === 160")

    tab.locator(".mnt-fault button", has_text="History").click()
    tab.locator("#mnt-chart rect.span.offline").first.wait_for()
    assert tab.locator("#mnt-chart rect.span.covered").count() >= 1
    assert tab.locator("#mnt-chart rect.mnt-bar").count() >= 3

    tab.locator(".mnt-fault button", has_text="Open ticket").click()
    tab.fill("#mnt-new-ticket input[name=description]", "clear the lens at Saddar")
    tab.click("#mnt-new-ticket button[type=submit]")
    card = tab.locator(".mnt-ticket.open")
    card.wait_for()
    assert "clear the lens at Saddar" in card.inner_text()

    card.locator("select[name=assignee]").select_option("tech.ali")
    card.locator("button.assign").click()
    assigned = tab.locator(".mnt-ticket.assigned")
    assigned.wait_for()
    assert "tech.ali" in assigned.inner_text()

    assigned.locator("button.close").click()  # no note yet: refused, in plain words
    tab.wait_for_function("document.querySelector('#mnt-ticket-status').textContent.includes('note')")
    tab.locator(".mnt-ticket.assigned input[name=note]").fill("cloth removed from the lens")
    tab.locator(".mnt-ticket.assigned button.close").click()
    tab.wait_for_function("document.querySelector('#mnt-ticket-status').textContent === 'Ticket closed.'")

    with ctx.db.session() as session:
        [ticket] = service.list_tickets(session)
        assert (ticket.status, ticket.assignee, ticket.close_note) == (
            "closed",
            "tech.ali",
            "cloth removed from the lens",
        )
        assert ticket.fault_id is not None
