"""Camera-health benchmark: share of each fault caught, false alarms, and time from a dead stream to offline.

Encodes test footage in a temporary folder (several seeds, each fault several times, between normal
stretches that include a passing lorry filling a third of the view and light fading as at dusk)
and runs the health monitor over it both on every frame and on key-frames only. A fault
counts as caught when its state is reported during its stretch (or within `--grace` seconds after,
for confirmation); every other fault state reported is a false alarm. Then, if GStreamer's RTSP
server is installed, it serves a clip on loopback, kills the server mid-stream several times, and
times how long each camera takes to show offline (goal: under 10 s).

    .venv/bin/python bench/bench_health.py [--seeds 3] [--cuts 3] [--width 640]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from safecity.video.footage import EXPECTED_STATE, Fault, Stretch, write_footage
from safecity.video.health import HealthMonitor
from safecity.video.sources import Decode, open_source
from safecity.video.stream import Backoff, CameraStream

err = Console(stderr=True)
FAULTS: list[Fault] = ["covered", "frozen", "dark", "blurred", "moved", "low_fps"]
REPO = Path(__file__).resolve().parents[1]


def plan(seed: int) -> list[tuple[Fault, float]]:
    """Returns normal stretches alternating with every fault, in an order that depends on `seed`."""
    order = FAULTS[seed % len(FAULTS) :] + FAULTS[: seed % len(FAULTS)]
    stretches: list[tuple[Fault, float]] = [("normal", 8.0)]
    for fault in order:
        stretches += [(fault, 7.0), ("normal", 4.0), ("truck", 4.0), ("dusk", 8.0)]
    return stretches


def score(path: Path, stretches: list[Stretch], decode: Decode, grace: float) -> dict[str, dict[str, float]]:
    """Returns per fault: caught (0/1 per stretch), report delay, and false alarms, for one file."""
    monitor = HealthMonitor("bench")
    reports: list[tuple[float, str]] = []
    for frame in open_source(str(path), decode=decode).frames():
        change = monitor.observe(frame)
        if change is not None and change.state != "online":
            reports.append((frame.pts_seconds, change.state))
    result: dict[str, dict[str, float]] = {}
    explained: set[int] = set()
    for stretch in stretches:
        if EXPECTED_STATE[stretch.fault] == "online":
            continue
        expected = EXPECTED_STATE[stretch.fault]
        hits = [
            i
            for i, (at, state) in enumerate(reports)
            if state == expected and stretch.start_s <= at <= stretch.end_s + grace
        ]
        explained.update(hits)
        entry = result.setdefault(stretch.fault, {"stretches": 0, "caught": 0, "delay_s": 0.0})
        entry["stretches"] += 1
        if hits:
            entry["caught"] += 1
            entry["delay_s"] += reports[hits[0]][0] - stretch.start_s
    result["false_alarms"] = {"count": float(len(reports) - len(explained))}
    result["false_alarm_states"] = {
        state: float(sum(1 for i, (_, s) in enumerate(reports) if s == state and i not in explained))
        for state in {s for _, s in reports}
    }
    return result


def fault_detection(folder: Path, seeds: int, width: int, grace: float) -> dict[str, object]:
    """Scores every decode mode over `seeds` generated files; returns the totals per fault."""
    height = width * 9 // 16
    files = []
    for seed in range(seeds):
        path = folder / f"faults-{seed}.mp4"
        err.print(f"encoding fault footage {seed + 1}/{seeds} ({width}x{height}) …")
        files.append((path, write_footage(path, plan(seed), width=width, height=height, seed=seed + 1)))
    normal_seconds = sum(
        s.end_s - s.start_s for _, spans in files for s in spans if EXPECTED_STATE[s.fault] == "online"
    )
    out: dict[str, object] = {
        "files": seeds,
        "width": width,
        "height": height,
        "normal_minutes": round(normal_seconds / 60, 1),
    }
    for decode in ("all", "keyframes"):
        totals: dict[str, dict[str, float]] = {}
        false_alarms = 0.0
        wrong: dict[str, float] = {}
        for path, spans in files:
            for fault, entry in score(path, spans, decode, grace).items():
                if fault == "false_alarms":
                    false_alarms += entry["count"]
                elif fault == "false_alarm_states":
                    for state, n in entry.items():
                        wrong[state] = wrong.get(state, 0) + n
                else:
                    total = totals.setdefault(fault, {"stretches": 0, "caught": 0, "delay_s": 0.0})
                    for key in total:
                        total[key] += entry[key]
        out[decode] = {
            "per_fault": {
                fault: {
                    "caught": f"{int(t['caught'])}/{int(t['stretches'])}",
                    "share_caught": round(t["caught"] / t["stretches"], 2),
                    "mean_report_delay_s": round(t["delay_s"] / t["caught"], 1) if t["caught"] else None,
                }
                for fault, t in totals.items()
            },
            "false_alarms": int(false_alarms),
            "false_alarm_states": {k: int(v) for k, v in wrong.items() if v},
        }
    return out


def time_to_offline(folder: Path, cuts: int, transport: str) -> dict[str, object]:
    """Kills a real RTSP server under a watched camera `cuts` times; returns the seconds to offline."""
    clip = folder / "live.mp4"
    if not clip.exists():
        write_footage(clip, [("normal", 60.0)], width=640, height=360)
    took: list[float] = []
    for cut in range(cuts):
        server = subprocess.Popen(
            ["/usr/bin/python3", str(REPO / "scripts" / "rtsp_server.py"), str(clip)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert server.stdout is not None
        url = server.stdout.readline().split(" ", 1)[-1].strip()
        stream = CameraStream(
            f"cut-{cut}",
            url,
            analysis_fps=None,
            transport=transport,  # type: ignore[arg-type]
            backoff=Backoff(initial_s=0.5, max_s=5),
        )
        stream.start()
        deadline = time.monotonic() + 15
        while stream.state != "online" and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.0)
        server.kill()
        server.wait()
        cut_at = time.monotonic()
        while stream.state != "offline" and time.monotonic() < cut_at + 30:
            time.sleep(0.05)
        took.append(time.monotonic() - cut_at)
        stream.stop()
        err.print(f"{transport} cut {cut + 1}: offline after {took[-1]:.1f} s")
    return {
        "cuts": cuts,
        "median_s": round(statistics.median(took), 2),
        "max_s": round(max(took), 2),
        "all_s": [round(t, 2) for t in took],
    }


def rtsp_available() -> bool:
    """Returns whether the system Python has GStreamer's RTSP server."""
    probe = "import gi; gi.require_version('GstRtspServer', '1.0')"
    return (
        Path("/usr/bin/python3").exists()
        and subprocess.run(["/usr/bin/python3", "-c", probe], capture_output=True).returncode == 0
    )


def main() -> None:
    """Runs the benchmark and prints one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3, help="generated files (each has every fault once)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument(
        "--grace", type=float, default=3.0, help="seconds after a stretch a report still counts"
    )
    parser.add_argument("--cuts", type=int, default=3, help="server cut-offs per transport (0: skip)")
    parser.add_argument("--quick", action="store_true", help="one generated file and one cut per transport")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.cuts = 1, 1
    result: dict[str, object] = {"load_average_1m": round(os.getloadavg()[0], 1)}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        result["fault_detection"] = fault_detection(folder, args.seeds, args.width, args.grace)
        if args.cuts and rtsp_available():
            result["time_to_offline"] = {t: time_to_offline(folder, args.cuts, t) for t in ("tcp", "udp")}
        elif args.cuts:
            result["time_to_offline"] = "skipped: GStreamer RTSP server not installed"
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
