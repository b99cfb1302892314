"""Camera-maintenance benchmark: a dead stream to "offline" in the maintenance API; the view at city scale.

Three figures, on a fresh data folder (SQLite unless --db-url names PostgreSQL), with the real app:
  time_to_offline   cameras fed synthetic frames through the real health monitor, ticked once a second
                    as the worker does; each stream then stops at a random moment and the benchmark
                    polls GET /api/maintenance/cameras until the camera shows offline there. Reports
                    seconds from the last frame to offline in the API (goal: under 10 s), split into
                    detection at the worker and the centre's part (bus, consumer, database, API).
  health_events     health changes published on the bus and handled by every consumer that takes them
                    (cameras registry and alerts, maintenance history, faults and alert closing): per second.
  city_view         1,076 cameras (Karachi's phase one) with a week of history: response times of the
                    maintenance view, the 7-day uptime report and one camera's history chart.

    .venv/bin/python bench/bench_maintenance.py [--quick] [--cameras 12] [--db-url URL]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from rich.console import Console

from safecity.accounts import service as accounts
from safecity.accounts.models import Role, UserIn
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.bus.memory import MemoryBus
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import CameraHealth
from safecity.core.ids import new_id
from safecity.maintenance.models import CameraFault, HealthSpan
from safecity.server import create_app
from safecity.settings import Settings
from safecity.video.health import HealthMonitor
from safecity.video.sources import Frame

err = Console(stderr=True)
FPS = 10.0
STATES = ["offline", "frozen", "covered", "too_dark", "out_of_focus", "moved", "low_fps"]


def percentile(values: list[float], pct: float) -> float | None:
    """Returns the nearest-rank percentile of `values`, rounded to milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))], 3)


