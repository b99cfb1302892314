"""Fixtures of the recording tests: a test clip, a hand-moved clock, cameras with recorded footage."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from safecity.core.context import Context
from safecity.recordings.recorder import RecorderPool
from tests.recordings.recordings_support import T0, FakeClock, Recorded, add_camera, encode, feed_file


@pytest.fixture
def clip_file(tmp_path: Path) -> Path:
    """Four seconds of 320x240 H.264, 25 fps, a key-frame every second."""
    return encode(tmp_path / "clip.mp4")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def record(ctx: Context, clock: FakeClock, tmp_path: Path) -> Iterator[Callable[..., Recorded]]:
    """Returns a function that registers a camera and records `seconds` of footage from T0 (or `start`),
    a key-frame every `gop` frames (25 a second)."""
    pools: list[RecorderPool] = []
    made: dict[tuple[float, int], Path] = {}

    def _record(
        camera_id: str,
        *,
        seconds: float = 8.0,
        start: datetime = T0,
        segment_seconds: float = 2.0,
        gop: int = 25,
        register: bool = True,
        **camera: object,
    ) -> Recorded:
        if register:
            add_camera(ctx, camera_id, **camera)  # type: ignore[arg-type]
        if (seconds, gop) not in made:
            made[seconds, gop] = encode(tmp_path / f"src-{seconds}-{gop}.mp4", seconds=seconds, gop=gop)
        pool = RecorderPool(ctx, segment_seconds=segment_seconds, clock=clock)
        pools.append(pool)
        recorder = pool.for_camera(camera_id)
        assert recorder is not None
        clock.now = start.timestamp()
        feed_file(recorder, made[seconds, gop], clock)
        recorder.close()
        end = datetime.fromtimestamp(clock.now, UTC)
        return Recorded(camera_id, start, end, pool)

    yield _record
    for pool in pools:
        pool.close()
