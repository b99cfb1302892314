"""RTSP cameras against a real GStreamer RTSP server on loopback: TCP, UDP, passwords, and cut-offs."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from safecity.video.health import HealthChange
from safecity.video.sources import AuthenticationFailed, open_source
from safecity.video.stream import Backoff, CameraStream
from tests.video.conftest import RtspServer, need_rtsp


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp_stream_arrives_live_over_either_transport(rtsp_server: RtspServer, transport: str) -> None:
    source = open_source(rtsp_server.url, transport=transport, timeout_s=5)  # type: ignore[arg-type]
    assert (source.info.codec, source.info.width, source.info.height, source.info.live) == (
        "h264",
        320,
        180,
        True,
    )
    frames = []
    for frame in source.frames():
        frames.append(frame)
        if len(frames) == 25:
            break
    source.close()
    # Wall-clock times follow the camera's own timestamps, not the bursty arrival after probing.
    span = (frames[-1].wall_time - frames[0].wall_time).total_seconds()
    assert span == pytest.approx(24 / 25, abs=0.05)
    assert abs((frames[-1].wall_time - datetime.now(UTC)).total_seconds()) < 3


def test_rtsp_wrong_password_is_named(street_clip: Path) -> None:
    need_rtsp()
    server = RtspServer(street_clip, user="operator", password="right")
    try:
        with pytest.raises(AuthenticationFailed, match="user name or password"):
            open_source(server.url, username="operator", password="wrong")
        source = open_source(server.url, username="operator", password="right")
        assert next(iter(source.frames())).image.shape == (180, 320, 3)
        source.close()
    finally:
        server.cut()


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_cutting_the_rtsp_server_marks_the_camera_offline_within_ten_seconds(
    rtsp_server: RtspServer, transport: str
) -> None:
    changes: list[HealthChange] = []
    stream = CameraStream(
        "cam-r",
        rtsp_server.url,
        analysis_fps=None,
        transport=transport,  # type: ignore[arg-type]
        on_health=changes.append,
        timeout_s=3,
        backoff=Backoff(initial_s=0.5, max_s=2),
    )
    stream.start()
    deadline = time.monotonic() + 8
    while stream.state != "online" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stream.state == "online"
    rtsp_server.cut()
    cut_at = time.monotonic()
    while stream.state != "offline" and time.monotonic() < cut_at + 12:
        time.sleep(0.05)
    took = time.monotonic() - cut_at
    stream.stop()
    assert stream.state == "offline" and took < 10
    assert "reconnecting" in [c.state for c in changes]