def add_cameras(ctx: Context, count: int, prefix: str) -> list[str]:
    """Registers `count` fixed cameras over five districts; returns their ids."""
    ids = [f"{prefix}-{i:05d}" for i in range(count)]
    with ctx.db.session() as session:
        for i, camera_id in enumerate(ids):
            data = CameraIn(
                id=camera_id,
                name=f"Camera {i}",
                kind="fixed",
                district=["South", "East", "West", "Central", "Korangi"][i % 5],
                latitude=24.80 + (i % 40) * 0.005,
                longitude=67.00 + (i // 40) * 0.005,
            )
            cameras.create(session, data, actor="bench")
    return ids


def bearer(ctx: Context) -> dict[str, str]:
    """Returns an Authorization header of a new supervisor."""
    with ctx.db.session() as session:
        user = accounts.create_user(
            session,
            UserIn(username=f"bench-{new_id()[:8]}", role=Role.supervisor, password="bench-password-1"),
            actor="bench",
        )
        token, _ = accounts.issue_token(session, user, kind="api", hours=2)
    return {"Authorization": f"Bearer {token}"}


def street_frames(count: int = 40) -> list[np.ndarray]:
    """Returns a loop of 320x180 street-like pictures: fixed texture, a moving block, sensor noise."""
    rng = np.random.default_rng(7)
    base = rng.integers(40, 200, size=(18, 32), dtype=np.uint8)
    background = np.kron(base, np.ones((10, 10), dtype=np.uint8))
    frames = []
    for i in range(count):
        grey = background.astype(np.int16) + rng.integers(-3, 4, size=background.shape)
        x = 20 + (i * 6) % 260
        grey[120:160, x : x + 40] = 230
        picture = np.clip(grey, 0, 255).astype(np.uint8)
        frames.append(np.dstack([picture] * 3))
    return frames


def time_to_offline(client: TestClient, ctx: Context, headers: dict[str, str], count: int) -> dict[str, Any]:
    """Feeds `count` cameras, stops each stream at a random moment, times each until offline in the API."""
    ids = add_cameras(ctx, count, "live")
    pictures = street_frames()
    monitors = {camera_id: HealthMonitor(camera_id, expected_fps=FPS) for camera_id in ids}
    locks = {camera_id: threading.Lock() for camera_id in ids}
    died: dict[str, float] = {}
    detected: dict[str, float] = {}
    other_states: list[str] = []
    stop = threading.Event()

    def publish(camera_id: str, change: Any) -> None:
        if change is None:
            return
        if change.state == "offline" and camera_id in died:
            detected.setdefault(camera_id, time.monotonic())
        elif change.state != "online":
            other_states.append(f"{camera_id}:{change.state}")
        ctx.bus.publish_threadsafe(change.to_event())

    def feed(camera_id: str, lives_s: float) -> None:
        start = time.monotonic()
        index = 0
        while not stop.is_set():
            now = time.monotonic()
            if now - start >= lives_s:
                died[camera_id] = now  # the last frame arrived just before: the stream is dead
                return
            frame = Frame(
                pictures[index % len(pictures)], pts_seconds=index / FPS, wall_time=utcnow(), index=index
            )
            with locks[camera_id]:
                change = monitors[camera_id].observe(frame)
            publish(camera_id, change)
            index += 1
            time.sleep(max(0.0, start + index / FPS - time.monotonic()))

    def tick() -> None:
        # The worker runtime ticks every camera's pipelines once a second.
        while not stop.wait(1.0):
            for camera_id in ids:
                with locks[camera_id]:
                    change = monitors[camera_id].tick()
                publish(camera_id, change)

    rng = random.Random(11)
    threads = [
        threading.Thread(target=feed, args=(camera_id, 5.0 + rng.uniform(0, 3)), daemon=True)
        for camera_id in ids
    ]
    threads.append(threading.Thread(target=tick, daemon=True))
    for thread in threads:
        thread.start()
    seen: dict[str, float] = {}
    deadline = time.monotonic() + 40
    polls: list[float] = []
    while len(seen) < count and time.monotonic() < deadline:
        asked = time.monotonic()
        rows = client.get("/api/maintenance/cameras?state=offline", headers=headers).json()
        answered = time.monotonic()
        polls.append(answered - asked)
        for row in rows:
            if row["camera_id"] in died:
                # Shown somewhere between asking and the answer: count the answer (the user's view).
                seen.setdefault(row["camera_id"], answered)
        time.sleep(0.1)
    stop.set()
    total = [seen[c] - died[c] for c in seen]
    detection = [detected[c] - died[c] for c in seen if c in detected]
    centre = [seen[c] - detected[c] for c in seen if c in detected]
    return {
        "cameras": count,
        "shown_offline": len(seen),
        "seconds_p50": percentile(total, 50),
        "seconds_max": percentile(total, 100),
        "under_10_s": all(t < 10 for t in total) and len(seen) == count,
        "detection_s_p50": percentile(detection, 50),
        "centre_s_p50": percentile(centre, 50),
        "centre_s_max": percentile(centre, 100),
        "api_poll_ms_p50": round(1000 * statistics.median(polls), 1) if polls else None,
        "other_states_reported": other_states,
        "offline_after_s": monitors[ids[0]].t.offline_after_s,
        "tick_s": 1.0,
    }


def health_events(client: TestClient, ctx: Context, count: int) -> dict[str, Any]:
    """Publishes `count` health changes over many cameras at once; times until every consumer is done."""
    ids = add_cameras(ctx, max(1, count // 10), "burst")
    start_at = utcnow() - timedelta(days=1)
    events = []
    for i in range(count):
        camera_id = ids[i % len(ids)]
        step = i // len(ids)
        state = "online" if step % 2 == 0 else STATES[step % len(STATES)]
        since = start_at + timedelta(minutes=step)
        events.append(
            CameraHealth(
                key=f"camera_health:{camera_id}:{state}:{since.isoformat()}",
                camera_id=camera_id,
                at=since,
                state=state,  # type: ignore[arg-type]
                since=since,
            )
        )
    assert client.portal is not None and isinstance(ctx.bus, MemoryBus)
    began = time.perf_counter()
    for event in events:
        client.portal.call(ctx.bus.publish, event)
    before = -1
    while before != ctx.bus.published:
        before = ctx.bus.published
        client.portal.call(ctx.bus.drain, 600.0)
    elapsed = time.perf_counter() - began
    return {
        "events": count,
        "cameras": len(ids),
        "seconds": round(elapsed, 2),
        "events_per_s": round(count / elapsed, 1),
        "faults_opened": ctx.counters.get("faults_opened", 0),
        "faults_closed": ctx.counters.get("faults_closed", 0),
    }


def seed_history(ctx: Context, ids: list[str], *, changes_per_day: int, days: int) -> int:
    """Writes `days` of alternating health spans and faults for every camera; returns the spans written."""
    now = utcnow()
    rng = random.Random(5)
    written = 0
    with ctx.db.session() as session:
        for camera_id in ids:
            moment = now - timedelta(days=days)
            rows: list[Any] = []
            for n in range(changes_per_day * days):
                state = "online" if n % 2 == 0 else rng.choice(STATES)
                length = timedelta(minutes=rng.uniform(5, 2 * 24 * 60 / changes_per_day - 5))
                until = moment + length
                last = until >= now or n == changes_per_day * days - 1
                key = f"seed:{camera_id}:{n}"
                rows.append(
                    HealthSpan(
                        id=new_id(),
                        camera_id=camera_id,
                        state=state,
                        detail="",
                        since=moment,
                        until=None if last else until,
                        event_key=key,
                    )
                )
                if state != "online":
                    rows.append(
                        CameraFault(
                            id=new_id(),
                            camera_id=camera_id,
                            state=state,
                            detail="",
                            started_at=moment,
                            outage_since=moment,
                            ended_at=None if last else until,
                            closed_by=None if last else "recovered",
                            resolution="",
                            event_key=key,
                        )
                    )
                written += 1
                moment = until
                if last:
                    break
            session.add_all(rows)
    return written


def timed(call: Callable[[], Any], repeat: int) -> float:
    """Returns the median milliseconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return round(1000 * statistics.median(times), 1)


def city_view(
    client: TestClient, ctx: Context, headers: dict[str, str], *, count: int, changes: int
) -> dict[str, Any]:
    """Seeds `count` cameras with a week of history; times the maintenance view's main requests."""
    ids = add_cameras(ctx, count, "city")
    spans = seed_history(ctx, ids, changes_per_day=changes, days=8)

    def get(url: str) -> Callable[[], Any]:
        def call() -> Any:
            answer = client.get(url, headers=headers)
            assert answer.status_code == 200, answer.text
            return answer.json()

        return call

    rows = get("/api/maintenance/cameras")()
    return {
        "cameras": count,
        "spans": spans,
        "changes_per_day": changes,
        "cameras_listed": len(rows),
        "cameras_view_ms": timed(get("/api/maintenance/cameras"), 3),
        "faulty_view_ms": timed(get("/api/maintenance/cameras?faulty=true"), 3),
        "uptime_7d_ms": timed(get("/api/maintenance/uptime?days=7"), 3),
        "history_ms": timed(get(f"/api/maintenance/cameras/{ids[0]}/history?days=7"), 5),
        "open_faults_ms": timed(get("/api/maintenance/faults?open=true"), 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer cameras and events (about a minute)")
    parser.add_argument("--cameras", type=int, default=None, help="live cameras for time_to_offline")
    parser.add_argument("--events", type=int, default=None, help="health events for the burst")
    parser.add_argument("--city", type=int, default=1076, help="cameras in the city-scale view")
    parser.add_argument("--changes-per-day", type=int, default=None, help="health changes per camera per day")
    parser.add_argument(
        "--db-url", default=None, help="PostgreSQL URL (default: SQLite in a temporary folder)"
    )
    args = parser.parse_args()
    live = args.cameras or (6 if args.quick else 16)
    burst = args.events or (600 if args.quick else 3000)
    changes = args.changes_per_day or (4 if args.quick else 12)
    result: dict[str, Any] = {"quick": args.quick}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", database_url=args.db_url)
        ctx = Context.create(settings)
        result["database"] = "postgresql" if args.db_url else "sqlite"
        with TestClient(create_app(ctx)) as client:
            headers = bearer(ctx)
            err.print(f"[bold]time_to_offline[/]: {live} cameras, each stream dies 5-8 s in")
            result["time_to_offline"] = time_to_offline(client, ctx, headers, live)
            err.print(f"[bold]health_events[/]: {burst} changes")
            result["health_events"] = health_events(client, ctx, burst)
            err.print(f"[bold]city_view[/]: {args.city} cameras, {changes} changes a day, 8 days")
            result["city_view"] = city_view(client, ctx, headers, count=args.city, changes=changes)
        ctx.db.dispose()
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
