"""Recording benchmark: cameras remuxed in real time, disk throughput, playback start, export speed.

    .venv/bin/python bench/bench_recordings.py [--quick] [--processes 2]

Makes a 1080p25 H.264 source (about 4 Mbit/s, a key-frame every 2 s) in a temporary folder, then feeds
its packets to one SegmentRecorder per simulated camera in `--processes` processes (one per core),
alone and alongside the video domain's key-frame health monitoring (each key-frame decoded and given
to a HealthMonitor). Prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np
from rich.console import Console

from safecity.recordings.export import cut
from safecity.recordings.playback import Piece, PlaybackStream, runs
from safecity.recordings.recorder import SegmentInfo, SegmentRecorder

err = Console(stderr=True)
FPS = 25
T0 = datetime(2024, 5, 7, 21, 40, tzinfo=UTC)


def make_source(path: Path, seconds: int) -> Path:
    """Encodes a 1080p25 H.264 test scene with moving detail at about 4 Mbit/s."""
    width, height = 1920, 1080
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = 2 * FPS
        stream.codec_context.bit_rate = 4_000_000
        stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        rng = np.random.default_rng(1)
        base = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        for i in range(seconds * FPS):
            image = np.roll(base, i * 6, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _record(job: tuple[str, str, int, int, bool]) -> dict[str, float]:
    """Records `cameras` cameras from the source in one process; returns packets, bytes and seconds spent."""
    source, root, first, cameras, with_health = job
    Path(root).mkdir(parents=True, exist_ok=True)
    from safecity.video.health import HealthMonitor
    from safecity.video.sources import Frame

    with av.open(source) as container:
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.dts is not None]
        stream.codec_context.skip_frame = "NONKEY"
        now = [0.0]
        recorders = [
            SegmentRecorder(f"cam-{first + i}", Path(root), segment_seconds=10, clock=lambda: now[0])
            for i in range(cameras)
        ]
        monitors = [HealthMonitor(f"cam-{first + i}") for i in range(cameras)]
        started = time.perf_counter()
        cpu = time.process_time()
        t0 = float(packets[0].dts * packets[0].time_base)
        for packet in packets:
            now[0] = T0.timestamp() + float(packet.dts * packet.time_base) - t0
            keyframe = packet.is_keyframe
            for index, recorder in enumerate(recorders):
                recorder.feed(packet)
                if with_health and keyframe:
                    for frame in stream.decode(packet):
                        monitors[index].observe(
                            Frame(
                                pts_seconds=now[0],
                                wall_time=datetime.fromtimestamp(now[0], UTC),
                                keyframe=True,
                                av_frame=frame,
                            )
                        )
        for recorder in recorders:
            recorder.close()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    written = sum(
        p.stat().st_size
        for p in Path(root).rglob("*.ts")
        if p.parent.parent.parent.name in {f"cam-{first + i}" for i in range(cameras)}
    )
    return {"packets": len(packets) * cameras, "bytes": written, "seconds": elapsed, "cpu": cpu}


def remux_capacity(
    source: Path, root: Path, *, cameras: int, processes: int, video_s: float, with_health: bool
) -> dict[str, float]:
    """Runs the recording jobs in parallel; returns cameras kept up with in real time and disk rates."""
    per = max(1, cameras // processes)
    jobs = [(str(source), str(root), i * per, per, with_health) for i in range(processes)]
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.map(_record, jobs)
    wall = max(r["seconds"] for r in results)
    total_cams = per * processes
    bytes_written = sum(r["bytes"] for r in results)
    return {
        "cameras_fed": total_cams,
        "video_seconds_per_camera": video_s,
        "wall_seconds": round(wall, 2),
        "wall_seconds_with_start": round(time.perf_counter() - started, 2),
        "cameras_in_real_time": round(total_cams * video_s / wall, 1),
        # The machine is shared: CPU time says what the recording itself costs, whatever else runs.
        "cpu_seconds": round(sum(r["cpu"] for r in results), 2),
        "cameras_in_real_time_by_cpu": round(sum(per * video_s / r["cpu"] for r in results), 1),
        "packets_per_second": round(sum(r["packets"] for r in results) / wall),
        "disk_mb_per_second_per_camera": round(bytes_written / total_cams / video_s / 1e6, 3),
    }


def playback_start(segments: list[SegmentInfo], *, trials: int) -> dict[str, float]:
    """Times locate + first bytes of playback at random moments (what the page waits for)."""
    pieces = [Piece(s.path, s.start, s.end, (s.codec, s.width, s.height)) for s in segments]
    span = (segments[-1].end - segments[0].start).total_seconds()
    rng = random.Random(7)
    times = []
    for _ in range(trials):
        at = segments[0].start + timedelta(seconds=rng.uniform(0, span - 1))
        started = time.perf_counter()
        locate = PlaybackStream(pieces, at=at, until=at + timedelta(seconds=1))
        locate.start()
        locate.close()
        play = PlaybackStream(pieces, at=at, until=at + timedelta(minutes=10))
        play.start()
        times.append(time.perf_counter() - started)
        play.close()
    times.sort()
    return {
        "trials": trials,
        "median_s": round(statistics.median(times), 4),
        "p95_s": round(times[int(0.95 * (len(times) - 1))], 4),
        "max_s": round(times[-1], 4),
    }


def export_speed(segments: list[SegmentInfo], out: Path) -> dict[str, float]:
    """Times exporting the whole recording of one camera to MP4."""
    pieces = [Piece(s.path, s.start, s.end, (s.codec, s.width, s.height)) for s in segments]
    run = runs(pieces)[0]
    started = time.perf_counter()
    span = cut(run, start=run[0].start, end=run[-1].end, out=out)
    elapsed = time.perf_counter() - started
    assert span is not None
    video_s = (span[1] - span[0]).total_seconds()
    return {
        "video_seconds": round(video_s, 1),
        "seconds": round(elapsed, 3),
        "times_real_time": round(video_s / elapsed, 1),
        "mb_per_second": round(out.stat().st_size / elapsed / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a shorter source and fewer cameras")
    parser.add_argument("--processes", type=int, default=2, help="recording processes (one per core)")
    parser.add_argument("--cameras", type=int, default=None, help="cameras to simulate in all")
    args = parser.parse_args()
    seconds = 6 if args.quick else 20
    cameras = args.cameras or (40 if args.quick else 100)
    with tempfile.TemporaryDirectory(prefix="bench-rec-") as tmp:
        tmp_path = Path(tmp)
        err.log(f"encoding {seconds} s of 1080p25 H.264 …")
        source = make_source(tmp_path / "source.ts", seconds)
        err.log(f"remuxing {cameras} cameras in {args.processes} processes …")
        remux = remux_capacity(
            source,
            tmp_path / "remux",
            cameras=cameras,
            processes=args.processes,
            video_s=seconds,
            with_health=False,
        )
        err.log(f"… again alongside key-frame health monitoring: {remux['cameras_in_real_time']} alone")
        with_health = remux_capacity(
            source,
            tmp_path / "health",
            cameras=cameras,
            processes=args.processes,
            video_s=seconds,
            with_health=True,
        )
        segments: list[SegmentInfo] = []
        recorder = SegmentRecorder(
            "one", tmp_path / "one", segment_seconds=10, on_segment=segments.append, clock=lambda: clock[0]
        )
        (tmp_path / "one").mkdir()
        clock = [T0.timestamp()]
        with av.open(str(source)) as container:
            stream = container.streams.video[0]
            t0 = None
            for packet in container.demux(stream):
                if packet.dts is None:
                    continue
                t = float(packet.dts * packet.time_base)
                t0 = t if t0 is None else t0
                clock[0] = T0.timestamp() + t - t0
                recorder.feed(packet)
        recorder.close()
        err.log("timing playback start and export …")
        playback = playback_start(segments, trials=10 if args.quick else 30)
        exported = export_speed(segments, tmp_path / "export.mp4")
    result = {
        "source": {
            "codec": "h264",
            "size": "1920x1080",
            "fps": FPS,
            "gop_s": 2,
            "target_bitrate_mbit": 4,
            "seconds": seconds,
        },
        "machine_cores": multiprocessing.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "processes": args.processes,
        "remux_only": remux,
        "remux_with_keyframe_health": with_health,
        "disk_mb_per_second_for_200_cameras": round(remux["disk_mb_per_second_per_camera"] * 200, 1),
        "playback_start": playback,
        "export": exported,
        "goals": {"cameras_in_real_time": 200, "playback_start_s": 1.0},
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
