"""In headless Chromium: two cameras play side by side at the same recorded moment, with their timelines."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

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


def _reached(page: Any, after: datetime) -> datetime:
    """Waits until the tile plays at normal speed showing a moment past `after`; returns that moment as
    first seen (the clock moves on while the test looks), and pauses."""
    shown = page.wait_for_function(
        "(after) => { const t = document.querySelector('.rec-tile');"
        " return t.dataset.state === 'playing' && Date.parse(t.dataset.wall) > after && t.dataset.wall; }",
        arg=after.timestamp() * 1000,
    ).json_value()
    page.locator("#rec-pause").click()
    assert page.evaluate("document.querySelector('.rec-tile video').playbackRate") == 1
    return datetime.fromisoformat(shown.replace("Z", "+00:00"))


def test_playback_starts_at_the_moment_asked_not_at_the_key_frame_before_it(
    ctx: Context,
    record: Callable[..., Recorded],
    live_server: LiveServer,
    page: Any,
) -> None:
    # A key-frame every 4 s: the stream from 09:00:07 starts at 09:00:04, and the browser finds no
    # seekable range in a stream sent as it is read, so it must play on to the moment.
    record("cam-1", seconds=40, gop=100, segment_seconds=4.0)
    _sign_in(page, live_server.url, ctx)
    moment = T0 + timedelta(seconds=7)
    located = page.evaluate(
        "async (at) => (await fetch(`/api/recordings/cameras/cam-1/locate?at=${at}`)).json()",
        moment.isoformat().replace("+00:00", "Z"),
    )
    assert located["offset_seconds"] == pytest.approx(3.0, abs=0.05)  # what the page has to cover

    page.goto(f"{live_server.url}/recordings?camera=cam-1&at={moment.isoformat().replace('+00:00', 'Z')}")
    tile = page.locator(".rec-tile[data-camera='cam-1']")
    page.wait_for_selector(".rec-tile[data-wall]")
    assert moment - timedelta(seconds=0.1) <= _reached(page, T0) <= moment + timedelta(seconds=1.5)

    # A click on the timeline jumps there, again exactly, however far the key-frame before it is.
    box = tile.locator(".rec-timeline").bounding_box()
    window = 60 * 60  # the timeline shows half an hour either side of the moment first asked
    x = box["x"] + box["width"] * (0.5 + 25 / window)  # some 25 s on (a pixel is seconds wide)
    with page.expect_request(lambda request: "/locate?" in request.url) as asked:
        page.mouse.click(x, box["y"] + box["height"] / 2)
    later = datetime.fromisoformat(parse_qs(urlparse(asked.value.url).query)["at"][0].replace("Z", "+00:00"))
    assert T0 + timedelta(seconds=13) <= later <= T0 + timedelta(seconds=36)  # inside the recording
    shown = _reached(page, moment + timedelta(seconds=4))
    assert later - timedelta(seconds=0.1) <= shown <= later + timedelta(seconds=1.5)


def test_a_link_whose_moment_is_not_a_time_says_what_to_give(
    ctx: Context,
    record: Callable[..., Recorded],
    live_server: LiveServer,
    page: Any,
) -> None:
    record("cam-1", seconds=2)
    _sign_in(page, live_server.url, ctx)

    page.goto(f"{live_server.url}/recordings?camera=cam-1&at=yesterday-noon")
    page.wait_for_function("() => document.querySelector('#rec-status').textContent !== ''")
    assert page.inner_text("#rec-status") == (
        "the link's at=yesterday-noon is not a moment: give an ISO time, e.g. 2025-12-19T04:30:00Z"
    )
    assert page.locator(".rec-tile").count() == 0
