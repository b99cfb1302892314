"""Map benchmark: tiles served per second from an MBTiles file, and the command centre's map in Chromium
with a city's cameras on it.

tiles     The real app on a loopback port with a made-up MBTiles of Karachi (zoom 10-14, 256-pixel PNG),
          signed in: tiles per second and latency (p50, p95) for random tiles, one client and eight at
          once, and the same with the browser's ETag (304); beside them `/api/ui/me`, the cheapest signed-in
          request, for what any request costs here.
browser   Debian's Chromium opens `/` with N cameras spread over Karachi (Karachi has about 1,076 today,
          towards 12,000): seconds from signing in to the page being ready with every camera on the map
          (a link each up to 1,500 cameras, dots on one canvas past that), the main thread's long tasks
          during one zoom step (every marker placed again), JS heap.

    .venv/bin/python bench/bench_map.py [--quick] [--cameras 1076,4000] [--requests 2000]

Prints one JSON object on stdout; progress goes to stderr. The machine is shared (2 cores): the server,
its clients and Chromium compete for them.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageDraw
from rich.console import Console
from rich.progress import track

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from safecity.accounts.models import Role
from safecity.cameras.models import Camera
from safecity.core.context import Context
from safecity.dispatch import service as dispatch
from safecity.server import create_app
from safecity.settings import Settings
from tests.browser import CHROMIUM, CHROMIUM_ARGS, serving
from tests.conftest import PASSWORD, make_user

err = Console(stderr=True)
WEST, SOUTH, EAST, NORTH = 66.85, 24.75, 67.35, 25.10


def tile_range(z: int) -> tuple[range, range]:
    """XYZ columns and rows covering Karachi at zoom z."""

    def xy(lon: float, lat: float) -> tuple[int, int]:
        n = 2**z
        y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
        return int((lon + 180) / 360 * n), int(y)

    x0, y0 = xy(WEST, NORTH)
    x1, y1 = xy(EAST, SOUTH)
    return range(x0, x1 + 1), range(y0, y1 + 1)


def street_tile(rng: random.Random) -> bytes:
    """A PNG like a street map's: blocks and roads in a few colours (10-20 KB, as OpenStreetMap's are)."""
    image = Image.new("RGB", (256, 256), (242, 239, 233))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = rng.randrange(256), rng.randrange(256)
        draw.rectangle((x, y, x + rng.randrange(8, 40), y + rng.randrange(8, 40)), fill=(217, 208, 201))
    for _ in range(14):
        points = [(rng.randrange(256), rng.randrange(256)) for _ in range(3)]
        draw.line(
            points,
            fill=rng.choice(((255, 255, 255), (248, 214, 160), (230, 160, 120))),
            width=rng.randrange(2, 7),
        )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def make_tiles(path: Path, zooms: range) -> list[tuple[int, int, int]]:
    """Writes an MBTiles of made-up street tiles over Karachi."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
    db.execute(
        "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)"
    )
    meta = {"name": "bench", "format": "png", "minzoom": str(zooms.start), "maxzoom": str(zooms.stop - 1)}
    meta["bounds"] = f"{WEST},{SOUTH},{EAST},{NORTH}"
    db.executemany("INSERT INTO metadata VALUES (?, ?)", list(meta.items()))
    rng = random.Random(7)
    made = []
    for z in zooms:
        columns, rows = tile_range(z)
        for x in columns:
            for y in rows:
                db.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x, 2**z - 1 - y, street_tile(rng)))
                made.append((z, x, y))
    db.commit()
    db.close()
    return made


def add_cameras(ctx: Context, count: int) -> None:
    """Puts `count` cameras at random places over Karachi (rows straight in: registering is not measured)."""
    rng = random.Random(count)
    kinds = ("fixed", "anpr", "face")
    with ctx.db.session() as session:
        for i in range(count):
            session.add(
                Camera(
                    id=f"khi-{i:05d}",
                    name=f"Camera {i}",
                    kind=kinds[i % 3],
                    district="Karachi",
                    latitude=rng.uniform(SOUTH + 0.05, NORTH - 0.05),
                    longitude=rng.uniform(WEST + 0.05, EAST - 0.1),
                )
            )
        dispatch.create_unit(session, unit_id="PU-1", callsign="Saddar-1", latitude=24.86, longitude=67.03)


def signed_in(url: str, username: str) -> httpx.Cookies:
    """The cookies of a signed-in session."""
    with httpx.Client(base_url=url) as client:
        client.post("/api/login", json={"username": username, "password": PASSWORD}).raise_for_status()
        return client.cookies


