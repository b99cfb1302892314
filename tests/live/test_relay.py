"""The worker's relay: a camera's own H.264 packets become fragmented MP4 a browser plays, only while
someone watches, without ever holding up the camera's thread; other codecs become pictures."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np

from safecity.demo.scenes import H264Encoder
from safecity.live import protocol, stamp
from safecity.live.fmp4 import TIMESCALE
from safecity.live.relay import LiveChannel
from safecity.video.footage import write_footage
from safecity.video.sources import open_source
from tests.live.live_support import decode, feed_h264, kinds, picture, write_hevc


class Sink:
    """What a channel sent, with a switch to refuse messages (a full bus queue)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.refuse = False

    def __call__(self, message: bytes) -> bool:
        if self.refuse:
            return False
        self.messages.append(message)
        return True


def test_a_joining_viewer_gets_the_init_and_the_frames_since_the_key_frame_and_they_play() -> None:
    sink = Sink()
    channel = LiveChannel("cam-1", "main", sink)
    feed_h264(channel.feed, 25)  # key-frames at 0 and 20
    assert sink.messages == []  # nobody watching: nothing packaged, nothing sent
    channel.want(start=True)
    assert kinds(sink.messages) == [protocol.INIT] + [protocol.FRAGMENT] * 5
    assert all(protocol.header(m).replay for m in sink.messages)
    assert protocol.header(sink.messages[1]).key
    feed_h264(channel.feed, 10, start=25)
    frames = decode(sink.messages)
    assert len(frames) >= 14  # the encoder's last frames are flushed at its close
    meta = protocol.init_meta(sink.messages[0])
    assert meta["codec"].startswith("avc1.")
    # The page places the first fragment's decode time (ticks of this timescale) at time 0.
    assert meta["timescale"] == TIMESCALE


def test_mp4_files_length_prefixed_h264_is_relayed_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "street.mp4"
    write_footage(path, [("normal", 2.0)], fps=10, gop=10)
    sink = Sink()
    channel = LiveChannel("cam-file", "main", sink)
    channel.want(start=True)
    source = open_source(str(path), decode="keyframes", on_packet=channel.feed)
    for _ in source.frames():
        pass
    source.close()
    assert len(decode(sink.messages)) == 20


def test_b_frames_keep_their_display_order(tmp_path: Path) -> None:
    path = tmp_path / "bframes.mp4"
    write_footage(path, [("normal", 2.0)], fps=10, gop=10, bframes=2)
    sink = Sink()
    channel = LiveChannel("cam-b", "main", sink)
    channel.want(start=True)
    source = open_source(str(path), decode="keyframes", on_packet=channel.feed)
    for _ in source.frames():
        pass
    source.close()
    with av.open(str(path)) as original:
        expected = [f.pts * f.time_base for f in original.decode(video=0)]
    frames = decode(sink.messages)
    shown = [f.pts * f.time_base for f in frames]
    assert len(frames) == len(expected) == 20
    assert [t - shown[0] for t in shown] == [t - expected[0] for t in expected]


def test_each_frame_goes_out_as_it_arrives_and_the_timeline_runs_on_across_a_reconnection() -> None:
    sink = Sink()
    channel = LiveChannel("cam-1", "main", sink)
    channel.want(start=True)
    feed_h264(channel.feed, 20)
    sent = len(sink.messages)
    feed_h264(channel.feed, 20)  # a new connection: its own stream, its clock from zero again
    new = sink.messages[sent:]
    assert protocol.INIT not in kinds(new)  # the same parameters: no new init, one timeline
    times = [protocol.header(m).seq for m in sink.messages if m[0] == protocol.FRAGMENT]
    assert times == sorted(times) and len(set(times)) == len(times)
    frames = decode(sink.messages)
    assert len(frames) == 40
    pts = [f.pts for f in frames]
    assert pts == sorted(pts)


def test_a_dropped_message_restarts_its_viewers_at_the_next_key_frame() -> None:
    sink = Sink()
    channel = LiveChannel("cam-1", "main", sink)
    channel.want(start=True)
    feed_h264(channel.feed, 5)
    sink.refuse = True
    feed_h264(channel.feed, 1, start=5)
    sink.refuse = False
    before = len(sink.messages)
    feed_h264(channel.feed, 25, start=6)
    after = sink.messages[before:]
    assert after and protocol.header(after[0]).key  # nothing undecodable between the drop and the key


def test_the_camera_thread_never_waits_for_the_viewers() -> None:
    slow = Sink()
    channel = LiveChannel("cam-1", "main", slow)
    channel.want(start=True)
    started = time.perf_counter()
    feed_h264(channel.feed, 50)
    with_viewer = time.perf_counter() - started
    quiet = LiveChannel("cam-2", "main", Sink())
    started = time.perf_counter()
    feed_h264(quiet.feed, 50)
    without = time.perf_counter() - started
    # Packaging is a few microseconds a frame next to encoding the picture: no measurable difference.
    assert with_viewer < without * 1.5 + 0.05


def test_h265_goes_out_as_pictures_and_says_why(tmp_path: Path) -> None:
    path = write_hevc(tmp_path / "hevc.mp4")
    sink = Sink()
    with ThreadPoolExecutor(1) as pool:
        channel = LiveChannel("cam-h265", "main", sink, pictures=pool, picture_every_s=0.0)
        channel.want(start=True)
        source = open_source(str(path), decode="keyframes", on_packet=channel.feed)
        for _ in source.frames():
            pass
        source.close()
    states = [protocol.state_of(m) for m in sink.messages if m[0] == protocol.STATE]
    assert states[0]["state"] == "unplayable" and "H.265" in states[0]["detail"]
    pictures = [m for m in sink.messages if m[0] == protocol.PICTURE]
    assert pictures and protocol.FRAGMENT not in kinds(sink.messages)
    with av.open(io.BytesIO(protocol.payload(pictures[-1])), format="mjpeg") as image:
        assert next(image.decode(video=0)).width == 640


def test_a_health_change_reaches_the_viewers_and_a_joining_one_learns_it() -> None:
    sink = Sink()
    channel = LiveChannel("cam-1", "main", sink)
    channel.state("offline", "refused the connection")
    assert sink.messages == []
    channel.want(start=True)
    assert protocol.state_of(sink.messages[0]) == {
        "state": "offline",
        "detail": "refused the connection",
        "health": True,
    }


def test_the_time_stamp_survives_h264() -> None:
    sink = Sink()
    channel = LiveChannel("cam-1", "main", sink)
    channel.want(start=True)
    moments = [1_767_225_600_123 + i * 100 for i in range(12)]
    encoder = H264Encoder(10, channel.feed)
    for i, ms in enumerate(moments):
        image = picture(i)
        stamp.stamp(image, ms)
        encoder.encode(image, i / 10)
    encoder.close()
    read = [stamp.read(np.asarray(f.to_ndarray(format="bgr24"))) for f in decode(sink.messages)]
    assert read == [ms & 0xFFFFFFFF for ms in moments]
    assert stamp.read(np.zeros((64, 640, 3), np.uint8)) is None
