"""The /plates page in headless Chromium: search a plate onto a map and a timeline, keep the hot list."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from conftest import PASSWORD, make_user
from safecity.anpr.models import PlateReadRow
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.ids import new_id

pytestmark = pytest.mark.browser
CHROMIUM = Path(os.environ.get("SAFECITY_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture
def served(ctx: Context) -> Iterator[str]:
    """Serves the real app on a free loopback port; yields its base URL."""
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
        page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield page
        finally:
            browser.close()
        assert not errors, f"script errors on the page: {errors}"


def seed(ctx: Context) -> None:
    now = utcnow()
    with ctx.db.session() as session:
        for camera_id, name, lat, lon in (
            ("cam-clifton", "Clifton Teen Talwar", 24.8138, 67.0300),
            ("cam-saddar", "Saddar Empress Market", 24.8607, 67.0299),
        ):
            data = CameraIn.model_validate(
                {
                    "id": camera_id,
                    "name": name,
                    "kind": "anpr",
                    "district": "South",
                    "latitude": lat,
                    "longitude": lon,
                }
            )
            cameras.create(session, data, actor="test")
        for minutes, camera_id, lat, lon in (
            (30, "cam-clifton", 24.8138, 67.03),
            (5, "cam-saddar", 24.8607, 67.0299),
        ):
            session.add(
                PlateReadRow(
                    id=new_id(),
                    event_key=f"seed:{minutes}",
                    plate="LEA4521",
                    confidence=0.93,
                    camera_id=camera_id,
                    latitude=lat,
                    longitude=lon,
                    at=now - timedelta(minutes=minutes),
                )
            )


def sign_in(page: Any, url: str, username: str) -> None:
    page.goto(url + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(re.compile(r".*/$"))


def test_a_supervisor_searches_a_plate_and_lists_a_vehicle_from_the_page(
    ctx: Context, served: str, tab: Any
) -> None:
    seed(ctx)
    make_user(ctx, "supervisor", username="sup.ali")
    sign_in(tab, served, "sup.ali")
    tab.goto(served + "/plates")
    tab.fill("#plate-search input[name=plate]", "LEA-4521")
    tab.fill("#plate-search input[name=reason]", "case 17/24")
    tab.click("#plate-search button[type=submit]")
    tab.wait_for_selector("#anpr-reads tbody tr")
    assert tab.locator("#anpr-reads tbody tr").count() == 2
    assert tab.locator("#anpr-map circle").count() == 2
    assert tab.locator("#anpr-map polyline.route").count() == 1
    assert tab.locator("#anpr-timeline circle").count() == 2
    assert "2 read(s) at 2 camera(s)" in tab.inner_text("#search-status")

    tab.fill("#hotlist-add input[name=plate]", "bkr 8090")
    tab.select_option("#hotlist-add select[name=list_name]", "wanted")
    tab.fill("#hotlist-add input[name=reason]", "robbery suspect, FIR 88/24")
    tab.click("#hotlist-add button[type=submit]")
    tab.wait_for_selector("#hotlist tbody tr:has-text('BKR8090')")
    assert "wanted" in tab.inner_text("#hotlist tbody tr:has-text('BKR8090')")
    assert "sup.ali" in tab.inner_text("#hotlist tbody tr:has-text('BKR8090')")
    tab.screenshot(path="/tmp/anpr_plates.png", full_page=True)  # for a person to look at after a run
