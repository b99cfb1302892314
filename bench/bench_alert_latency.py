"""Alert latency benchmark: from a hot-listed plate read to the alert on an open operator page.

Starts the real app (embedded default: in-process bus, SQLite) with uvicorn on a loopback port, signs
an operator's live page in over a real WebSocket, puts plates on the stolen hot list, then publishes
PlateRead observations of those plates (what a worker publishes for the frame that shows the plate)
and times each until its alert message arrives on the WebSocket: through the ANPR consumer (store the
read, match the hot list, raise and de-duplicate the alert, commit), the bus and the live hub.
Then it fires a burst of reads and measures how many alerts per second reach the page, while an
operator's queue request (GET /api/alerts) is timed every 100 ms to show the centre stays responsive.

    .venv/bin/python bench/bench_alert_latency.py [--quick] [--reads 200] [--burst 1000]

Prints one JSON object on stdout; progress goes to stderr. Goal: p95 under 1 s.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import string
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from websockets.sync.client import connect

from safecity.accounts import service as accounts
from safecity.accounts.models import UserIn
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.context import Context
from safecity.core.events import PlateRead
from safecity.server import create_app
from safecity.settings import Settings

err = Console(stderr=True)


def percentile(values: list[float], pct: float) -> float:
    """Returns the nearest-rank percentile of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def plates(n: int, seed: int = 7) -> list[str]:
    """Returns `n` distinct Sindh-style plates (three letters, three or four digits)."""
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rng.choices(string.ascii_uppercase, k=3)) + str(rng.randint(100, 9999)))
    return sorted(out)


def start_server(ctx: Context) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Serves the app on a free loopback port in a background thread."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, f"127.0.0.1:{port}"


def seed(ctx: Context, hot: list[str]) -> str:
    """Registers a camera, an operator (returns its API token) and puts `hot` on the stolen list."""
    from safecity.anpr import service as anpr

    with ctx.db.session() as session:
        cameras.create(
            session,
            CameraIn(
                id="bench-anpr",
                name="Shahrah-e-Faisal",
                kind="anpr",
                district="Saddar",
                latitude=24.8607,
                longitude=67.0299,
            ),
            actor="bench",
        )
        accounts.create_user(
            session,
            UserIn(username="bench-op", role="operator", password="correct-horse-battery"),
            actor="bench",
        )
        token, _ = accounts.issue_token(
            session, accounts.get_by_username(session, "bench-op"), kind="api", hours=2
        )
        for plate in hot:
            anpr.add_hotlist_entry(session, plate=plate, list_name="stolen", reason="bench", actor="bench")
    return token


def read_of(plate: str, n: int) -> PlateRead:
    """Returns the observation a worker publishes for a frame showing `plate`."""
    return PlateRead(key=f"bench:{plate}:{n}", camera_id="bench-anpr", plate=plate, confidence=0.97)


def wait_alert(ws: Any, plate: str, timeout: float = 30.0) -> float:
    """Reads live messages until the alert for `plate` arrives; returns the arrival time."""
    deadline = time.perf_counter() + timeout
    while True:
        msg = json.loads(ws.recv(timeout=max(0.01, deadline - time.perf_counter())))
        if msg.get("channel") == "alert" and plate in msg.get("title", ""):
            return time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="30 timed reads and a burst of 150")
    parser.add_argument("--reads", type=int, default=200, help="timed reads, one at a time")
    parser.add_argument("--burst", type=int, default=1000, help="reads fired at once for throughput")
    args = parser.parse_args()
    if args.quick:
        args.reads, args.burst = 30, 150
    hot = plates(args.reads + args.burst + 5)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context.create(Settings(data_dir=Path(tmp) / "data"))
        token = seed(ctx, hot)
        server, thread, host = start_server(ctx)
        try:
            # The live socket opens with a one-use ticket, asked for with the operator's token.
            answer = httpx.post(
                f"http://{host}/api/live/ticket", headers={"Authorization": f"Bearer {token}"}, timeout=10
            )
            answer.raise_for_status()
            with connect(f"ws://{host}{answer.json()['url']}", open_timeout=10) as ws:
                # Warm-up: the first read builds the hot-list index and opens connections.
                ctx.bus.publish_threadsafe(read_of(hot[-1], 0))
                wait_alert(ws, hot[-1])
                latencies = []
                with err.status("timing reads one at a time…"):
                    for i, plate in enumerate(hot[: args.reads]):
                        start = time.perf_counter()
                        ctx.bus.publish_threadsafe(read_of(plate, i))
                        latencies.append(wait_alert(ws, plate) - start)
                err.log(f"{len(latencies)} reads: p50 {statistics.median(latencies) * 1000:.0f} ms")
                burst = hot[args.reads : args.reads + args.burst]
                queue_ms: list[float] = []
                stop = threading.Event()

                def poll_queue() -> None:
                    with httpx.Client(
                        base_url=f"http://{host}", headers={"Authorization": f"Bearer {token}"}
                    ) as http:
                        while not stop.is_set():
                            t = time.perf_counter()
                            http.get(
                                "/api/alerts", params={"open_only": "true", "limit": 200}
                            ).raise_for_status()
                            queue_ms.append((time.perf_counter() - t) * 1000)
                            stop.wait(0.1)

                poller = threading.Thread(target=poll_queue, daemon=True)
                poller.start()
                with err.status(f"burst of {len(burst)} reads…"):
                    start = time.perf_counter()
                    for i, plate in enumerate(burst):
                        ctx.bus.publish_threadsafe(read_of(plate, i))
                    published = time.perf_counter() - start
                    seen: set[str] = set()
                    deadline = time.perf_counter() + 600
                    while len(seen) < len(burst) and time.perf_counter() < deadline:
                        msg = json.loads(ws.recv(timeout=60))
                        if msg.get("channel") == "alert":
                            seen.add(msg["alert_id"])
                    elapsed = time.perf_counter() - start
                stop.set()
                poller.join(5)
        finally:
            server.should_exit = True
            thread.join(15)
            ctx.db.dispose()
    result = {
        "bench": "alert_latency",
        "path": "PlateRead published -> ANPR hot-list consumer -> alert committed -> live hub -> WebSocket",
        "database": "sqlite",
        "bus": "memory",
        "reads": len(latencies),
        "latency_ms": {
            "p50": round(statistics.median(latencies) * 1000, 1),
            "p95": round(percentile(latencies, 95) * 1000, 1),
            "max": round(max(latencies) * 1000, 1),
        },
        "goal_p95_ms": 1000,
        "meets_goal": percentile(latencies, 95) < 1.0,
        "burst": {
            "reads": len(burst),
            "alerts_received": len(seen),
            "seconds": round(elapsed, 2),
            "publish_seconds": round(published, 2),
            "alerts_per_s": round(len(seen) / elapsed, 1),
            "queue_request_ms_p50": round(statistics.median(queue_ms), 1) if queue_ms else None,
            "queue_request_ms_p95": round(percentile(queue_ms, 95), 1) if queue_ms else None,
            "queue_requests": len(queue_ms),
        },
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
