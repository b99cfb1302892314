"""Live video benchmark: streams relayed per process, CPU and memory per stream and viewer, NATS's cost,
and in Chromium the glass-to-glass latency, the first frame after a tile switch and a 16-tile wall.

relay     The relay as `safecity serve` runs it embedded: one process holds N cameras' live channels
          (packets of a 640x360 25 fps, 600 kbit/s H.264 sub-stream fed at its own pace, one fragment
          per frame), its live feeds and N video sockets; the N viewers read in a child process. For
          each N: the relay process's CPU (cores), CPU per stream, delivered frame rate per stream
          (worst), relay latency (frame in -> message read by the viewer, same clock), memory per
          viewer. `streams_per_2_cores` is 2 / (CPU per stream) at the largest N that kept up.
nats      The city path: fragments of the same size over a private nats-server on core subjects,
          publisher and subscriber in this process; CPU per stream (25 messages/s) on each side and the
          server's.
browser   The real app with its worker (embedded), in Debian's Chromium: glass-to-glass latency (a
          synthetic camera stamps the wall-clock time into each frame, `live/stamp.py`; the page reads it
          back from the video drawn to a canvas at each presented frame), time to the first frame after
          dragging a camera onto a wall tile (with the steps to it: the watch sent, the first message,
          the init segment, MediaSource open, first append, first frame), frames presented per tile on
          a 4x4 wall of 25 fps cameras, Chromium's CPU per process kind and per presented frame, the
          page's own main-thread work (Chromium's counters), the app's CPU beside it, and one HTTP
          round trip from the page meanwhile (what low-latency HLS would pay three times per switch).
wall      The browser part without the glass-to-glass latency (`--only wall`).
link      The server's half of a tile switch without a browser (`--only link`): the app with its worker
          and 15 cameras playing on one page's link (`/ws/video`, read by a child process), then a
          channel switched to a camera nobody watches, timed from the watch sent to the channel's first
          message, its init segment and its first key-frame (what the page then hands to MSE).
single    The same for the single camera view's socket (`--only single`): 15 cameras playing on sockets of
          their own (`/ws/video/{camera}`), then a socket opened for a camera nobody watches, timed from
          its opening (handshake and session look-up included) to its first message, init and key-frame.

    .venv/bin/python bench/bench_live.py [--quick] [--streams 25,50,100,150] [--seconds 10]
    .venv/bin/python bench/bench_live.py --only wall [--gpu] [--chromium-arg=--flag]
    .venv/bin/python bench/bench_live.py --only link [--switches 12]
    .venv/bin/python bench/bench_live.py --only single [--switches 12]

Prints one JSON object on stdout; progress goes to stderr. Goals: a 16-tile wall at full frame rate in one
Chromium; latency p95 <= 1 s; first frame <= 1 s after a switch; >= 100 streams relayed per 2 cores.
The machine this runs on is shared and has 2 cores: the viewers' child process and Chromium compete with
the relay for them, so the figures are what this box does with everything on it, not a dedicated relay.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import httpx
import uvicorn
from rich.console import Console

from safecity.accounts import service as accounts
from safecity.accounts.models import UserIn
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn, CameraPatch
from safecity.core.context import Context
from safecity.live import protocol
from safecity.live.relay import LiveRelay
from safecity.live.sockets import CHANNEL
from safecity.settings import Settings
from safecity.video.footage import write_footage

err = Console(stderr=True)
PASSWORD = "correct-horse-battery"
FPS = 25
TICK = os.sysconf("SC_CLK_TCK")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--autoplay-policy=no-user-gesture-required",
]


def percentile(values: list[float], pct: float) -> float:
    """Returns the nearest-rank percentile of `values` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def cpu_seconds(pids: list[int]) -> float:
    """Returns the CPU seconds (user + system) the processes used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def rss_bytes(pids: list[int]) -> int:
    """Returns the resident memory of the processes."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def descendants(root: int) -> list[int]:
    """Returns `root` and every process below it."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serves `app` on a loopback port in a thread; yields host:port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ws="websockets-sansio",
            ws_per_message_deflate=False,  # as `safecity serve`
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def sign_in(host: str, username: str) -> str:
    """Returns the Cookie header of a signed-in session."""
    with httpx.Client(base_url=f"http://{host}", timeout=60) as client:  # a loaded machine hashes slowly
        client.post("/api/login", json={"username": username, "password": PASSWORD}).raise_for_status()
        return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


def add_user(ctx: Context, name: str) -> None:
    with ctx.db.session() as session:
        accounts.create_user(
            session, UserIn(username=name, role="operator", password=PASSWORD), actor="bench"
        )


def add_camera(ctx: Context, camera_id: str, name: str, url: str, *, record: bool = True) -> None:
    with ctx.db.session() as session:
        cameras.create(
            session,
            CameraIn.model_validate(
                {
                    "id": camera_id,
                    "name": name,
                    "kind": "fixed",
                    "district": "Bench",
                    "latitude": 24.86,
                    "longitude": 67.01,
                    "stream_url": url,
                    "analysis": {"record": record},
                }
            ),
            actor="bench",
        )


def clip(folder: Path, *, width: int = 640, height: int = 360, kbps: int = 600) -> Path:
    """Encodes the sub-stream-like clip every camera of the benchmark sends (2 s key-frame interval)."""
    path = folder / f"clip-{width}x{height}.mp4"
    if not path.exists():
        write_footage(
            path, [("normal", 8.0)], width=width, height=height, fps=FPS, gop=2 * FPS, bitrate_kbps=kbps
        )
    return path


# --- the relay ------------------------------------------------------------------------------------


def viewers_child(url: str, cookie: str, cameras_n: int, seconds: float) -> None:
    """Child process: one video socket per camera, reading for `seconds`; prints what each received."""
    from websockets.asyncio.client import connect

    async def watch(camera: int, results: list[dict[str, Any]]) -> None:
        frames, lags, first = 0, [], None
        end = time.monotonic() + seconds
        try:
            async with connect(
                f"ws://{url}/ws/video/bench-{camera:03d}?variant=main",
                additional_headers={"Cookie": cookie},
                max_size=None,
                open_timeout=seconds,
            ) as ws:
                while (left := end - time.monotonic()) > 0:
                    try:
                        message = await asyncio.wait_for(ws.recv(), left)
                    except TimeoutError:
                        break
                    assert isinstance(message, bytes)
                    head = protocol.header(message)
                    if head.kind != protocol.FRAGMENT or head.replay:
                        continue
                    now = time.time() * 1000
                    first = first or time.monotonic()
                    frames += 1
                    lags.append(now - head.wall_ms)
        except (OSError, TimeoutError) as exc:  # an overloaded machine: counted as a stream not kept up
            err.print(f"viewer {camera}: {exc}")
        took = time.monotonic() - first if first else seconds
        results.append({"fps": frames / max(took, 1e-3), "frames": frames, "lags": lags})

    async def main() -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        await asyncio.gather(*(watch(i, results) for i in range(cameras_n)))
        return results

    results = asyncio.run(main())
    lags = [lag for r in results for lag in r["lags"]]
    print(
        json.dumps(
            {
                "fps": [round(r["fps"], 2) for r in results],
                "frames": sum(r["frames"] for r in results),
                "lag_ms_p50": round(percentile(lags, 50), 1),
                "lag_ms_p95": round(percentile(lags, 95), 1),
            }
        )
    )


def switch_child(url: str, cookie: str, playing: int, switches: int) -> None:
    """Child process: one link playing `playing` cameras, then a channel switched `switches` times to a
    camera nobody watches; prints the ms from each watch sent to its first message, init and key-frame."""
    from websockets.sync.client import connect

    tile = playing + 1
    out: dict[str, list[float]] = {"first_message": [], "init": [], "key_frame": []}
    with connect(f"ws://{url}/ws/video", additional_headers={"Cookie": cookie}, max_size=None) as ws:
        for n in range(playing):
            ws.send(json.dumps({"watch": n + 1, "camera": f"wall-{n:02d}"}))
        end = time.monotonic() + 3.0  # the wall plays
        while time.monotonic() < end:
            with contextlib.suppress(TimeoutError):
                ws.recv(timeout=0.2)
        for i in range(switches):
            sent = time.monotonic()
            ws.send(json.dumps({"watch": tile, "camera": f"switch-{i:02d}"}))
            seen: dict[str, float] = {}
            while "key_frame" not in seen and time.monotonic() - sent < 15:
                try:
                    message = ws.recv(timeout=1.0)
                except TimeoutError:
                    continue
                if not isinstance(message, bytes) or CHANNEL.unpack_from(message)[0] != tile:
                    continue
                note_step(seen, message[CHANNEL.size :], round(1000 * (time.monotonic() - sent), 1))
            for step, ms in seen.items():
                out[step].append(ms)
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                with contextlib.suppress(TimeoutError):
                    ws.recv(timeout=0.1)
    print(json.dumps(out))


def note_step(seen: dict[str, float], message: bytes, at_ms: float) -> None:
    """Notes when a switched camera's first message, init segment and first key-frame arrived."""
    head = protocol.header(message)
    seen.setdefault("first_message", at_ms)
    if head.kind == protocol.INIT:
        seen.setdefault("init", at_ms)
    elif head.kind == protocol.FRAGMENT and head.key and "init" in seen:
        seen["key_frame"] = at_ms


