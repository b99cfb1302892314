"""Streams that cannot be read: the maintenance view says what is wrong in plain words, nothing crashes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from safecity.core.context import Context
from safecity.core.errors import SafeCityError
from safecity.video.footage import write_footage
from safecity.video.health import HealthMonitor
from safecity.video.sources import open_source
from tests.maintenance.maintenance_support import add_camera, publish


def garbage(tmp: Path) -> str:
    path = tmp / "garbage.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    return str(path)


def truncated(tmp: Path) -> str:
    clip = tmp / "clip.mp4"
    write_footage(clip, [("normal", 4)], width=160, height=90)
    path = tmp / "cut.mp4"
    path.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    return str(path)


@pytest.mark.parametrize(
    ("make_url", "words"),
    [
        (lambda tmp: "rtsp://127.0.0.1:1/stream", "refused the connection"),
        (garbage, "not a video file"),
        (truncated, "cut short"),
    ],
    ids=["unreachable-host", "not-video", "truncated-file"],
)
def test_a_stream_that_cannot_be_read_says_why_on_the_maintenance_view(
    client: TestClient,
    ctx: Context,
    admin: dict[str, str],
    tmp_path: Path,
    make_url: Callable[[Path], str],
    words: str,
) -> None:
    add_camera(ctx, "cam-1")
    url = make_url(tmp_path)
    monitor = HealthMonitor("cam-1")
    with pytest.raises(SafeCityError) as failure:
        source = open_source(url, timeout_s=2)
        for _ in source.frames():
            pass
    change = monitor.observe_failure(failure.value)
    assert change is not None
    publish(client, ctx, change.to_event())

    [row] = client.get("/api/maintenance/cameras", headers=admin).json()
    assert row["state"] == "offline"
    assert words in row["detail"]
    assert row["open_fault"]["detail"] == row["detail"]
