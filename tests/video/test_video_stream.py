"""Camera streams: each camera in its own thread, sampled and gated, surviving failures of others."""

from __future__ import annotations

import time
from pathlib import Path

from safecity.video.health import HealthChange
from safecity.video.sources import Frame
from safecity.video.stream import Backoff, CameraStream, StreamGroup
from tests.video.conftest import MjpegServer


def _wait_for(condition, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_backoff_doubles_with_jitter_up_to_its_ceiling() -> None:
    backoff = Backoff(initial_s=0.5, max_s=8, jitter=0.25)
    assert [round(backoff.delay(n, None) / (0.5 * 2**n), 1) <= 1.25 for n in range(4)] == [True] * 4
    assert 6 <= backoff.delay(10) <= 10
    assert len({round(backoff.delay(3), 6) for _ in range(20)}) > 1  # cameras do not retry in lock-step


def test_file_camera_is_analysed_at_its_own_rate_in_real_time(street_clip: Path) -> None:
    frames: list[Frame] = []
    health: list[HealthChange] = []
    stream = CameraStream(
        "cam-a",
        str(street_clip),
        analysis_fps=5,
        motion_gate=False,
        on_frame=frames.append,
        on_health=health.append,
    )
    stream.start()
    time.sleep(2.0)
    stream.stop()
    assert 8 <= len(frames) <= 12  # 5 fps for 2 s, paced like a live camera
    assert stream.frames_read >= 40
    assert [h.state for h in health][:1] == ["online"]


def test_one_dead_camera_and_a_failing_handler_do_not_disturb_the_others(
    street_clip: Path, mjpeg_server: MjpegServer
) -> None:
    seen: dict[str, int] = {"file": 0, "mjpeg": 0}
    changes: list[HealthChange] = []

    def count(name: str):  # type: ignore[no-untyped-def]
        def handler(frame: Frame) -> None:
            seen[name] += 1
            if seen[name] == 2:
                raise RuntimeError("analysis bug")

        return handler

    group = StreamGroup(
        [
            CameraStream(
                "dead",
                "rtsp://127.0.0.1:9/none",
                on_health=changes.append,
                timeout_s=1,
                backoff=Backoff(initial_s=0.1, max_s=0.5),
            ),
            CameraStream("file", str(street_clip), analysis_fps=5, motion_gate=False, on_frame=count("file")),
            CameraStream(
                "mjpeg",
                mjpeg_server.url,
                username="viewer",
                password="secret",
                analysis_fps=5,
                motion_gate=False,
                on_frame=count("mjpeg"),
            ),
        ]
    )
    group.start()
    assert _wait_for(lambda: seen["file"] > 5 and seen["mjpeg"] > 5, 8)
    group.stop()
    states = group.states()
    assert states["dead"] == "offline" and states["file"] == "online" and states["mjpeg"] == "online"
    assert changes[0].state == "offline" and "refused" in changes[0].detail
    assert group.streams["dead"].attempts >= 3


def test_cut_mjpeg_camera_shows_offline_within_ten_seconds(mjpeg_server: MjpegServer) -> None:
    changes: list[HealthChange] = []
    stream = CameraStream(
        "cam-m",
        mjpeg_server.url,
        username="viewer",
        password="secret",
        analysis_fps=None,
        on_health=changes.append,
        timeout_s=3,
    )
    stream.start()
    assert _wait_for(lambda: stream.state == "online", 5)
    cut_at = time.monotonic()
    mjpeg_server.cut()
    assert _wait_for(lambda: stream.state == "offline", 10)
    took = time.monotonic() - cut_at
    stream.stop()
    assert took < 10
    assert [c.state for c in changes] == ["online", "reconnecting", "offline"]