def single_child(url: str, cookie: str, playing: int, switches: int) -> None:
    """Child process: `playing` cameras on sockets of their own, then `switches` sockets opened one by one
    for cameras nobody watches; prints the ms from each opening to its first message, init and key-frame."""
    from websockets.asyncio.client import ClientConnection, connect

    def open_camera(camera_id: str) -> Any:
        return connect(
            f"ws://{url}/ws/video/{camera_id}?variant=sub",
            additional_headers={"Cookie": cookie},
            max_size=None,
        )

    async def read_on(ws: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            async for _ in ws:
                pass

    async def main() -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"first_message": [], "init": [], "key_frame": []}
        async with contextlib.AsyncExitStack() as stack:
            wall = [await stack.enter_async_context(open_camera(f"wall-{n:02d}")) for n in range(playing)]
            readers = [asyncio.create_task(read_on(ws)) for ws in wall]
            await asyncio.sleep(3.0)  # the wall plays
            for i in range(switches):
                sent = time.monotonic()
                seen: dict[str, float] = {}
                async with open_camera(f"switch-{i:02d}") as ws:
                    while "key_frame" not in seen and time.monotonic() - sent < 15:
                        try:
                            message = await asyncio.wait_for(ws.recv(), 1.0)
                        except TimeoutError:
                            continue
                        assert isinstance(message, bytes)
                        note_step(seen, message, round(1000 * (time.monotonic() - sent), 1))
                for step, ms in seen.items():
                    out[step].append(ms)
                await asyncio.sleep(0.5)
            for reader in readers:
                reader.cancel()
        return out

    print(json.dumps(asyncio.run(main())))


