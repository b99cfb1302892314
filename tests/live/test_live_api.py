"""The single camera view's actions (instant replay, snapshot to evidence) and the wall's saved layouts."""

from __future__ import annotations

import io
import time

import av
import httpx
from fastapi.testclient import TestClient

from safecity.audit import service as audit
from safecity.core.context import Context
from tests.conftest import auth_headers
from tests.live.conftest import VideoCity


def test_instant_replay_plays_the_last_moments_including_the_segment_still_being_written(
    video_city: VideoCity,
) -> None:
    ctx = video_city.ctx
    headers = auth_headers(ctx, "operator")
    time.sleep(6)  # the cameras record from the start; nothing is indexed yet (segments close each minute)
    with httpx.Client(base_url=video_city.url, headers=headers, timeout=30) as client:
        answer = client.get("/api/live/cameras/cam-c/replay.mp4", params={"seconds": 30})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "video/mp4" and answer.headers["x-recording-start"]
        with av.open(io.BytesIO(answer.content), format="mp4") as container:
            frames = list(container.decode(video=0))
        assert len(frames) >= 30  # at least 3 s of 10 fps, up to a moment ago
        none = client.get("/api/live/cameras/cam-none/replay.mp4")
        assert none.status_code == 404 and "recorded nothing in the last 30 s" in none.json()["detail"]
    with ctx.db.session() as session:
        assert audit.entries(session, action="recordings.play")[0].target == "cam-c"


def test_a_snapshot_of_live_video_is_kept_as_evidence_owned_and_audited(video_city: VideoCity) -> None:
    ctx = video_city.ctx
    operator, cashier = auth_headers(ctx, "operator"), auth_headers(ctx, "cashier")
    with httpx.Client(base_url=video_city.url, timeout=30) as client:
        taken = client.post("/api/live/cameras/cam-d/snapshots", headers=operator)
        assert taken.status_code == 201, taken.text
        shot = taken.json()
        picture = client.get(shot["url"], headers=operator)
        assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"
        assert client.get(shot["url"], headers=cashier).status_code == 403
        assert client.post("/api/live/cameras/cam-d/snapshots", headers=cashier).status_code == 403
    with ctx.db.session() as session:
        kept = audit.entries(session, action="live.snapshot")[0]
        assert kept.target == "cam-d" and kept.detail["ref"] == shot["ref"]
        assert kept.detail["sha256"] == shot["sha256"]


def test_layouts_are_saved_per_operator_and_shared_with_a_room(ctx: Context, client: TestClient) -> None:
    asif, bilal = auth_headers(ctx, "operator"), auth_headers(ctx, "operator")
    mine = {"grid": "2x2", "pages": [["cam-a", "cam-b"], ["cam-c"]], "tour_seconds": 20}
    saved = client.put("/api/wall/layouts/Saddar", json=mine, headers=asif)
    assert saved.status_code == 200, saved.text
    assert saved.json()["pages"] == [["cam-a", "cam-b", None, None], ["cam-c", None, None, None]]
    assert client.get("/api/wall/layouts", headers=bilal).json() == []  # his own only, until shared
    shared = {**mine, "grid": "1+5", "room": "Control room A", "tour_seconds": None}
    client.put("/api/wall/layouts/Night shift", json=shared, headers=asif).raise_for_status()
    seen = client.get("/api/wall/layouts", headers=bilal).json()
    assert [(layout["name"], layout["room"], len(layout["pages"][0])) for layout in seen] == [
        ("Night shift", "Control room A", 6)
    ]
    assert client.delete("/api/wall/layouts/Night shift", headers=bilal).status_code == 404
    assert client.delete("/api/wall/layouts/Night shift", headers=asif).status_code == 204
    too_many = client.put("/api/wall/layouts/x", json={"grid": "1", "pages": [["a", "b"]]}, headers=asif)
    assert too_many.status_code == 422 and "a 1 page holds 1" in too_many.text
