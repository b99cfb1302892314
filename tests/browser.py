"""Browser test harness for every page test: the real app on a loopback port, and headless Chromium.

Chromium is Debian's (/usr/bin/chromium, installed by `.ci/run`), driven by Playwright; Playwright's own
browser downloads are never used. Without Chromium the browser tests skip, except under CI=true.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from safecity.core.context import Context
from tests.conftest import PASSWORD

CHROMIUM = Path(os.environ.get("SAFECITY_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


@dataclass
class LiveServer:
    """The app running in a background thread: its base URL and its context."""

    url: str
    ctx: Context


def free_port() -> int:
    """Returns a free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server(ctx: Context) -> Iterator[LiveServer]:
    """Serves the real app (bus, consumers, live hub) on a free loopback port for one test."""
    from safecity.server import create_app

    with serving(create_app(ctx)) as url:
        yield LiveServer(url=url, ctx=ctx)


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serves `app` on a free loopback port in a background thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws="websockets",
        proxy_headers=False,  # as `safecity serve`: forwarded headers are SafeCity's to judge
        ws_per_message_deflate=False,  # as `safecity serve`: live video is compressed already
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium driven by Playwright (skips without it, fails under CI=true).

    Module-scoped on purpose: Playwright's sync API keeps an event loop running in this thread while
    it is open, and asyncio tests in later modules cannot start their own until it is closed.
    """
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " — CI=true requires the browser tests to run")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser tab (its own cookies) that fails the test on any script error."""
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.set_default_timeout(15_000)
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"script errors on the page: {errors}"


def sign_in(page: Any, url: str, username: str) -> None:
    """Signs `username` (password tests.conftest.PASSWORD) in through the real form."""
    page.goto(url + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(re.compile(r".*/$"))