def bench_link(folder: Path, switches: int, playing: int = 15, *, single: bool = False) -> dict[str, Any]:
    """The server's half of a tile switch on a loaded link: watch → first message, init, key-frame (or,
    `single`, the same for a single camera view's socket opened while `playing` others play)."""
    from safecity.server import create_app
    from safecity.worker.runtime import start_pipelines_hook

    ctx = Context.create(Settings(data_dir=folder / "link-data"))
    add_user(ctx, "bench-op")
    source = str(clip(folder))
    for i in range(playing):
        add_camera(ctx, f"wall-{i:02d}", f"A wall {i:02d}", source, record=False)
    for i in range(switches):
        add_camera(ctx, f"switch-{i:02d}", f"B switch {i:02d}", source, record=False)
    with serve(create_app(ctx, on_started=[start_pipelines_hook()])) as host:
        time.sleep(4)  # the worker opens every camera
        cookie = sign_in(host, "bench-op")
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--single-child" if single else "--switch-child",
                *(host, cookie, str(playing), str(switches)),
            ],
            capture_output=True,
            text=True,
            timeout=60 + 20 * switches,
            check=True,
        )
    steps: dict[str, list[float]] = json.loads(child.stdout)
    others = "sockets" if single else "channels of the link"
    return {
        "switches": len(steps["key_frame"]),
        "while": f"{playing} other {others} play 640x360 at {FPS} fps",
        **{
            f"watch_to_{step}_ms": {
                "p50": percentile(ms, 50),
                "p95": percentile(ms, 95),
                "max": max(ms, default=None),
            }
            for step, ms in steps.items()
        },
        "load_average": round(os.getloadavg()[0], 1),
    }


class Feeder:
    """Hands the clip's packets to the first `active` cameras' channels at 25 fps, as their threads would."""

    def __init__(self, relay: LiveRelay, clip_path: Path, cameras_n: int) -> None:
        self.container = av.open(str(clip_path))
        stream = self.container.streams.video[0]
        self.packets = [p for p in self.container.demux(stream) if p.size]
        self.taps = [relay.tap(f"bench-{i:03d}") for i in range(cameras_n)]
        self.active = 0
        self.late = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feeder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        step = 1 / FPS
        due = time.monotonic()
        i = 0
        while not self._stop.is_set():
            packet = self.packets[i % len(self.packets)]
            for tap in self.taps[: self.active]:
                tap(packet)
            i += 1
            due += step
            delay = due - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                self.late += 1
                if delay < -1:
                    due = time.monotonic()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.container.close()


