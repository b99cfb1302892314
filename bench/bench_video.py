"""Video ingestion benchmark: how many 1080p25 H.264 cameras this machine sustains, per decode strategy.

Encodes a 1080p25 street clip (2 s key-frame interval, like most IP cameras) in a temporary folder,
then measures side by side, in interleaved rounds so machine load hits all alike:
  decode_all_bgr      decode every frame and convert each to BGR (the naive baseline)
  analysis_all        decode every frame; sample 5 fps; motion gate on a small grey copy; BGR only
                      for sampled frames with motion (what a 5 fps analysis pipeline needs)
  analysis_nonref     the same, skipping non-reference frames at the decoder
  health_keyframes    decode key-frames only; health checks on a small grey copy
Each strategy runs in as many threads as there are cores, looping over the clip; the figure is
stream seconds processed per wall second, i.e. cameras sustained in real time (detector cost not
included), and, since other work on a shared machine steals wall time, also stream seconds per CPU
second times the cores: what the machine would sustain if it were otherwise idle. Then it checks
the two goals live: 100 health-only cameras and 8 analysis cameras paced at 25 fps for a while,
reporting how far behind its own timestamp each camera's worst frame was handled after a warm-up
(when every camera opens its stream at once).

    .venv/bin/python bench/bench_video.py [--seconds 12] [--round-s 4] [--rounds 3] [--bframes 0]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from safecity.video.footage import write_footage
from safecity.video.health import HealthMonitor
from safecity.video.motion import MotionGate
from safecity.video.sampling import Sampler
from safecity.video.sources import Decode, Frame, open_source
from safecity.video.stream import CameraStream

err = Console(stderr=True)


def _pipeline(strategy: str) -> tuple[Decode, Callable[[], Callable[[Frame], None]]]:
    """Returns the decode mode and a factory of per-camera frame handlers for `strategy`."""
    if strategy == "decode_all_bgr":

        def convert() -> Callable[[Frame], None]:
            def handle(frame: Frame) -> None:
                frame.image  # noqa: B018 - converting every frame is the point of this baseline

            return handle

        return "all", convert

    if strategy == "health_keyframes":

        def health() -> Callable[[Frame], None]:
            monitor = HealthMonitor("bench")

            def handle(frame: Frame) -> None:
                monitor.observe(frame)

            return handle

        return "keyframes", health

    def analysis() -> Callable[[Frame], None]:
        sampler, gate, monitor = Sampler(5.0), MotionGate(), HealthMonitor("bench")

        def handle(frame: Frame) -> None:
            monitor.observe(frame)
            if sampler.take(frame.pts_seconds) and gate.check(frame):
                frame.image  # noqa: B018 - the BGR picture a detector would be given

        return handle

    return ("nonref" if strategy == "analysis_nonref" else "all"), analysis


def throughput(path: Path, strategy: str, seconds: float, threads: int) -> tuple[float, float]:
    """Returns stream seconds processed per wall second and per CPU second by `threads` looping cameras."""
    decode, make_handler = _pipeline(strategy)
    done = [0.0] * threads
    deadline = time.monotonic() + seconds

    def camera(slot: int) -> None:
        handler = make_handler()
        while time.monotonic() < deadline:
            source = open_source(str(path), decode=decode)
            previous = 0.0
            for frame in source.frames():
                handler(frame)
                done[slot] += max(0.0, frame.pts_seconds - previous)
                previous = frame.pts_seconds
                if time.monotonic() >= deadline:
                    break
            source.close()

    started, cpu_started = time.monotonic(), time.process_time()
    workers = [threading.Thread(target=camera, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / (time.monotonic() - started), sum(done) / (time.process_time() - cpu_started)


def live(
    path: Path, cameras: int, analysis_fps: float | None, seconds: float, warmup_s: float = 5.0
) -> dict[str, object]:
    """Runs `cameras` paced cameras at once; returns how far behind real time their frames were handled."""
    analysed = [0]

    def on_frame(frame: Frame) -> None:
        frame.image  # noqa: B018 - the BGR picture a detector would be given
        analysed[0] += 1

    streams = [
        CameraStream(
            f"cam-{i}", str(path), analysis_fps=analysis_fps, on_frame=on_frame if analysis_fps else None
        )
        for i in range(cameras)
    ]
    for stream in streams:
        stream.start()
    time.sleep(warmup_s)  # every camera opening its stream at once is a one-off; judge the steady state
    for stream in streams:
        stream.max_lag_s = 0.0
    analysed[0] = 0
    time.sleep(seconds)
    lags = sorted(stream.max_lag_s for stream in streams)
    states = [stream.state for stream in streams]
    for stream in streams:
        stream.signal_stop()
    for stream in streams:
        stream.join(10)
    report: dict[str, object] = {
        "cameras": cameras,
        "seconds": seconds,
        "warmup_s": warmup_s,
        "states": {state: states.count(state) for state in set(states)},
        "max_lag_per_camera_median_s": round(statistics.median(lags), 2),
        "max_lag_worst_camera_s": round(lags[-1], 2),
    }
    if analysis_fps:
        report["analysed_fps_per_camera"] = round(analysed[0] / cameras / seconds, 2)
    return report


def main() -> None:
    """Runs the benchmark and prints one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=12.0, help="length of the generated clip")
    parser.add_argument("--round-s", type=float, default=4.0, help="seconds per strategy per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bframes", type=int, default=0, help="B-frames in the clip (IP cameras: 0)")
    parser.add_argument("--kbps", type=int, default=4000, help="bit rate of the clip (cameras: 2000-6000)")
    parser.add_argument("--live-s", type=float, default=15.0, help="seconds of the live checks (0: skip)")
    parser.add_argument(
        "--quick", action="store_true", help="one short round per strategy, short live checks"
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.round_s, args.rounds, args.live_s = 6.0, 2.0, 1, 5.0
    threads = os.cpu_count() or 2
    strategies = ["decode_all_bgr", "analysis_all", "analysis_nonref", "health_keyframes"]
    load = round(os.getloadavg()[0], 1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "street1080.mp4"
        err.print(f"encoding a {args.seconds:.0f} s 1080p25 clip …")
        started = time.monotonic()
        write_footage(
            path,
            [("normal", args.seconds)],
            width=1920,
            height=1080,
            fps=25,
            gop=50,
            bframes=args.bframes,
            bitrate_kbps=args.kbps,
        )
        encode_s = time.monotonic() - started
        rounds: dict[str, list[float]] = {name: [] for name in strategies}
        per_cpu: dict[str, list[float]] = {name: [] for name in strategies}
        for round_no in range(args.rounds):
            for name in strategies:
                wall_rate, cpu_rate = throughput(path, name, args.round_s, threads)
                rounds[name].append(wall_rate)
                per_cpu[name].append(cpu_rate)
                err.print(f"round {round_no + 1}: {name} {wall_rate:.1f} cameras, {cpu_rate:.1f} per CPU s")
        result: dict[str, object] = {
            "clip": {
                "width": 1920,
                "height": 1080,
                "fps": 25,
                "gop": 50,
                "bframes": args.bframes,
                "kbps": args.kbps,
                "seconds": args.seconds,
                "encode_s": round(encode_s, 1),
            },
            "cores": threads,
            "load_average_1m_at_start": load,
            "cameras_sustained_median": {name: round(statistics.median(v), 1) for name, v in rounds.items()},
            "cameras_sustained_rounds": {name: [round(x, 1) for x in v] for name, v in rounds.items()},
            # Stream seconds per CPU second times the cores: what an otherwise idle machine would sustain.
            "cameras_projected_idle_machine": {
                name: round(statistics.median(v) * threads, 1) for name, v in per_cpu.items()
            },
        }
        base = statistics.median(rounds["decode_all_bgr"])
        result["speedup_vs_decode_all_bgr"] = {
            name: round(statistics.median(v) / base, 2) for name, v in rounds.items()
        }
        if args.live_s > 0:
            err.print("live check: 100 health-only cameras …")
            result["live_health_100"] = live(path, 100, None, args.live_s)
            err.print("live check: 8 cameras with motion-gated analysis at 5 fps …")
            result["live_analysis_8"] = live(path, 8, 5.0, args.live_s)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
