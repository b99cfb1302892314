"""In headless Chromium: two cameras play side by side at the same recorded moment, with their timelines."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from safecity.accounts.models import Role
from safecity.core.context import Context
from tests.browser import LiveServer, sign_in
from tests.conftest import make_user
from tests.recordings.recordings_support import T0, Recorded

pytestmark = pytest.mark.browser


def _sign_in(tab: Any, url: str, ctx: Context) -> None:
    make_user(ctx, Role.investigator, "inv")
    sign_in(tab, url, "inv")


def test_two_cameras_play_side_by_side_from_the_same_moment(
    ctx: Context,
    record: Callable[..., Recorded],
    live_server: LiveServer,
    page: Any,
) -> None:
    record("cam-1", seconds=8)
    record("cam-2", seconds=8, start=T0 + timedelta(seconds=1))
    _sign_in(page, live_server.url, ctx)
    moment = T0 + timedelta(seconds=3)

    page.goto(
        f"{live_server.url}/recordings?camera=cam-1,cam-2&at={moment.isoformat().replace('+00:00', 'Z')}"
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('.rec-tile')].length === 2 && "
        "[...document.querySelectorAll('.rec-tile video')]"
        ".every(v => v.readyState >= 2 && v.currentTime > 0.2)"
    )

    for camera_id in ("cam-1", "cam-2"):
        tile = page.locator(f".rec-tile[data-camera='{camera_id}']")
        assert tile.locator(".rec-timeline .span").count() == 1
        shown = datetime.fromisoformat(tile.get_attribute("data-wall").replace("Z", "+00:00"))
        assert moment - timedelta(seconds=0.5) <= shown <= moment + timedelta(seconds=6)
        assert tile.locator(".rec-msg").inner_text() == ""
    width = page.evaluate("document.querySelector('.rec-tile video').videoWidth")
    assert width == 320