def bench_tiles(requests: int, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "karachi.mbtiles"
        made = make_tiles(path, range(10, 15))
        ctx = Context.create(Settings(data_dir=Path(folder) / "data", map_tiles=path))
        make_user(ctx, Role.operator, "bench")
        result: dict[str, Any] = {
            "tiles_in_file": len(made),
            "mean_tile_kib": round(path.stat().st_size / len(made) / 1024, 1),
        }
        with serving(create_app(ctx, consumers=False)) as url:
            cookies = signed_in(url, "bench")
            rng = random.Random(1)
            picks = [rng.choice(made) for _ in range(requests)]
            local = threading.local()

            def fetch(zxy: tuple[int, int, int], etag: bool = False) -> float:
                client = getattr(local, "client", None)
                if client is None:
                    client = local.client = httpx.Client(base_url=url, cookies=cookies)
                start = time.perf_counter()
                headers = {"If-None-Match": etags[zxy]} if etag else {}
                answer = client.get(f"/map/tiles/{zxy[0]}/{zxy[1]}/{zxy[2]}.png", headers=headers)
                took = time.perf_counter() - start
                assert answer.status_code == (304 if etag else 200), answer.status_code
                if not etag:
                    etags[zxy] = answer.headers["etag"]
                return took

            etags: dict[tuple[int, int, int], str] = {}
            for label, parallel, etag in (
                ("one_client", 1, False),
                (f"{workers}_clients", workers, False),
                (f"{workers}_clients_304", workers, True),
            ):
                start = time.perf_counter()
                with ThreadPoolExecutor(parallel) as pool:
                    took = list(
                        track(
                            pool.map(fetch, picks, [etag] * len(picks)),
                            total=len(picks),
                            description=f"tiles, {label}",
                            console=err,
                        )
                    )
                wall = time.perf_counter() - start
                took.sort()
                result[label] = {
                    "tiles_per_s": round(len(took) / wall),
                    "p50_ms": round(statistics.median(took) * 1000, 2),
                    "p95_ms": round(took[int(len(took) * 0.95)] * 1000, 2),
                }
            with httpx.Client(base_url=url, cookies=cookies) as client:
                times = []
                for _ in range(300):
                    start = time.perf_counter()
                    client.get("/api/ui/me").raise_for_status()
                    times.append(time.perf_counter() - start)
            result["signed_in_request_p50_ms"] = round(statistics.median(times) * 1000, 2)
        ctx.db.dispose()
    return result


def bench_browser(counts: list[int]) -> dict[str, Any]:
    if not CHROMIUM.exists():
        return {"skipped": f"{CHROMIUM} is missing"}
    from playwright.sync_api import sync_playwright

    results: dict[str, Any] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for count in counts:
            err.print(f"browser: {count} cameras")
            with tempfile.TemporaryDirectory() as folder:
                ctx = Context.create(Settings(data_dir=Path(folder) / "data"))
                add_cameras(ctx, count)
                make_user(ctx, Role.supervisor, "bench")
                with serving(create_app(ctx)) as url:
                    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
                    page.goto(url + "/login")
                    page.fill("#username", "bench")
                    page.fill("#password", PASSWORD)
                    start = time.perf_counter()
                    page.click("#sign-in")
                    page.wait_for_selector("body[data-ready=yes]", timeout=120_000)
                    page.wait_for_selector("#map [data-camera-id], #map canvas", timeout=120_000)
                    ready = time.perf_counter() - start
                    # One zoom step: every marker is placed again; the main thread's long tasks say how long.
                    page.evaluate(
                        "() => { window.__busy = 0; new PerformanceObserver((list) => { for (const e of"
                        " list.getEntries()) window.__busy += e.duration; }).observe({ type: 'longtask' }); }"
                    )
                    page.click("#map .leaflet-control-zoom-in")
                    page.wait_for_timeout(1500)
                    results[str(count)] = {
                        "ready_s": round(ready, 2),
                        "zoom_step_busy_ms": round(page.evaluate("() => window.__busy"), 1),
                        "heap_mib": round(
                            page.evaluate("() => performance.memory?.usedJSHeapSize || 0") / 2**20, 1
                        ),
                    }
                    page.context.close()
                ctx.db.dispose()
        browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="500 tile requests, 1,076 cameras")
    parser.add_argument(
        "--cameras", default="1076,4000,12000", help="camera counts for the browser, comma-separated"
    )
    parser.add_argument("--requests", type=int, default=2000, help="tile requests per run")
    parser.add_argument("--workers", type=int, default=8, help="clients at once")
    args = parser.parse_args()
    requests = 500 if args.quick else args.requests
    counts = [1076] if args.quick else [int(c) for c in args.cameras.split(",")]
    report = {"tiles": bench_tiles(requests, args.workers), "browser": bench_browser(counts)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
