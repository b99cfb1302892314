"""The wall and the single camera view in Chromium: live video plays on every tile, a tile with no
picture says why, the single view plays live and replays the last moments."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import sign_in
from tests.conftest import make_user
from tests.live.conftest import VideoCity

pytestmark = pytest.mark.browser

ADVANCING = """async (selector) => {
  const videos = [...document.querySelectorAll(selector)];
  const before = videos.map((v) => v.currentTime);
  await new Promise((r) => setTimeout(r, 2000));
  return videos.map((v, i) => v.currentTime - before[i]);
}"""


def tile(page: Any, camera_id: str) -> Any:
    return page.locator(f'.tile[data-camera-id="{camera_id}"]')


def test_chromium_plays_h264_from_media_source_extensions(page: Any) -> None:
    page.goto("about:blank")
    assert page.evaluate("""MediaSource.isTypeSupported('video/mp4; codecs="avc1.42E01E"')""")


def test_a_2x2_wall_plays_on_every_tile_and_a_tile_without_picture_says_why(
    video_city: VideoCity, page: Any
) -> None:
    sign_in(page, video_city.url, make_user(video_city.ctx, "operator"))
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(video_city.url + "/wall")
    page.wait_for_selector("body[data-ready=yes]")
    page.select_option("#grid", "2x2")
    for camera_id in ("cam-a", "cam-b", "cam-c", "cam-d"):
        page.wait_for_selector(
            f'.tile[data-camera-id="{camera_id}"] .screen[data-playing=yes]', timeout=20_000
        )
    page.wait_for_timeout(2000)  # past the start, when two cores decode four streams and start eight cameras
    advanced = page.evaluate(ADVANCING, ".tile .screen video")
    assert len(advanced) == 4 and all(step > 1.0 for step in advanced), advanced
    first_frames = page.eval_on_selector_all(
        ".tile .screen", "(s) => s.map((n) => Number(n.dataset.firstFrameMs))"
    )
    assert all(ms < 5000 for ms in first_frames), first_frames
    steps = page.eval_on_selector_all(
        ".tile .screen", "(s) => s.map((n) => JSON.parse(n.dataset.firstFrameSteps))"
    )
    # The key-frame plays where the element stands: no seek (a pipeline restart) before the first picture.
    assert all("appended" in s and "seeking" not in s for s in steps), steps

    page.click("#next")  # page 2: the H.265 camera, the one without a stream, the one that drops
    h265 = tile(page, "cam-h265")
    h265.locator(".screen[data-playing=picture]").wait_for(timeout=20_000)
    assert "H.265 cannot be played by the browser" in h265.locator(".note").inner_text()
    tile(page, "cam-none").locator(".reason", has_text="no stream configured").wait_for()

    slot = tile(page, "cam-none").get_attribute("data-slot")
    page.locator("#camera-list li", has_text="Camera cam-a").drag_to(tile(page, "cam-none"))
    dropped = page.locator(f'.tile[data-slot="{slot}"]')
    assert dropped.get_attribute("data-camera-id") == "cam-a"
    dropped.locator(".screen[data-playing=yes]").wait_for(timeout=20_000)
    # Every tile, and the tile switched to another camera, on the page's one video socket.
    assert [url.split("/", 3)[3] for url in sockets if "/ws/video" in url] == ["ws/video"]


def test_layouts_saved_on_the_wall_come_back(video_city: VideoCity, page: Any) -> None:
    sign_in(page, video_city.url, make_user(video_city.ctx, "operator"))
    page.goto(video_city.url + "/wall")
    page.wait_for_selector("body[data-ready=yes]")
    page.select_option("#grid", "1+5")
    page.fill("#layout-name", "Saddar six")
    page.click("#save")
    page.wait_for_selector("#wall-status:has-text('saved')")
    page.reload()
    page.wait_for_selector("body[data-ready=yes]")
    assert page.locator("#grid").input_value() == "1+5"
    assert page.locator(".tile").count() == 6


def test_the_single_view_plays_live_and_replays_the_last_30_seconds(video_city: VideoCity, page: Any) -> None:
    sign_in(page, video_city.url, make_user(video_city.ctx, "operator"))
    page.goto(video_city.url + "/cameras")
    page.locator("#cams-table a", has_text="live").first.click()
    page.wait_for_url("**/live/*")
    page.wait_for_selector("#live-screen[data-playing=yes]", timeout=20_000)
    assert all(step > 0.5 for step in page.evaluate(ADVANCING, "#live-screen video"))
    page.wait_for_timeout(3000)  # a few seconds recorded
    page.click("#replay")
    page.wait_for_function("() => document.querySelector('#playback').currentTime > 0.5", timeout=20_000)
    assert "REPLAY" in page.inner_text("#mode")
    page.click("#go-live")
    page.wait_for_selector("#live-screen[data-playing=yes]", timeout=20_000)
    page.click("#snapshot")
    page.wait_for_selector("#snapshots li a")
    assert "kept as evidence" in page.inner_text("#status")
