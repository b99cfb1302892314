"""Two `safecity worker` processes on a real NATS: a fair share each, and a killed one's cameras move on.

The workers are real processes started with the real command, reading synthetic:// cameras (the
scheme loads by itself in a worker), holding leases in JetStream KV. One is killed with SIGKILL (no
hand-over, no goodbye); the time from the kill to the survivor's first analysed frame of each
orphaned camera (its "online" health report) is the failover time, and must stay under 10 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import CameraHealth, Event
from safecity.settings import Settings
from safecity.worker.cli import cluster_status
from tests.worker.conftest import PrivateNats, free_port

CAMERAS = [f"khi-fixed-{n}" for n in range(6)]


@pytest.fixture
def city(private_nats: PrivateNats, tmp_path: Path) -> Iterator[Context]:
    settings = Settings(data_dir=tmp_path / "data", bus="nats", nats_url=private_nats.url)
    context = Context.create(settings)
    with context.db.session() as session:
        for camera_id in CAMERAS:
            cameras.create(
                session,
                CameraIn.model_validate(
                    {
                        "id": camera_id,
                        "name": camera_id,
                        "kind": "fixed",
                        "district": "Central",
                        "latitude": 24.92,
                        "longitude": 67.03,
                        "stream_url": f"synthetic://road/{camera_id}?fps=5",
                    }
                ),
                actor="test",
            )
    yield context
    context.db.dispose()


class Worker:
    """One `safecity worker` process of the city."""

    def __init__(self, ctx: Context, worker_id: str, logs: Path) -> None:
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "SAFECITY_DATA_DIR": str(ctx.settings.data_dir),
            "SAFECITY_BUS": "nats",
            "SAFECITY_NATS_URL": ctx.settings.nats_url,
            "SAFECITY_WORKER_ID": worker_id,
            "SAFECITY_LOG_LEVEL": "WARNING",
            "SAFECITY_WORKER_METRICS_PORT": str(self.metrics_port),
        }
        self.id = worker_id
        self.log = logs / f"{worker_id}.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "safecity.cli", "worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture
async def workers(city: Context, tmp_path: Path) -> AsyncIterator[dict[str, Worker]]:
    started = {w: Worker(city, w, tmp_path) for w in ("worker-a", "worker-b")}
    yield started
    for worker in started.values():
        worker.stop()


async def wait_for_status(
    ctx: Context, check: Any, timeout: float, workers: dict[str, Worker]
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = await cluster_status(ctx)
        if check(status):
            return status
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.id}\n{w.log.read_text()[-3000:]}" for w in workers.values())
            pytest.fail(f"cluster never reached the expected state: {status}\n{logs}")
        await asyncio.sleep(0.3)


async def test_a_killed_workers_cameras_are_analysed_by_the_other_within_ten_seconds(
    city: Context, workers: dict[str, Worker]
) -> None:
    ctx = city
    await ctx.bus.start()
    online: list[CameraHealth] = []

    def note(event: Event) -> None:
        if isinstance(event, CameraHealth) and event.state == "online":
            online.append(event)

    await ctx.bus.subscribe([CameraHealth.type], note)
    try:

        def shared(status: dict[str, Any]) -> bool:
            holding = {w["id"]: w["cameras"] for w in status["workers"] if w["alive"]}
            return not status["unassigned"] and len(holding) == 2 and all(holding.values())

        status = await wait_for_status(ctx, shared, 90, workers)
        assert sorted(c["id"] for c in status["cameras"]) == CAMERAS
        assert {"id", "host", "pid", "capacity", "cameras", "last_seen"} <= set(status["workers"][0])
        held = [c for w in status["workers"] for c in w["cameras"]]
        assert sorted(held) == CAMERAS  # each camera analysed by exactly one worker

        orphans = set(next(w["cameras"] for w in status["workers"] if w["id"] == "worker-a"))
        killed_at: datetime = utcnow()
        workers["worker-a"].stop(signal.SIGKILL)
        # What an operator (or the benchmark) runs meanwhile: the JSON of `safecity cluster status`.
        command = subprocess.Popen(
            [sys.executable, "-m", "safecity.cli", "cluster", "status", "--json"],
            env={
                **os.environ,
                "SAFECITY_DATA_DIR": str(ctx.settings.data_dir),
                "SAFECITY_BUS": "nats",
                "SAFECITY_NATS_URL": ctx.settings.nats_url,
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        def recovered() -> dict[str, datetime]:
            return {e.camera_id: e.since for e in online if e.camera_id in orphans and e.since > killed_at}

        deadline = time.monotonic() + 30
        while set(recovered()) != orphans and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert set(recovered()) == orphans, workers["worker-b"].log.read_text()[-3000:]
        failover_s = max((since - killed_at).total_seconds() for since in recovered().values())
        print(f"failover of {len(orphans)} cameras after SIGKILL: {failover_s:.1f} s")
        assert failover_s < 10

        status = await cluster_status(ctx)
        assert {c["holder"] for c in status["cameras"]} == {"worker-b"}
        assert status["lease_moves"] >= len(orphans)
        assert next(w for w in status["workers"] if w["id"] == "worker-a")["alive"] is False

        metrics = httpx.get(f"http://127.0.0.1:{workers['worker-b'].metrics_port}/metrics").text
        moves = next(line for line in metrics.splitlines() if line.startswith("safecity_lease_moves_total "))
        assert float(moves.split()[1]) >= len(orphans)
        assert "safecity_worker_spool_depth 0.0" in metrics

        out, err = command.communicate(timeout=60)
        assert command.returncode == 0, err
        printed = json.loads(out)
        assert set(printed) == {"workers", "cameras", "unassigned", "lease_moves"}
        assert sorted(c["id"] for c in printed["cameras"]) == CAMERAS
    finally:
        await ctx.bus.close()
