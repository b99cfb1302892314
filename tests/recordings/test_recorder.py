"""Continuous recording: segments cut at key-frames, gaps visible, nothing corrupt, bad disks handled."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest
from sqlalchemy import select

from safecity.core.context import Context
from safecity.recordings import service
from safecity.recordings.models import RecorderStatus, RecordingSegment
from safecity.recordings.recorder import RecorderPool, SegmentInfo, SegmentRecorder
from tests.recordings.recordings_support import T0, FakeClock, add_camera, encode, feed_file


def _decodable_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_packets_are_remuxed_into_keyframe_segments_that_all_play(tmp_path: Path, clip_file: Path) -> None:
    clock = FakeClock()
    written: list[SegmentInfo] = []
    recorder = SegmentRecorder("cam-1", tmp_path, segment_seconds=1.0, clock=clock, on_segment=written.append)
    fed = feed_file(recorder, clip_file, clock)
    recorder.close()

    assert len(written) == 4  # four seconds, a key-frame every second
    assert sum(s.packets for s in written) == fed
    assert sum(_decodable_frames(s.path) for s in written) == fed
    for before, after in itertools.pairwise(written):
        assert abs((after.start - before.end).total_seconds()) < 0.05  # back to back, no gap
    assert written[0].start == T0
    assert (written[0].codec, written[0].width, written[0].height) == ("h264", 320, 240)
    assert not list(tmp_path.rglob("*.part"))


def test_recording_leaves_the_packets_unchanged_for_the_analysis_that_decodes_them(
    tmp_path: Path, clip_file: Path
) -> None:
    clock = FakeClock()
    recorder = SegmentRecorder("cam-1", tmp_path, segment_seconds=1.0, clock=clock)
    decoded = 0
    with av.open(str(clip_file)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            before = (packet.pts, packet.dts, packet.time_base, packet.stream)
            if packet.dts is not None:
                recorder.feed(packet)
            assert (packet.pts, packet.dts, packet.time_base, packet.stream) == before
            decoded += len(stream.decode(packet))
    recorder.close()
    assert decoded == 100


def test_a_camera_that_drops_and_returns_leaves_a_gap_between_whole_segments(
    tmp_path: Path, clip_file: Path
) -> None:
    clock = FakeClock()
    written: list[SegmentInfo] = []
    recorder = SegmentRecorder("cam-1", tmp_path, segment_seconds=60, clock=clock, on_segment=written.append)
    feed_file(recorder, clip_file, clock)
    clock.now += 20  # the camera is gone for twenty seconds…
    assert recorder.close_if_idle() is not None  # …and the pool's tick closes its segment meanwhile
    assert recorder.state == "stopped"
    feed_file(recorder, clip_file, clock)  # …then reconnects (a new stream, timestamps from zero)
    recorder.close()

    assert len(written) == 2
    gap = (written[1].start - written[0].end).total_seconds()
    assert 19 < gap < 21
    assert all(_decodable_frames(s.path) == 100 for s in written)


def test_a_resolution_or_codec_change_mid_stream_starts_a_new_segment(tmp_path: Path) -> None:
    small = encode(tmp_path / "small.mp4", seconds=2, size=(320, 240))
    large = encode(tmp_path / "large.mp4", seconds=2, size=(640, 360))
    hevc = encode(tmp_path / "hevc.mkv", seconds=2, size=(320, 240), codec="libx265")
    clock = FakeClock()
    written: list[SegmentInfo] = []
    recorder = SegmentRecorder(
        "cam-1", tmp_path / "rec", segment_seconds=60, clock=clock, on_segment=written.append
    )
    (tmp_path / "rec").mkdir()
    for source in (small, large, hevc):
        feed_file(recorder, source, clock)
    recorder.close()

    assert [(s.codec, s.width, s.height) for s in written] == [
        ("h264", 320, 240),
        ("h264", 640, 360),
        ("hevc", 320, 240),
    ]
    assert [_decodable_frames(s.path) for s in written] == [50, 50, 50]


def test_a_crash_leaves_a_part_file_that_recovery_indexes_without_losing_footage(
    tmp_path: Path, clip_file: Path
) -> None:
    clock = FakeClock()
    crashed = SegmentRecorder("cam-1", tmp_path, segment_seconds=60, clock=clock)
    feed_file(crashed, clip_file, clock)
    crashed._out.close()  # the process dies: the container is never finalised nor renamed
    parts = list(tmp_path.rglob("*.ts.part"))
    assert len(parts) == 1

    recovered = SegmentRecorder("cam-1", tmp_path, clock=clock).recover()

    assert len(recovered) == 1
    assert recovered[0].start == T0
    assert 3.9 < (recovered[0].end - recovered[0].start).total_seconds() < 4.1
    assert _decodable_frames(recovered[0].path) == 100
    assert not list(tmp_path.rglob("*.part"))


def test_a_volume_that_disappears_is_reported_and_other_cameras_keep_recording(
    tmp_path: Path, clip_file: Path
) -> None:
    clock = FakeClock()
    lost_root, good_root = tmp_path / "lost", tmp_path / "good"
    lost_root.mkdir()
    good_root.mkdir()
    states: list[tuple[str, str]] = []
    lost = SegmentRecorder(
        "cam-1", lost_root, segment_seconds=1.0, clock=clock, on_state=lambda _c, s, d: states.append((s, d))
    )
    good_written: list[SegmentInfo] = []
    good = SegmentRecorder(
        "cam-2", good_root, segment_seconds=1.0, clock=clock, on_segment=good_written.append
    )
    with av.open(str(clip_file)) as container:
        stream = container.streams.video[0]
        for i, packet in enumerate(p for p in container.demux(stream) if p.dts is not None):
            clock.now = T0.timestamp() + i * 0.04
            if i == 50:
                shutil.rmtree(lost_root)  # the disk is pulled mid-recording
            lost.feed(packet)
            good.feed(packet)
    lost.close()
    good.close()

    assert lost.state == "volume_missing"
    assert "vanished" in lost.detail or "not there" in lost.detail
    assert ("recording", "") in states
    assert len(good_written) == 4
    assert sum(_decodable_frames(s.path) for s in good_written) == 100


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Path:
    """A real 1 MiB file system (tmpfs); skips where mounting is not allowed."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_sets_disk_full_and_keeps_everything_already_written(
    tiny_disk: Path, tmp_path: Path
) -> None:
    big = encode(tmp_path / "big.mp4", seconds=8, size=(640, 480))
    clock = FakeClock()
    written: list[SegmentInfo] = []
    recorder = SegmentRecorder(
        "cam-1", tiny_disk, segment_seconds=1.0, clock=clock, on_segment=written.append
    )
    feed_file(recorder, big, clock)
    recorder.close()

    assert recorder.state == "disk_full"
    assert "full" in recorder.detail
    assert written, "the segments written before the disk filled are kept"
    for seg in written:
        assert seg.path.exists()
        assert _decodable_frames(seg.path) >= 1


def test_pool_indexes_segments_and_honours_the_per_camera_switch(
    ctx: Context, clip_file: Path, clock: FakeClock
) -> None:
    add_camera(ctx, "cam-on")
    add_camera(ctx, "cam-off", record=False)
    pool = RecorderPool(ctx, segment_seconds=1.0, clock=clock)
    assert pool.for_camera("cam-off") is None
    recorder = pool.for_camera("cam-on")
    assert recorder is not None
    assert pool.for_camera("cam-on") is recorder
    feed_file(recorder, clip_file, clock)
    pool.close()

    with ctx.db.session() as session:
        rows = session.scalars(select(RecordingSegment).order_by(RecordingSegment.start)).all()
        state = session.get(RecorderStatus, "cam-on")
        assert len(rows) == 4
        assert rows[0].start == T0 and rows[0].volume == "default"
        assert all(service.segment_file(session, r, ctx.settings).exists() for r in rows)
        assert state is not None and state.state == "stopped"
    assert (ctx.settings.data_dir / "recordings" / "cam-on").is_dir()
    assert datetime.fromtimestamp(clock.now, UTC) > T0
