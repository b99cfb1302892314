"""Sampling picks each camera's analysis rate by timestamp; the motion gate passes only moving regions."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np
import pytest

from safecity.video.motion import MotionGate
from safecity.video.sampling import Sampler
from safecity.video.sources import Frame


def test_five_of_twenty_five_frames_each_second() -> None:
    sampler = Sampler(5.0)
    taken = [i for i in range(250) if sampler.take(i / 25)]
    assert len(taken) == 50
    assert all(b - a == 5 for a, b in itertools.pairwise(taken))


def test_jittery_timestamps_keep_the_long_run_rate() -> None:
    rng = np.random.default_rng(3)
    sampler = Sampler(5.0)
    times = np.arange(0, 60, 1 / 25) + rng.uniform(-0.01, 0.01, 1500)
    assert sum(sampler.take(float(t)) for t in times) == pytest.approx(300, abs=3)


def test_slower_camera_than_target_gives_every_frame() -> None:
    sampler = Sampler(5.0)
    assert all(sampler.take(i / 2) for i in range(20))


def test_clock_restart_takes_the_next_frame() -> None:
    sampler = Sampler(1.0)
    assert [sampler.take(t) for t in (100.0, 100.5, 101.0, 0.2, 0.6, 1.2)] == [
        True,
        False,
        True,
        True,
        False,
        True,
    ]


def _frame(image: np.ndarray, i: int) -> Frame:
    return Frame(image, pts_seconds=i / 5, wall_time=datetime.now(UTC), index=i)


def _scene(box_x: int) -> np.ndarray:
    image = np.full((360, 640, 3), 90, np.uint8)
    image[200:260, box_x : box_x + 80] = 230  # a vehicle in the lower half
    return image


def test_static_scene_has_no_motion_after_the_first_frame() -> None:
    gate = MotionGate()
    assert gate.check(_frame(_scene(100), 0))
    assert not any(gate.check(_frame(_scene(100), i)) for i in range(1, 10))
    assert gate.fraction == 0.0


def test_moving_vehicle_inside_the_region_passes() -> None:
    gate = MotionGate(roi_polygon=[[0, 180], [640, 180], [640, 360], [0, 360]])
    gate.check(_frame(_scene(100), 0))
    assert gate.check(_frame(_scene(160), 1))
    assert gate.fraction > 0.01


def test_motion_outside_the_region_is_ignored() -> None:
    gate = MotionGate(roi_polygon=[[0, 0], [640, 0], [640, 150], [0, 150]])  # the sky only
    gate.check(_frame(_scene(100), 0))
    assert not gate.check(_frame(_scene(160), 1))
