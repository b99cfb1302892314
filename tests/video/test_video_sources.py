"""Sources: frames from files, HTTP MJPEG and registered schemes, decoded only as far as asked."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from safecity.video.sources import (
    AuthenticationFailed,
    CameraUnreachable,
    Frame,
    NotVideo,
    SourceInfo,
    SourceOptions,
    StreamCorrupt,
    open_source,
    redact,
    register_scheme,
)
from tests.video.conftest import MjpegServer


def test_file_source_reports_codec_size_and_rate(street_clip: Path) -> None:
    source = open_source(str(street_clip))
    assert source.info == SourceInfo(codec="h264", width=320, height=180, fps=25.0, live=False)
    source.close()


def test_every_frame_has_stream_time_wall_time_and_picture(street_clip: Path) -> None:
    frames = list(open_source(f"file://{street_clip}").frames())
    assert len(frames) == 30 * 25
    assert [f.index for f in frames] == sorted(f.index for f in frames)
    assert frames[-1].pts_seconds == pytest.approx(30 - 1 / 25)
    assert all(f.wall_time.tzinfo is not None for f in frames)
    gaps = [(b.wall_time - a.wall_time).total_seconds() for a, b in itertools.pairwise(frames)]
    assert all(gap == pytest.approx(1 / 25, abs=1e-3) for gap in gaps)
    assert frames[0].image.shape == (180, 320, 3) and frames[0].image.dtype == np.uint8
    assert frames[0].gray(160).shape == (90, 160)


def test_keyframes_mode_decodes_one_frame_per_group_but_counts_them_all(street_clip: Path) -> None:
    frames = list(open_source(str(street_clip), decode="keyframes").frames())
    assert len(frames) == 30  # one key-frame a second
    assert all(f.keyframe for f in frames)
    assert frames[-1].index >= 29 * 25  # the position still counts the frames not decoded


def test_recorder_gets_every_packet_even_those_not_decoded(street_clip: Path) -> None:
    packets = []
    frames = list(open_source(str(street_clip), decode="keyframes", on_packet=packets.append).frames())
    assert len(packets) == 30 * 25 and len(frames) == 30
    assert packets[0].stream.codec_context.name == "h264" and packets[0].is_keyframe


def test_missing_file_is_unreachable_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(CameraUnreachable, match="no such file"):
        open_source(str(tmp_path / "nothing.mp4"))


def test_garbage_file_is_not_video(tmp_path: Path) -> None:
    path = tmp_path / "garbage.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(NotVideo, match="not a video file"):
        open_source(str(path))


def test_truncated_file_says_so(street_clip: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.mp4"
    path.write_bytes(street_clip.read_bytes()[: street_clip.stat().st_size // 2])
    with pytest.raises((NotVideo, StreamCorrupt), match=r"cut short|truncated"):
        list(open_source(str(path)).frames())


def test_garbled_middle_of_a_file_does_not_crash(street_clip: Path, tmp_path: Path) -> None:
    data = bytearray(street_clip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 20_000] = (
        np.random.default_rng(1).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    )
    path = tmp_path / "garbled.mp4"
    path.write_bytes(bytes(data))
    try:
        frames = sum(1 for _ in open_source(str(path)).frames())
    except StreamCorrupt:
        return
    assert frames > 0


def test_refused_connection_is_unreachable() -> None:
    with pytest.raises(CameraUnreachable, match="refused the connection"):
        open_source("rtsp://127.0.0.1:9/stream", timeout_s=2)


def test_mjpeg_camera_over_http_with_credentials(mjpeg_server: MjpegServer) -> None:
    source = open_source(mjpeg_server.url, username="viewer", password="secret", timeout_s=3)
    assert source.info.codec == "mjpeg" and source.info.live
    frames = []
    for frame in source.frames():
        frames.append(frame)
        if len(frames) == 8:
            break
    source.close()
    assert frames[0].image.shape == (120, 160, 3)
    span = (frames[-1].wall_time - frames[0].wall_time).total_seconds()
    assert 0.4 < span < 1.5  # 7 intervals at 10 fps, timed by arrival


def test_wrong_password_is_named_and_never_shown(mjpeg_server: MjpegServer) -> None:
    with pytest.raises(AuthenticationFailed, match="user name or password") as caught:
        open_source(mjpeg_server.url, username="viewer", password="guess", timeout_s=3)
    assert "guess" not in str(caught.value)


def test_camera_web_page_is_not_video(mjpeg_server: MjpegServer) -> None:
    with pytest.raises(NotVideo, match="web page"):
        open_source(f"http://127.0.0.1:{mjpeg_server.port}/page", timeout_s=3)


def test_cutting_the_server_ends_the_stream_with_an_error(mjpeg_server: MjpegServer) -> None:
    source = open_source(mjpeg_server.url, username="viewer", password="secret", timeout_s=3)
    frames = source.frames()
    next(frames)
    mjpeg_server.cut()
    with pytest.raises(CameraUnreachable) as caught:
        for _ in frames:
            pass
    assert "secret" not in str(caught.value)


def test_registered_scheme_supplies_its_own_frames() -> None:
    class Still:
        info = SourceInfo(codec="synthetic", width=64, height=48, fps=5.0)

        def __init__(self, url: str, options: SourceOptions) -> None:
            self.url, self.options = url, options

        def open(self) -> None:
            pass

        def frames(self) -> Iterator[Frame]:
            for i in range(3):
                yield Frame(
                    np.zeros((48, 64, 3), np.uint8), pts_seconds=i / 5, wall_time=datetime.now(UTC), index=i
                )

        def close(self) -> None:
            pass

    register_scheme("still", Still)
    source = open_source("still://junction-4", decode="keyframes")
    assert isinstance(source, Still) and source.options.decode == "keyframes"
    assert [f.index for f in source.frames()] == [0, 1, 2]


def test_redact_hides_only_the_password() -> None:
    assert redact("rtsp://admin:hunter2@10.0.0.7:554/s1") == "rtsp://admin:***@10.0.0.7:554/s1"
    assert redact("rtsp://10.0.0.7/s1") == "rtsp://10.0.0.7/s1"