def sent_frames(ctx: Context) -> int:
    """Returns how many messages this process's video sockets have sent so far (viewers still connected)."""
    feeds = ctx.video.feeds if ctx.video is not None else {}
    return sum(v.sent for f in list(feeds.values()) for v in list(f.viewers))


def bench_relay(folder: Path, steps: list[int], seconds: float) -> dict[str, Any]:
    """Relay capacity of one process: CPU and delivered frame rate for N streams with one viewer each."""
    top = max(steps)
    ctx = Context.create(Settings(data_dir=folder / "relay-data"))
    add_user(ctx, "bench-op")
    for i in range(top):
        add_camera(ctx, f"bench-{i:03d}", f"Bench {i:03d}", "synthetic://road/none", record=False)
    relay = LiveRelay(ctx.bus)

    async def start_relay(ctx: Context) -> None:
        await relay.start()
        for i in range(top):
            relay.hold(f"bench-{i:03d}")

    from safecity.server import create_app

    rounds: list[dict[str, Any]] = []
    # Without the centre's consumers and jobs: what this process spends is the relay's alone.
    with serve(create_app(ctx, consumers=False, on_started=[start_relay])) as host:
        cookie = sign_in(host, "bench-op")
        feeder = Feeder(relay, clip(folder), top)
        try:
            for n in steps:
                feeder.active = n
                time.sleep(1.0)
                rss_before = rss_bytes([os.getpid()])
                child = subprocess.Popen(
                    [sys.executable, __file__, "--viewers-child", host, cookie, str(n), str(seconds)],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                time.sleep(min(3.0, seconds / 3))  # connected, past the first key-frame
                cpu0, wall0, late0 = cpu_seconds([os.getpid()]), time.monotonic(), feeder.late
                # CPU per frame sent to a viewer, second by second: on a shared machine the least
                # contended seconds show what the code costs, the median what this box gave it.
                per_frame: list[float] = []
                cpu_at, sent_at = cpu0, sent_frames(ctx)
                for _ in range(max(1, round(seconds / 2))):
                    time.sleep(1.0)
                    cpu_now, sent_now = cpu_seconds([os.getpid()]), sent_frames(ctx)
                    if sent_now > sent_at:
                        per_frame.append(1e6 * (cpu_now - cpu_at) / (sent_now - sent_at))
                    cpu_at, sent_at = cpu_now, sent_now
                cores = (cpu_seconds([os.getpid()]) - cpu0) / (time.monotonic() - wall0)
                rss_during = rss_bytes([os.getpid()])
                late = feeder.late - late0
                out, _ = child.communicate(timeout=seconds * 3 + 60)
                try:
                    seen = json.loads(out)
                except ValueError:
                    seen = {"fps": [], "frames": 0, "lag_ms_p50": None, "lag_ms_p95": None}
                feeds = ctx.video.feeds if ctx.video is not None else {}
                dropped = sum(v.dropped for f in feeds.values() for v in f.viewers)
                worst = min(seen["fps"]) if seen["fps"] else 0.0
                kept_up = worst >= 0.95 * FPS and len(seen["fps"]) == n
                rounds.append(
                    {
                        "streams": n,
                        "relay_cores": round(cores, 3),
                        "cpu_per_stream_pct": round(100 * cores / n, 3),
                        "cpu_us_per_frame_min": round(min(per_frame), 1) if per_frame else None,
                        "cpu_us_per_frame_median": round(statistics.median(per_frame), 1)
                        if per_frame
                        else None,
                        "worst_stream_fps": round(worst, 1),
                        "median_stream_fps": round(statistics.median(seen["fps"]), 1) if seen["fps"] else 0,
                        "relay_latency_ms_p50": seen["lag_ms_p50"],
                        "relay_latency_ms_p95": seen["lag_ms_p95"],
                        "feeder_late_ticks": late,
                        "viewer_drops": dropped,
                        "memory_per_viewer_kib": round(max(0, rss_during - rss_before) / n / 1024, 1),
                        "kept_up": kept_up,
                    }
                )
                err.print(f"relay: {rounds[-1]}")
                time.sleep(1.0)
                if not kept_up:
                    break  # more streams would only be further behind
        finally:
            feeder.stop()
    good = [r for r in rounds if r["kept_up"]]
    best = max(good, key=lambda r: r["streams"]) if good else None
    lows = [r["cpu_us_per_frame_min"] for r in rounds if r["cpu_us_per_frame_min"]]
    mids = [r["cpu_us_per_frame_median"] for r in rounds if r["cpu_us_per_frame_median"]]
    low, mid = (min(lows), statistics.median(mids)) if lows else (None, None)
    # One Python process does this work under one interpreter lock: about one core's worth.
    return {
        "stream": f"640x360 {FPS} fps H.264 at 600 kbit/s, 2 s key-frame interval, one viewer each",
        "rounds": rounds,
        "largest_kept_up_on_this_machine": best["streams"] if best else 0,
        "cpu_us_per_viewer_frame": {"least_contended": low, "median": mid},
        "cpu_per_stream_pct": {
            "least_contended": round(low * FPS / 1e4, 3) if low else None,
            "median": round(mid * FPS / 1e4, 3) if mid else None,
        },
        "streams_per_process_estimate": {
            "least_contended": round(1e6 / (low * FPS)) if low else None,
            "median": round(1e6 / (mid * FPS)) if mid else None,
        },
    }


# --- NATS -----------------------------------------------------------------------------------------


def bench_nats(folder: Path, streams: int, seconds: float) -> dict[str, Any]:
    """The city path's cost: fragments of a real stream over a private nats-server, per stream."""
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(binary).exists():
        return {"skipped": "nats-server is not installed"}
    from safecity.core.bus.nats import NatsBus

    sizes: list[int] = []
    with av.open(str(clip(folder))) as container:
        sizes = [p.size + 120 for p in container.demux(container.streams.video[0]) if p.size]
    port = free_port()
    server = subprocess.Popen(
        [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(folder / "nats")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)

        async def run() -> dict[str, Any]:
            url = f"nats://127.0.0.1:{port}"
            publisher, subscriber = NatsBus(url, stream="BENCH"), NatsBus(url, stream="BENCH")
            await publisher.start()
            await subscriber.start()
            got = 0

            def count(_subject: str, _data: bytes) -> None:
                nonlocal got
                got += 1

            listening = await subscriber.listen_transient("video.*.main", count)
            payloads = [bytes(size) for size in sizes]
            cpu0, server0, wall0 = time.process_time(), cpu_seconds([server.pid]), time.monotonic()
            sent, i = 0, 0
            due = time.monotonic()
            while time.monotonic() - wall0 < seconds:
                data = payloads[i % len(payloads)]
                for s in range(streams):
                    await publisher.send_transient(f"video.bench-{s}.main", data)
                sent += streams
                i += 1
                due += 1 / FPS
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            await asyncio.sleep(0.5)
            wall = time.monotonic() - wall0
            cores = (time.process_time() - cpu0) / wall
            server_cores = (cpu_seconds([server.pid]) - server0) / wall
            await listening.close()
            await publisher.close()
            await subscriber.close()
            return {
                "streams": streams,
                "messages_sent": sent,
                "messages_received": got,
                "bytes_per_second": round(sum(sizes) / len(sizes) * FPS * streams),
                "publish_and_receive_cpu_per_stream_pct": round(100 * cores / streams, 3),
                "nats_server_cpu_per_stream_pct": round(100 * server_cores / streams, 3),
            }

        return asyncio.run(run())
    finally:
        server.terminate()
        server.wait(10)


# --- the browser ----------------------------------------------------------------------------------

FRAMES_JS = """() => {
  window.__frames = {};
  for (const tile of document.querySelectorAll('.tile')) {
    const video = tile.querySelector('video');
    if (!video) continue;
    const seen = window.__frames[tile.dataset.cameraId] = { n: 0 };
    const count = () => { seen.n += 1; video.requestVideoFrameCallback(count); };
    video.requestVideoFrameCallback(count);
  }
}"""

ROUND_TRIPS_JS = """async (n) => {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await fetch(`/static/liveplayer.js?trip=${i}`, { cache: 'no-store' });
    await res.arrayBuffer();
    out.push(performance.now() - t0);
  }
  return out;
}"""

QUALITY_JS = """() => [...document.querySelectorAll('.tile video')].map((v) => {
  const q = v.getVideoPlaybackQuality(); return [q.totalVideoFrames, q.droppedVideoFrames];
})"""

# Reads the stamp (live/stamp.py) off every presented frame and compares it with the browser's clock.
LATENCY_JS = """(seconds) => new Promise((resolve) => {
  const video = document.querySelector('#live-screen video');
  const canvas = document.createElement('canvas');
  canvas.width = 320; canvas.height = 32;
  const g = canvas.getContext('2d', { willReadFrequently: true });
  const out = []; const end = performance.now() + seconds * 1000;
  const onFrame = (now, meta) => {
    g.drawImage(video, 0, 0, 320, 32, 0, 0, 320, 32);
    const px = g.getImageData(0, 0, 320, 32).data;
    let word = 0n;
    for (let i = 0; i < 40; i++) {
      const x = (i % 20) * 16 + 8, y = Math.floor(i / 20) * 16 + 8, o = (y * 320 + x) * 4;
      word = (word << 1n) | ((px[o] + px[o + 1] + px[o + 2]) / 3 >= 128 ? 1n : 0n);
    }
    const value = Number(word >> 8n), check = Number(word & 0xFFn);
    const sum = ((value >>> 24) & 255) + ((value >>> 16) & 255) + ((value >>> 8) & 255) + (value & 255);
    if (((sum + 0xA5) & 0xFF) === check) {
      const shown = Math.floor(performance.timeOrigin + (meta.expectedDisplayTime || now)) % 2 ** 32;
      out.push(((shown - value) % 2 ** 32 + 2 ** 32) % 2 ** 32);
    }
    if (performance.now() < end) video.requestVideoFrameCallback(onFrame); else resolve(out);
  };
  video.requestVideoFrameCallback(onFrame);
})"""


def bench_browser(
    folder: Path, *, seconds: float, switches: int, latency: bool = True, flags: list[str] | None = None
) -> dict[str, Any]:
    """Latency, first frame after a switch and a 4x4 wall, in Chromium against the app with its worker."""
    from playwright.sync_api import sync_playwright

    from safecity.server import create_app
    from safecity.worker.runtime import start_pipelines_hook

    if not Path(CHROMIUM).exists():
        return {"skipped": f"{CHROMIUM} is missing"}
    ctx = Context.create(Settings(data_dir=folder / "browser-data"))
    add_user(ctx, "bench-op")
    source = str(clip(folder))
    # Not recorded: this measures live video (the recorder's cost is bench_recordings.py's).
    for i in range(16):
        add_camera(ctx, f"wall-{i:02d}", f"A wall {i:02d}", source, record=False)
    for i in range(2 * switches):
        add_camera(ctx, f"switch-{i:02d}", f"B switch {i:02d}", source, record=False)
    add_camera(ctx, "stamp", "C stamp", f"synthetic://road/stamp?fps={FPS}&stamp=1")
    tag = f"--safecity-bench={uuid.uuid4().hex}"
    flags = CHROMIUM_ARGS if flags is None else flags
    result: dict[str, Any] = {"chromium_flags": flags}
    with serve(create_app(ctx, on_started=[start_pipelines_hook()])) as host, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*flags, tag])
        root = next(
            int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and tag.encode() in _cmdline(p)
        )
        context = browser.new_context(viewport={"width": 1920, "height": 1080})
        page = context.new_page()
        page.goto(f"http://{host}/login")
        page.fill("#username", "bench-op")
        page.fill("#password", PASSWORD)
        page.click("#sign-in")
        page.wait_for_url(f"http://{host}/")
        time.sleep(4)  # the worker opens every camera

        if latency:
            # Glass-to-glass: the stamped camera's own view.
            page.goto(f"http://{host}/live/stamp")
            page.wait_for_selector("#live-screen[data-playing=yes]", timeout=30_000)
            time.sleep(2)
            lags = page.evaluate(LATENCY_JS, seconds)
            result["glass_to_glass_ms"] = {
                "frames_read": len(lags),
                "p50": percentile(lags, 50),
                "p95": percentile(lags, 95),
                "max": max(lags) if lags else None,
                "camera": f"synthetic 640x360 {FPS} fps, x264 ultrafast/zerolatency, stamped when rendered",
            }
            err.print(f"browser: latency {result['glass_to_glass_ms']}")
        # The stamped camera renders and encodes 25 fps in this process: switched off for what follows.
        with ctx.db.session() as session:
            cameras.update(session, "stamp", CameraPatch(enabled=False), actor="bench")

        # The 4x4 wall: 16 cameras at 25 fps.
        page.goto(f"http://{host}/cameras")
        time.sleep(1)
        rss_idle = rss_bytes(descendants(root))
        page.goto(f"http://{host}/wall")
        page.wait_for_selector("body[data-ready=yes]")
        page.wait_for_function(
            "() => document.querySelectorAll('.tile .screen[data-playing=yes]').length >= 16", timeout=60_000
        )
        time.sleep(2)
        page.evaluate(FRAMES_JS)
        quality0 = page.evaluate(QUALITY_JS)
        pids = descendants(root)
        kinds = {pid: _process_kind(pid) for pid in pids}
        cpu0, wall0 = cpu_seconds(pids), time.monotonic()
        by_kind0 = {pid: cpu_seconds([pid]) for pid in pids}
        app0 = cpu_seconds([os.getpid()])
        load0 = os.getloadavg()[0]
        # The page's own work on the renderer's main thread (script, style and layout), from Chromium.
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        metrics0 = _metrics(cdp)
        time.sleep(seconds)
        metrics1 = _metrics(cdp)
        took = time.monotonic() - wall0
        counts = page.evaluate("() => Object.values(window.__frames).map((s) => s.n)")
        chromium_cores = (cpu_seconds(pids) - cpu0) / took
        app_cores = (cpu_seconds([os.getpid()]) - app0) / took
        cores_by_kind: dict[str, float] = {}
        for pid, kind in kinds.items():
            used = (cpu_seconds([pid]) - by_kind0[pid]) / took
            cores_by_kind[kind] = round(cores_by_kind.get(kind, 0.0) + used, 2)
        quality1 = page.evaluate(QUALITY_JS)
        dropped = sum(b[1] - a[1] for a, b in zip(quality0, quality1, strict=False))
        decoded = sum(b[0] - a[0] for a, b in zip(quality0, quality1, strict=False))
        per_tile = [n / took for n in counts]
        presented = sum(counts) / took

        def busy(name: str) -> float:
            return round(1000 * (metrics1.get(name, 0.0) - metrics0.get(name, 0.0)) / took, 1)

        # What one HTTP request costs the page meanwhile: low-latency HLS needs at least three in a row
        # (playlist, init segment, first part) before a switched tile has anything to decode.
        trips = page.evaluate(ROUND_TRIPS_JS, 20)
        result["http_round_trip_ms"] = {
            "requests": len(trips),
            "p50": round(percentile(trips, 50), 1),
            "p95": round(percentile(trips, 95), 1),
            "while": "16 tiles play at 25 fps",
        }
        result["wall_4x4"] = {
            "tiles": len(counts),
            "source_fps": FPS,
            "presented_fps_min": round(min(per_tile), 1) if per_tile else 0,
            "presented_fps_median": round(statistics.median(per_tile), 1) if per_tile else 0,
            "dropped_frames_share": round(dropped / max(1, decoded), 4),
            "chromium_cores": round(chromium_cores, 2),
            "chromium_cores_by_process": cores_by_kind,
            "chromium_cpu_ms_per_presented_frame": round(1000 * chromium_cores / max(presented, 1e-3), 2),
            # What 16 tiles x 25 fps would take at that cost, were the cores Chromium's alone.
            "chromium_cores_for_full_rate": round(chromium_cores / max(presented, 1e-3) * 16 * FPS, 2),
            "page_main_thread_ms_per_s": {
                "tasks": busy("TaskDuration"),
                "script": busy("ScriptDuration"),
                "style_and_layout": round(busy("RecalcStyleDuration") + busy("LayoutDuration"), 1),
            },
            # The app and its worker (16 cameras read and analysed at 25 fps) share the 2 cores.
            "app_and_worker_cores": round(app_cores, 2),
            "load_average": round((load0 + os.getloadavg()[0]) / 2, 1),
            "chromium_memory_per_tile_mib": round((rss_bytes(pids) - rss_idle) / 16 / 2**20, 1),
        }
        err.print(f"browser: wall {result['wall_4x4']}")

        # First frame after a switch: a camera nobody watches dragged onto a tile of the playing wall,
        # on the full 4x4 wall and again on a 2x2 one.
        def switch(cameras: range, tiles: int, note: str) -> dict[str, Any]:
            firsts: list[float] = []
            steps: dict[str, list[float]] = {}
            for i in cameras:
                target = page.locator(".tile").nth(i % tiles)
                page.locator("#camera-list li", has_text=f"B switch {i:02d}").drag_to(target)
                screen = page.locator(f'.tile[data-camera-id="switch-{i:02d}"] .screen[data-playing=yes]')
                screen.wait_for(timeout=30_000)
                firsts.append(float(screen.get_attribute("data-first-frame-ms") or "nan"))
                row = json.loads(screen.get_attribute("data-first-frame-steps") or "{}")
                err.print(f"switch {i}: first frame {firsts[-1]} ms after {row}")
                for step, ms in row.items():
                    steps.setdefault(step, []).append(float(ms))
                time.sleep(0.5)
            return {
                "switches": len(firsts),
                "p50": percentile(firsts, 50),
                "p95": percentile(firsts, 95),
                "max": max(firsts) if firsts else None,
                "steps_ms_p50": {step: percentile(v, 50) for step, v in steps.items()},
                "steps_ms_max": {step: max(v) for step, v in steps.items()},
                "while": note,
            }

        result["first_frame_after_switch_ms"] = {
            "wall_4x4": switch(range(switches), 16, "15 other tiles play at 25 fps"),
        }
        page.select_option("#grid", "2x2")
        time.sleep(2)
        result["first_frame_after_switch_ms"]["wall_2x2"] = switch(
            range(switches, 2 * switches), 4, "3 other tiles play at 25 fps"
        )
        err.print(f"browser: first frame {result['first_frame_after_switch_ms']}")
        browser.close()
    return result


