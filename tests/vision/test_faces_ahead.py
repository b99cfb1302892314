"""Specification of `FacesAhead`: the face finder searching frames in two threads finds, frame by frame,
exactly what `FaceFinder.find` finds called on one frame after another.

Frames are drawn here: a street backdrop with drawn faces moving across it, small ones (found by the
fine pass and, between fine passes, only by looking again at its candidates) and a larger one (found by
the coarse passes on every frame).
"""

from __future__ import annotations

import numpy as np
import pytest

from safecity.vision.redaction import FaceFinder, FacesAhead
from tests.vision.test_faces_blazeface import Image, paste, street


def moving_faces(frames: int = 10) -> list[Image]:
    """Returns frames with faces of 16 and 64 px moving a few pixels each frame, in three directions."""
    clip = []
    for n in range(frames):
        frame = street(960, 540, seed=5)
        paste(frame, [(80 + 3 * n, 120, 16), (700 - 3 * n, 90 + 2 * n, 16), (420, 300 - 8 * n, 64)])
        clip.append(frame)
    return clip


@pytest.fixture(scope="module")
def clip() -> list[Image]:
    return moving_faces()


def test_two_threads_find_in_each_frame_what_one_finds_frame_after_frame(clip: list[Image]) -> None:
    one = FaceFinder()
    alone = [one.find(n, frame) for n, frame in enumerate(clip)]
    ahead = FacesAhead(FaceFinder(), workers=2)
    try:
        futures = [ahead.submit(n, frame) for n, frame in enumerate(clip)]
        together = [future.result(timeout=60) for future in futures]
    finally:
        ahead.close()
    assert [len(found) for found in alone] == [len(found) for found in together]
    for n, (a, b) in enumerate(zip(alone, together, strict=True)):
        assert np.array_equal(a.xyxy, b.xyxy), f"frame {n}"
        assert np.array_equal(a.confidence, b.confidence), f"frame {n}"
    # The small faces are found between fine passes too, by looking again at the fine pass's candidates:
    # the order the threads keep matters there.
    between = [len(found) for n, found in enumerate(alone) if n % one.fine_every]
    coarse_only = [len(one.coarse.detect(frame)) for n, frame in enumerate(clip) if n % one.fine_every]
    assert all(b >= 3 for b in between) and all(c < b for c, b in zip(coarse_only, between, strict=True))


def test_a_search_that_fails_fails_its_frame_and_the_frames_that_look_again_at_its_candidates() -> None:
    ahead = FacesAhead(FaceFinder(), workers=2)
    try:
        fine = ahead.submit(0, np.zeros((0, 0, 3), np.uint8))  # no pixels: the model cannot run
        between = ahead.submit(1, street(320, 240))
        with pytest.raises(Exception):  # noqa: B017 - whatever ONNX Runtime or OpenCV raises
            fine.result(timeout=60)
        with pytest.raises(Exception):  # noqa: B017
            between.result(timeout=60)
    finally:
        ahead.close()
