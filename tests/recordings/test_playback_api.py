"""Playback over HTTP: timelines with spans, gaps and events; fMP4 from any moment; clear 404s otherwise."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime, timedelta

import av
from fastapi.testclient import TestClient

from safecity.core.context import Context
from safecity.recordings import service
from tests.conftest import auth_headers
from tests.recordings.recordings_support import T0, Recorded


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _frames(data: bytes) -> int:
    with av.open(io.BytesIO(data), format="mp4") as container:
        return sum(1 for _ in container.decode(video=0))


def test_timeline_shows_recorded_spans_gaps_and_events(
    ctx: Context, client: TestClient, record: Callable[..., Recorded]
) -> None:
    first = record("cam-1", seconds=4)
    record("cam-1", seconds=4, start=T0 + timedelta(seconds=30), register=False)
    with ctx.db.session() as session:
        service.mark_event(
            session,
            camera_id="cam-1",
            at=T0 + timedelta(seconds=2),
            ref="alert:a1",
            reason="stolen car ABC-123",
        )
    headers = auth_headers(ctx, "operator")

    answer = client.get(
        "/api/recordings/cameras/cam-1/timeline",
        headers=headers,
        params={"start": _iso(T0 - timedelta(seconds=10)), "end": _iso(T0 + timedelta(seconds=60))},
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["recorded"]) == 2
    assert body["recorded"][0]["start"].startswith(T0.strftime("%Y-%m-%dT%H:%M:%S"))
    assert len(body["gaps"]) == 3  # before, between, after
    between = body["gaps"][1]
    assert datetime.fromisoformat(between["start"]) >= first.end - timedelta(seconds=0.1)
    assert body["events"][0]["reason"] == "stolen car ABC-123"
    assert body["recorder"] == "stopped"


def test_playback_starts_at_the_keyframe_before_the_moment_and_plays_to_the_gap(
    ctx: Context, client: TestClient, record: Callable[..., Recorded]
) -> None:
    record("cam-1", seconds=8, segment_seconds=2)
    headers = auth_headers(ctx, "investigator")
    moment = T0 + timedelta(seconds=3.5)

    located = client.get("/api/recordings/cameras/cam-1/locate", headers=headers, params={"at": _iso(moment)})
    played = client.get(located.json()["url"], headers=headers)

    assert located.status_code == 200, located.text
    assert located.json()["origin"].startswith((T0 + timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%S"))
    assert 0.4 < located.json()["offset_seconds"] < 0.6
    assert played.status_code == 200, played.text
    assert played.headers["content-type"] == "video/mp4"
    assert played.headers["x-recording-start"] == located.json()["origin"].replace("Z", "+00:00")
    assert _frames(played.content) == 125  # from second 3 to the end of the eight recorded seconds


def test_playback_outside_retention_or_in_a_gap_is_a_clear_404(
    ctx: Context, client: TestClient, record: Callable[..., Recorded]
) -> None:
    record("cam-1", seconds=4)
    headers = auth_headers(ctx, "operator")

    old = client.get(
        "/api/recordings/cameras/cam-1/play.mp4",
        headers=headers,
        params={"at": _iso(T0 - timedelta(days=60))},
    )
    gap = client.get(
        "/api/recordings/cameras/cam-1/play.mp4",
        headers=headers,
        params={"at": _iso(T0 + timedelta(minutes=5))},
    )
    unknown = client.get("/api/recordings/cameras/nope/play.mp4", headers=headers, params={"at": _iso(T0)})
    garbled = client.get(
        "/api/recordings/cameras/cam-1/play.mp4", headers=headers, params={"at": "last tuesday"}
    )

    assert old.status_code == 404 and "outside the retention" in old.json()["detail"]
    assert "oldest footage" in old.json()["hint"]
    assert gap.status_code == 404 and "gap" in gap.json()["detail"]
    assert unknown.status_code == 404
    assert garbled.status_code == 422


def test_playback_needs_a_role_that_may_watch_recordings(ctx: Context, client: TestClient) -> None:
    assert client.get("/api/recordings/cameras/cam-1/play.mp4", params={"at": _iso(T0)}).status_code == 401
    auditor = auth_headers(ctx, "auditor")
    assert (
        client.get(
            "/api/recordings/cameras/cam-1/play.mp4", headers=auditor, params={"at": _iso(T0)}
        ).status_code
        == 403
    )


def test_search_finds_the_cameras_that_recorded_a_district_or_map_box(
    ctx: Context, client: TestClient, record: Callable[..., Recorded]
) -> None:
    record("cam-south", seconds=4, district="South", lat=24.85, lon=67.00)
    record("cam-east", seconds=4, district="East", lat=24.90, lon=67.10)
    headers = auth_headers(ctx, "investigator")
    window = {"start": _iso(T0), "end": _iso(T0 + timedelta(minutes=1))}

    by_district = client.get(
        "/api/recordings/search", headers=headers, params={**window, "district": "South"}
    )
    by_box = client.get(
        "/api/recordings/search", headers=headers, params={**window, "bbox": "24.88,67.05,24.95,67.15"}
    )
    nowhere = client.get("/api/recordings/search", headers=headers, params=window)
    bad_box = client.get("/api/recordings/search", headers=headers, params={**window, "bbox": "1,2,3"})
    later = client.get(
        "/api/recordings/search",
        headers=headers,
        params={
            "start": _iso(T0 + timedelta(hours=2)),
            "end": _iso(T0 + timedelta(hours=3)),
            "district": "South",
        },
    )

    assert [h["camera_id"] for h in by_district.json()] == ["cam-south"]
    assert 3.5 < by_district.json()[0]["recorded_seconds"] < 4.5
    assert [h["camera_id"] for h in by_box.json()] == ["cam-east"]
    assert nowhere.status_code == 422 and "district" in nowhere.json()["detail"]
    assert bad_box.status_code == 422
    assert later.json() == []


def test_recordings_page_is_served_to_signed_in_users(ctx: Context, client: TestClient) -> None:
    page = client.get("/recordings", headers=auth_headers(ctx, "operator"))
    assert page.status_code == 200
    assert "/static/recordings.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text