def _metrics(cdp: Any) -> dict[str, float]:
    """Returns Chromium's performance counters of the page (durations in seconds)."""
    return {m["name"]: float(m["value"]) for m in cdp.send("Performance.getMetrics")["metrics"]}


def _process_kind(pid: int) -> str:
    """Returns what a Chromium process does: browser, renderer, gpu-process, utility, …."""
    # Zygote children rewrite their command line as one string (setproctitle): split on spaces too.
    for arg in _cmdline(Path(f"/proc/{pid}")).replace(b"\0", b" ").split():
        if arg.startswith(b"--type="):
            return arg[7:].decode(errors="replace")
    return "browser"


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--viewers-child":
        url, cookie, n, seconds = sys.argv[2:6]
        viewers_child(url, cookie, int(n), float(seconds))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--switch-child":
        url, cookie, playing, switches = sys.argv[2:6]
        switch_child(url, cookie, int(playing), int(switches))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--single-child":
        url, cookie, playing, switches = sys.argv[2:6]
        single_child(url, cookie, int(playing), int(switches))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="25 and 50 streams, 5 s windows, 3 switches")
    parser.add_argument("--streams", default="25,50,100,150,200", help="relay rounds: streams per round")
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring window per round")
    parser.add_argument("--switches", type=int, default=8, help="tile switches timed per wall size")
    parser.add_argument(
        "--only",
        choices=["relay", "nats", "browser", "wall", "link", "single"],
        help="one part only (wall: the browser part without glass-to-glass latency)",
    )
    parser.add_argument(
        "--gpu", action="store_true", help="without --disable-gpu (Chromium's own software GL where no GPU)"
    )
    parser.add_argument("--chromium-arg", action="append", default=[], help="one more Chromium flag")
    args = parser.parse_args()
    flags = [f for f in CHROMIUM_ARGS if not (args.gpu and f == "--disable-gpu")] + args.chromium_arg
    steps = [int(s) for s in args.streams.split(",")]
    if args.quick:
        steps, args.seconds, args.switches = [25, 50], 5.0, 3
    report: dict[str, Any] = {"machine": {"cores": os.cpu_count()}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.only in (None, "relay"):
            report["relay"] = bench_relay(folder, steps, args.seconds)
        if args.only in (None, "nats"):
            report["nats"] = bench_nats(folder, max(steps), args.seconds)
            err.print(f"nats: {report['nats']}")
        if args.only == "link":
            report["link"] = bench_link(folder, args.switches)
            err.print(f"link: {report['link']}")
        if args.only == "single":
            report["single"] = bench_link(folder, args.switches, single=True)
            err.print(f"single: {report['single']}")
        if args.only in (None, "browser", "wall"):
            report["browser"] = bench_browser(
                folder,
                seconds=args.seconds,
                switches=args.switches,
                latency=args.only != "wall",
                flags=flags,
            )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
