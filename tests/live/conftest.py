"""Fixtures of the live video tests: a small city of cameras and the app serving them with their worker."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.context import Context
from tests.browser import serving
from tests.conftest import PASSWORD, make_user
from tests.live.live_support import write_hevc

SYNTHETIC = "synthetic://road/{id}?fps=10&seed={seed}"


@dataclass
class VideoCity:
    """The app serving a few cameras with their worker in the same process (embedded)."""

    url: str
    ctx: Context

    def cookie(self, role: str = "operator") -> tuple[str, str]:
        """Signs a new user with `role` in; returns (user name, Cookie header)."""
        name = make_user(self.ctx, role)
        # Generous: the app answers its first request while six cameras start beside it (CI runs two
        # test processes on two cores).
        with httpx.Client(base_url=self.url, timeout=60) as client:
            client.post("/api/login", json={"username": name, "password": PASSWORD}).raise_for_status()
            return name, "; ".join(f"{k}={v}" for k, v in client.cookies.items())

    @property
    def ws(self) -> str:
        return self.url.replace("http://", "ws://")


def add_cameras(ctx: Context, folder: Path) -> None:
    """Registers the test cameras: four synthetic (one with a sub-stream), H.265, no stream, dropping."""
    rows = [
        {"id": f"cam-{n}", "stream_url": SYNTHETIC.format(id=f"cam-{n}", seed=seed)}
        for seed, n in enumerate("abcd", 1)
    ]
    rows[0]["substream_url"] = "synthetic://road/cam-a-sub?fps=10&seed=9"
    rows.append({"id": "cam-h265", "stream_url": str(write_hevc(folder / "h265.mp4"))})
    rows.append({"id": "cam-none", "stream_url": ""})
    rows.append({"id": "cam-drop", "stream_url": "synthetic://road/cam-drop?fps=10&fault=drop@2"})
    with ctx.db.session() as session:
        for i, row in enumerate(rows):
            data = {"name": f"Camera {row['id']}", "kind": "fixed", "district": "Saddar", **row}
            cameras.create(
                session,
                CameraIn(latitude=24.86 + i / 1000, longitude=67.01, **data),
                actor="test",  # type: ignore[arg-type]
            )


@pytest.fixture
def video_city(ctx: Context, tmp_path: Path) -> Iterator[VideoCity]:
    """Serves the app with its cameras held in the same process (as `safecity serve` embedded)."""
    from safecity.server import create_app
    from safecity.worker.runtime import start_pipelines_hook

    add_cameras(ctx, tmp_path)
    with serving(create_app(ctx, on_started=[start_pipelines_hook()])) as url:
        yield VideoCity(url, ctx)
