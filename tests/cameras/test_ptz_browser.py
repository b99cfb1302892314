"""PTZ on the single camera view in Chromium, against a simulated ONVIF camera: holding an arrow moves
the camera, letting go stops it; arrow keys do the same when the picture has focus; presets go and save;
a fixed camera shows no controls and says why."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from safecity.core.context import Context
from safecity.demo.ptz import Received, SimulatedPtzCamera
from tests.browser import LiveServer, serving, sign_in
from tests.cameras.test_ptz_api import ptz_at, register
from tests.conftest import make_user

pytestmark = pytest.mark.browser


@pytest.fixture
def ptz_camera() -> Iterator[SimulatedPtzCamera]:
    fake = SimulatedPtzCamera(username="ptz", password="s3cret")
    yield fake
    fake.close()


def wait_for(check: Callable[[], Received | None], what: str, timeout_s: float = 10) -> Received:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"the camera never received {what}")


def after(camera: SimulatedPtzCamera, count: int, operation: str) -> Callable[[], Received | None]:
    """A check for the first `operation` the camera received after its first `count` requests."""

    def check() -> Received | None:
        return next((r for r in camera.received[count:] if r.operation == operation), None)

    return check


def test_holding_an_arrow_moves_the_camera_and_letting_go_stops_it(
    live_server: LiveServer, page: Any, ptz_camera: SimulatedPtzCamera
) -> None:
    register(live_server.ctx, "gate", **ptz_at(ptz_camera))
    sign_in(page, live_server.url, make_user(live_server.ctx, "operator", "asif"))
    page.goto(live_server.url + "/live/gate")
    page.wait_for_selector("#ptz:not([hidden])")
    page.wait_for_selector("#ptz-presets li[data-token='1']")

    seen = len(ptz_camera.received)
    page.focus("#stage")
    page.keyboard.down("ArrowUp")
    move = wait_for(after(ptz_camera, seen, "ContinuousMove"), "ContinuousMove on the up arrow key")
    assert move.values["Velocity.PanTilt.y"] == "0.5"
    page.keyboard.up("ArrowUp")
    wait_for(after(ptz_camera, seen, "Stop"), "Stop on releasing the key")

    seen = len(ptz_camera.received)
    page.locator("[data-ptz=right]").hover()
    page.mouse.down()  # the picture had focus: pressing a button takes it, and must not stop the move
    move = wait_for(after(ptz_camera, seen, "ContinuousMove"), "ContinuousMove on pressing")
    assert (move.values["Velocity.PanTilt.x"], move.values["Velocity.PanTilt.y"]) == ("0.5", "0")
    time.sleep(0.5)
    assert after(ptz_camera, seen, "Stop")() is None  # still held: no stop yet
    page.mouse.up()
    wait_for(after(ptz_camera, seen, "Stop"), "Stop on releasing")
    page.wait_for_selector("#ptz-controller:has-text('You are controlling')")

    page.fill("#preset-name", "Gate 3")
    page.click("#preset-save")
    page.wait_for_selector("#ptz-presets li:has-text('Gate 3')")
    seen = len(ptz_camera.received)
    page.locator("#ptz-presets li", has_text="Home").locator("button", has_text="Go").click()
    goto = wait_for(after(ptz_camera, seen, "GotoPreset"), "GotoPreset")
    assert goto.values["PresetToken"] == "1"


def test_a_failing_command_says_why_and_a_fixed_camera_shows_no_controls(
    live_server: LiveServer, page: Any, ptz_camera: SimulatedPtzCamera
) -> None:
    register(live_server.ctx, "gate", **ptz_at(ptz_camera))
    register(live_server.ctx, "fixed", stream_url="synthetic://road/f")
    sign_in(page, live_server.url, make_user(live_server.ctx, "operator"))
    page.goto(live_server.url + "/live/fixed")
    page.wait_for_selector("#ptz-none:not([hidden])")
    assert "no ONVIF address" in page.inner_text("#ptz-none") and page.locator("#ptz").is_hidden()

    ptz_camera.faults["ContinuousMove"] = ("ter:Locked", "PTZ is locked by the local keyboard")
    page.goto(live_server.url + "/live/gate")
    page.wait_for_selector("#ptz:not([hidden])")
    page.locator("[data-ptz=in]").hover()
    page.mouse.down()
    page.wait_for_selector("#ptz-status.error:has-text('PTZ is locked by the local keyboard')")
    page.mouse.up()


def test_an_operator_sends_the_camera_to_a_position_by_numbers_and_removes_a_preset(
    live_server: LiveServer, page: Any
) -> None:
    camera = SimulatedPtzCamera(pan_tilt_limits=(-0.5, 0.5, -1.0, 1.0))
    try:
        register(live_server.ctx, "gate", stream_url="synthetic://road/g", analysis={"onvif_url": camera.url})
        sign_in(page, live_server.url, make_user(live_server.ctx, "operator", "asif"))
        page.goto(live_server.url + "/live/gate")
        page.wait_for_selector("#ptz-position:not([hidden])")
        assert page.get_attribute("#ptz-pan", "max") == "0.5" and page.input_value("#ptz-zoom") == "0"
        assert "pan -0.5 to 0.5" in page.inner_text("#ptz-ranges")

        page.fill("#ptz-pan", "0.3")
        page.fill("#ptz-tilt", "-0.4")
        page.fill("#ptz-zoom", "0.6")
        page.click("#ptz-go")
        wait_for(lambda: camera.last("AbsoluteMove"), "AbsoluteMove on Go to")
        page.wait_for_selector("#ptz-controller:has-text('You are controlling')")
        assert camera.view() == pytest.approx((0.3, -0.4, 0.6))

        page.fill("#ptz-pan", "0.8")
        page.click("#ptz-go")
        page.wait_for_selector("#ptz-status.error:has-text('outside this camera\\'s range -0.5 to 0.5')")
        assert len([r for r in camera.received if r.operation == "AbsoluteMove"]) == 1

        page.wait_for_selector("#ptz-presets li[data-token='1']")
        page.once("dialog", lambda dialog: dialog.accept())
        page.locator("#ptz-presets li", has_text="Home").locator("button.remove").click()
        page.wait_for_selector("#ptz-presets li:has-text('no presets yet')")
        assert camera.presets == {} and camera.last("RemovePreset") is not None
    finally:
        camera.close()


def test_a_double_click_on_the_picture_turns_the_camera_to_that_point_and_a_single_click_only_when_asked(
    ctx: Context, page: Any, ptz_camera: SimulatedPtzCamera
) -> None:
    from safecity.server import create_app
    from safecity.worker.runtime import start_pipelines_hook

    register(ctx, "gate", **{**ptz_at(ptz_camera), "stream_url": "synthetic://road/gate?fps=10&seed=3"})
    with serving(create_app(ctx, on_started=[start_pipelines_hook()])) as url:
        sign_in(page, url, make_user(ctx, "operator", "asif"))
        page.goto(url + "/live/gate")
        click_to_centre(page, ptz_camera)


def click_to_centre(page: Any, ptz_camera: SimulatedPtzCamera) -> None:
    """Double-clicks, clicks and ticks "Click to centre" on the playing picture, checking the moves."""
    page.wait_for_selector("#ptz:not([hidden])")
    page.wait_for_selector("#live-screen[data-playing]", timeout=20_000)
    box = page.locator("#stage").bounding_box()
    right_of_centre = (box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.5)

    page.mouse.click(*right_of_centre)
    time.sleep(0.5)
    assert ptz_camera.last("AbsoluteMove") is None  # an ordinary click focuses the picture, nothing more

    page.mouse.dblclick(*right_of_centre)
    wait_for(lambda: ptz_camera.last("AbsoluteMove"), "AbsoluteMove on a double-click")
    pan, tilt, _ = ptz_camera.view()
    assert pan > 0.05 and tilt == pytest.approx(0, abs=0.01)
    page.wait_for_selector("#ptz-controller:has-text('You are controlling')")

    page.check("#ptz-click-centre")
    seen = len(ptz_camera.received)
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.1)
    wait_for(after(ptz_camera, seen, "AbsoluteMove"), "AbsoluteMove on a click with Click to centre ticked")
    assert ptz_camera.view()[1] > 0.05  # a click near the top tilts up
