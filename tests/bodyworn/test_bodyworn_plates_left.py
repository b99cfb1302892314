"""Plates left visible after a redaction: a plate the reference localiser finds in the copy counts only
where it finds one at that place in the original's same frame; a plate-redacted copy leaves none, an
untouched one every frame; searches are paced in seconds; the benchmark's plate settings say what to fix
when mistyped."""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest
from bench.bench_evidence import plate_variant

from safecity.bodyworn import redact_video
from safecity.vision.redaction import (
    PlateFinder,
    frames_with_plates_left,
    plate_sized,
    plates_left,
    reference_plates,
)

FPS = 15
FRAMES = 12


def _plate_clip(path: Path) -> Path:
    """Encodes a 480x360 clip of a white plate with black characters crossing a green ground."""
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 480, 360, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "12"}
        for index in range(FRAMES):
            image = np.full((360, 480, 3), (70, 90, 60), np.uint8)
            x = 40 + 8 * index
            cv2.rectangle(image, (x, 150), (x + 120, 180), (255, 255, 255), -1)
            cv2.putText(image, "KHI 4521", (x + 6, 173), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    return path


def test_a_plate_found_in_the_copy_is_left_only_where_the_original_shows_one_not_hidden_whole() -> None:
    original = {
        3: [(100, 150, 120, 30)],
        4: [(104, 150, 120, 30)],
        5: [(108, 150, 120, 30)],
        6: [(112, 150, 120, 30)],
        7: [(116, 150, 120, 30)],
    }
    copy = {
        4: [(10, 10, 40, 12), (106, 151, 118, 29)],  # the plate, shown: left
        3: [(200, 40, 60, 20)],  # blocks' edges read as text, where the original has no plate: not left
        5: [(175, 150, 120, 30)],  # beside the plate (IoU 0.28): not left
        9: [(100, 150, 120, 30)],  # a frame where the original shows no plate: not left
        6: [
            (112, 150, 120, 30)
        ],  # blocks read as text where the plate was, its characters all hidden: not left
        7: [(116, 150, 120, 30)],  # its last characters stick out of the blocks: left
    }
    hidden = {
        6: np.array([[100, 140, 240, 190]], np.float32),
        7: np.array([[100, 140, 215, 190]], np.float32),
    }
    assert plates_left(copy, original, hidden=hidden) == [4, 7]
    assert plates_left(copy, original, hidden=hidden, min_iou=0.2) == [4, 5, 7]
    assert plates_left(copy, original) == [4, 6, 7]  # nothing said hidden: every find at a plate counts
    assert plates_left({}, original) == []


def test_only_plate_sized_finds_count_as_plates() -> None:
    assert plate_sized((400, 300, 90, 24), 1280, 720)  # a plate some metres away
    assert plate_sized((400, 300, 400, 110), 1280, 720)  # a plate at arm's length
    assert not plate_sized((0, 250, 403, 265), 960, 540)  # lane markings grouped into one box
    assert not plate_sized((700, 0, 290, 267), 960, 540)  # foliage against the sky
    assert not plate_sized((33, 283, 125, 116), 960, 540)  # as tall as wide: no plate's shape


def test_a_plate_redacted_copy_leaves_no_plate_and_an_untouched_copy_leaves_every_one(tmp_path: Path) -> None:
    source = _plate_clip(tmp_path / "plate.mp4")
    assert len(reference_plates(source)) == FRAMES  # the reference sees the plate in every frame
    assert frames_with_plates_left(source, source) == list(range(FRAMES))
    copy = tmp_path / "redacted.mp4"
    pixelated: dict[int, npt.NDArray[np.float32]] = {}
    plan = redact_video.Plan(plates=PlateFinder(every=3))
    redact_video.redact(source, copy, plan, hidden=lambda index, boxes: pixelated.update({index: boxes}))
    assert frames_with_plates_left(copy, source, hidden=pixelated) == []


def test_plates_are_searched_about_every_fifth_of_a_second_whatever_the_frame_rate() -> None:
    finder = PlateFinder()
    for fps, every in ((25.0, 5), (24.0, 5), (30.0, 6), (12.5, 3), (2.0, 1)):
        finder.for_rate(fps)
        assert (fps, finder.every) == (fps, every)
    fixed = PlateFinder(every=3)
    fixed.for_rate(30.0)
    assert fixed.every == 3 and fixed.describe()["every"] == 3
    assert "every" not in PlateFinder().describe()  # not paced yet: no interval to report


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("6", "is not EVERY,SIDE"),
        ("6,big", "is not EVERY,SIDE"),
        ("0,480", "EVERY must be 1"),
        ("6,9", "SIDE"),
    ],
)
def test_a_mistyped_plate_setting_says_what_to_fix(text: str, says: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=says):
        plate_variant(text)
    assert plate_variant("6,480") == (6, 480)
