"""In headless Chromium: a body-worn item's page plays the footage of a fixed camera the officer passed,
at the body camera's own moment, and says "no recording" where that camera kept none."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from safecity.bodyworn import ingest
from safecity.recordings.recorder import RecorderPool
from tests.bodyworn.bodyworn_support import KARACHI, META, make_video
from tests.bodyworn.test_bodyworn_nearby import east_gpx, north_of
from tests.browser import LiveServer, sign_in
from tests.conftest import make_user
from tests.recordings.recordings_support import T0, FakeClock, add_camera, encode, feed_file

pytestmark = pytest.mark.browser
LAT, LON = KARACHI


def _wall(page: Any) -> datetime:
    return datetime.fromisoformat(page.get_attribute("#bw-fixed-box", "data-wall").replace("Z", "+00:00"))


def _shows(page: Any, moment: datetime, within_s: float) -> None:
    """Waits for the fixed camera's player to show `moment` (its wall clock), give or take `within_s`."""
    page.wait_for_function(
        "([t, d]) => Math.abs(Date.parse(document.querySelector('#bw-fixed-box').dataset.wall || 0) - t) < d",
        arg=[moment.timestamp() * 1000, within_s * 1000],
        timeout=15_000,
    )


def _state_is(page: Any, *states: str) -> None:
    page.wait_for_function(
        "(s) => s.includes(document.querySelector('#bw-fixed-box').dataset.state)", arg=list(states)
    )


def test_moving_the_body_camera_playhead_moves_the_fixed_camera_to_the_same_moment(
    live_server: LiveServer, page: Any, tmp_path: Path
) -> None:
    ctx = live_server.ctx
    dock = tmp_path / "dock"
    dock.mkdir()
    video = make_video(dock / "FILE0001.MP4", seconds=10, fps=10, size=(320, 240), recorded_at=T0)
    (dock / "FILE0001.gpx").write_text(east_gpx(T0))
    item_id = ingest.ingest_file(ctx, video, META, actor="dock-7").item_id
    # A junction camera 30 m off the road at the officer's place 5 s in, recording from 3 s to 7 s in.
    add_camera(ctx, "cam-7", lat=north_of(30), lon=LON + 5 * 0.0005)
    clock = FakeClock(T0 + timedelta(seconds=3))
    pool = RecorderPool(ctx, segment_seconds=2.0, clock=clock)
    recorder = pool.for_camera("cam-7")
    assert recorder is not None
    feed_file(recorder, encode(tmp_path / "junction.mp4", seconds=4), clock)
    recorder.close()
    pool.close()
    make_user(ctx, "investigator", "si.khan")
    sign_in(page, live_server.url, "si.khan")

    page.goto(f"{live_server.url}/evidence/items/{item_id}")
    page.wait_for_selector("#bw-nearby li[data-camera='cam-7'].chosen")
    page.wait_for_function("() => document.querySelector('#bw-video').readyState >= 1")
    _state_is(page, "none")  # the clip starts before the junction camera's footage does
    assert "no recording from cam-7" in page.inner_text("#bw-fixed-status")
    assert page.locator("#bw-timeline .bw-tl-rec").count() == 1
    assert page.locator("#bw-track path.bw-camera").count() == 1

    page.evaluate("() => { document.querySelector('#bw-video').currentTime = 4.5; }")
    _state_is(page, "paused")
    _shows(page, T0 + timedelta(seconds=4.5), 0.3)
    assert page.inner_text("#bw-fixed-status") == ""

    page.evaluate("() => { const v = document.querySelector('#bw-video'); v.muted = true; return v.play(); }")
    _state_is(page, "playing")
    page.wait_for_function(
        "(t) => Date.parse(document.querySelector('#bw-fixed-box').dataset.wall) > t",
        arg=(T0 + timedelta(seconds=5.2)).timestamp() * 1000,
    )  # the fixed camera plays along
    page.evaluate("() => document.querySelector('#bw-video').pause()")
    body = page.evaluate("() => document.querySelector('#bw-video').currentTime")
    _shows(page, T0 + timedelta(seconds=body), 1.0)  # within the drift the follower is allowed

    page.evaluate("() => { document.querySelector('#bw-video').currentTime = 8.5; }")
    _state_is(page, "none")  # past the end of the junction camera's footage
    assert "no recording from cam-7" in page.inner_text("#bw-fixed-status")
