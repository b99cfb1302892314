"""Where a click on the live view falls on the camera's picture (web/static/ptzaim.js), without a browser.

The module has no DOM in it, so Node runs it as it is; the page shows the picture whole inside its
stage (object-fit: contain), and a click on a bar beside it is no point of the picture.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import safecity

AIM = Path(safecity.__file__).parent / "web" / "static" / "ptzaim.js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed to run the page's module")


def points(*clicks: tuple[float, float, float, float, float, float]) -> list[dict[str, float] | None]:
    """What `pointOnPicture` answers for each (clickX, clickY, stageW, stageH, pictureW, pictureH)."""
    script = (
        f"import {{ pointOnPicture }} from {json.dumps(AIM.as_uri())};\n"
        f"const clicks = {json.dumps(clicks)};\n"
        "console.log(JSON.stringify(clicks.map((c) => pointOnPicture(...c))));\n"
    )
    assert NODE is not None
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30, check=True
    )
    answer: list[dict[str, float] | None] = json.loads(done.stdout)
    return answer


def test_a_picture_that_fills_the_stage_maps_the_click_straight_to_fractions() -> None:
    centre, right, corner = points(
        (640, 360, 1280, 720, 1920, 1080), (960, 360, 1280, 720, 1920, 1080), (0, 0, 1280, 720, 1920, 1080)
    )
    assert centre == {"x": 0.5, "y": 0.5, "aspect": pytest.approx(16 / 9)}
    assert right is not None and (right["x"], right["y"]) == (0.75, 0.5)
    assert corner is not None and (corner["x"], corner["y"]) == (0, 0)


def test_a_four_by_three_picture_on_a_wide_stage_has_bars_left_and_right_which_are_no_point() -> None:
    # 4:3 at 720 high is 960 wide, centred on 1280: bars of 160 px each side.
    inside, on_bar, far_right = points(
        (160 + 720, 180, 1280, 720, 640, 480),
        (100, 360, 1280, 720, 640, 480),
        (1279, 360, 1280, 720, 640, 480),
    )
    assert inside is not None and (inside["x"], inside["y"]) == (0.75, 0.25)
    assert inside["aspect"] == pytest.approx(4 / 3)
    assert on_bar is None and far_right is None


def test_a_wide_picture_on_a_tall_stage_has_bars_above_and_below() -> None:
    # 16:9 on 800×800: 450 high, bars of 175 px above and below.
    (inside, above) = points((400, 175 + 450, 800, 800, 1920, 1080), (400, 100, 800, 800, 1920, 1080))
    assert inside is not None and (inside["x"], inside["y"]) == (0.5, 1.0)
    assert above is None


def test_no_picture_yet_or_an_empty_stage_is_no_point() -> None:
    assert points((10, 10, 1280, 720, 0, 0), (10, 10, 0, 0, 1920, 1080)) == [None, None]
