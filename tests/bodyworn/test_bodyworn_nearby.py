"""The fixed cameras beside a body-worn recording: near the officer's track, with footage of those moments."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from safecity.bodyworn import custody, ingest, nearby
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.context import Context
from safecity.core.geo import distance_m
from safecity.core.ids import new_id
from safecity.recordings.models import RecordingSegment
from tests.bodyworn.bodyworn_support import KARACHI, META, RECORDED, make_video
from tests.conftest import auth_headers

API = "/api/bodyworn/items"
LAT, LON = KARACHI
STEP = 0.0005  # degrees of longitude a second: the officer drives east at about 50 m/s
SECONDS = 20


def east_gpx(start: datetime = RECORDED) -> str:
    """A GPX track going east along one latitude, one fix a second for SECONDS seconds."""
    rows = "\n".join(
        f'<trkpt lat="{LAT:.6f}" lon="{LON + i * STEP:.6f}">'
        f"<time>{(start + timedelta(seconds=i)).strftime('%Y-%m-%dT%H:%M:%SZ')}</time></trkpt>"
        for i in range(SECONDS + 1)
    )
    return f'<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>{rows}</trkseg></trk></gpx>'


def north_of(metres: float) -> float:
    return LAT + metres / 111_195.0


def add_camera(ctx: Context, camera_id: str, lat: float, lon: float, kind: str = "fixed") -> None:
    with ctx.db.session() as session:
        cameras.create(
            session,
            CameraIn.model_validate(
                {
                    "id": camera_id,
                    "name": f"Junction {camera_id}",
                    "kind": kind,
                    "district": "South",
                    "latitude": lat,
                    "longitude": lon,
                }
            ),
            actor="test",
        )


def add_footage(ctx: Context, camera_id: str, start: datetime, end: datetime) -> None:
    """Indexes a segment of footage (the index is what the search reads)."""
    with ctx.db.session() as session:
        session.add(
            RecordingSegment(
                id=new_id(),
                camera_id=camera_id,
                volume="default",
                path=f"{camera_id}/{new_id()}.mp4",
                start=start,
                end=end,
                bytes=1000,
                codec="h264",
                width=320,
                height=240,
                packets=25,
            )
        )


def drive(ctx: Context, tmp_path: Path) -> str:
    """Ingests a 20 s recording with its GPS track going east; returns the item id."""
    dock = tmp_path / "dock"
    dock.mkdir()
    video = make_video(dock / "FILE0001.MP4", seconds=SECONDS, fps=5)
    (dock / "FILE0001.gpx").write_text(east_gpx())
    return ingest.ingest_file(ctx, video, META, actor="dock-7").item_id or ""


def test_cameras_near_the_track_with_footage_of_those_moments_are_listed_nearest_first(
    ctx: Context, client: TestClient, tmp_path: Path
) -> None:
    item_id = drive(ctx, tmp_path)
    hour = timedelta(hours=1)
    middle = LON + 10 * STEP  # where the officer is 10 s in
    add_camera(ctx, "near", north_of(100), middle)
    add_footage(ctx, "near", RECORDED - hour, RECORDED + hour)
    add_camera(ctx, "closer", north_of(-40), LON + 18 * STEP)
    add_footage(ctx, "closer", RECORDED + timedelta(seconds=12), RECORDED + timedelta(seconds=30))
    add_camera(ctx, "far", north_of(500), middle)  # 500 m off the road
    add_footage(ctx, "far", RECORDED - hour, RECORDED + hour)
    add_camera(ctx, "an-hour-before", north_of(20), LON)  # near, but its footage is of another time
    add_footage(ctx, "an-hour-before", RECORDED - 2 * hour, RECORDED - hour)
    add_camera(ctx, "gap", north_of(20), LON + STEP)  # near at 1 s, recorded only from 15 s on
    add_footage(ctx, "gap", RECORDED + timedelta(seconds=15), RECORDED + hour)
    add_camera(ctx, "other-bodycam", north_of(10), middle, kind="bodycam")
    add_footage(ctx, "other-bodycam", RECORDED - hour, RECORDED + hour)
    investigator = auth_headers(ctx, "investigator", "si.khan")

    found = client.get(f"{API}/{item_id}/cameras", headers=investigator)

    assert found.status_code == 200, found.text
    body = found.json()
    assert body["within_m"] == 300
    assert [c["camera_id"] for c in body["cameras"]] == ["closer", "near"]
    closer, near = body["cameras"]
    assert abs(near["distance_m"] - distance_m(north_of(100), middle, LAT, middle)) < 1
    closest_at = datetime.fromisoformat(near["closest_at"])
    assert abs((closest_at - (RECORDED + timedelta(seconds=10))).total_seconds()) < 0.05
    # Within 300 m while the officer is within sqrt(300² - 100²) = 283 m of the point beside the camera.
    metres_a_second = distance_m(LAT, LON, LAT, LON + STEP)
    half = (300**2 - near["distance_m"] ** 2) ** 0.5 / metres_a_second
    [window] = near["near"]
    assert abs(datetime.fromisoformat(window["start"]) - RECORDED - timedelta(seconds=10 - half)) < timedelta(
        seconds=0.05
    )
    assert abs(datetime.fromisoformat(window["end"]) - RECORDED - timedelta(seconds=10 + half)) < timedelta(
        seconds=0.05
    )
    # Its footage is reported within the clip's own time span.
    [recorded] = near["recorded"]
    assert datetime.fromisoformat(recorded["start"]) == RECORDED
    assert datetime.fromisoformat(recorded["end"]) == RECORDED + timedelta(seconds=SECONDS)
    assert abs(near["recorded_near_seconds"] - 2 * half) < 0.1
    # The closer camera is near from about 12 s to the end; its footage starts at 12 s.
    assert closer["distance_m"] < 41
    assert datetime.fromisoformat(closer["near"][-1]["end"]) == RECORDED + timedelta(seconds=SECONDS)
    assert datetime.fromisoformat(closer["recorded"][0]["start"]) == RECORDED + timedelta(seconds=12)

    wider = client.get(f"{API}/{item_id}/cameras?within_m=600", headers=investigator).json()
    assert [c["camera_id"] for c in wider["cameras"]] == ["closer", "near", "far"]
    every = client.get(f"{API}/{item_id}/cameras?recorded_only=false", headers=investigator).json()
    listed = {c["camera_id"]: c for c in every["cameras"]}
    assert set(listed) == {"closer", "near", "an-hour-before", "gap"}
    assert (
        listed["an-hour-before"]["recorded"] == [] and listed["an-hour-before"]["recorded_near_seconds"] == 0
    )
    assert listed["gap"]["recorded_near_seconds"] == 0 and listed["gap"]["recorded"]

    with ctx.db.session() as session:
        asked = [e for e in custody.entries_of(session, item_id) if e.action == "nearby_cameras"]
    assert [(e.actor, e.detail["within_m"], e.detail["cameras"]) for e in asked] == [
        ("si.khan", 300, ["closer", "near"]),
        ("si.khan", 600, ["closer", "near", "far"]),
        ("si.khan", 300, ["an-hour-before", "gap", "closer", "near"]),  # nearest first
    ]


def test_a_recording_without_a_place_or_time_says_why_no_camera_is_shown(
    ctx: Context, client: TestClient, tmp_path: Path
) -> None:
    untimed = make_video(tmp_path / "UNTIMED.MP4", recorded_at=None)
    placeless = make_video(tmp_path / "PLACELESS.MP4", seed=3)
    untimed_id = ingest.ingest_file(ctx, untimed, META, actor="dock-7").item_id
    placeless_id = ingest.ingest_file(ctx, placeless, META, actor="dock-7").item_id
    add_camera(ctx, "near", LAT, LON)
    add_footage(ctx, "near", RECORDED - timedelta(hours=1), RECORDED + timedelta(hours=1))
    headers = auth_headers(ctx, "supervisor")

    no_time = client.get(f"{API}/{untimed_id}/cameras", headers=headers).json()
    no_place = client.get(f"{API}/{placeless_id}/cameras", headers=headers).json()

    assert no_time["cameras"] == [] and "time is unknown" in no_time["note"]
    assert no_place["cameras"] == [] and "no GPS track" in no_place["note"]
    assert no_place["start"] is not None


def test_the_nearby_cameras_need_both_body_worn_and_recordings_reading_and_a_sane_distance(
    ctx: Context, client: TestClient, tmp_path: Path
) -> None:
    item_id = drive(ctx, tmp_path)
    operator = auth_headers(ctx, "operator")  # recordings, but no body-worn footage
    officer = auth_headers(ctx, "traffic_officer")  # uploads body-worn footage, cannot view it
    investigator = auth_headers(ctx, "investigator")

    assert client.get(f"{API}/{item_id}/cameras", headers=operator).status_code == 403
    assert client.get(f"{API}/{item_id}/cameras", headers=officer).status_code == 403
    assert client.get(f"{API}/{item_id}/cameras?within_m=0", headers=investigator).status_code == 422
    assert client.get(f"{API}/{item_id}/cameras?within_m=9000", headers=investigator).status_code == 422
    assert client.get(f"{API}/missing/cameras", headers=investigator).status_code == 404


def test_a_single_fix_is_a_place_held_for_the_whole_clip() -> None:
    start = RECORDED
    route = nearby.route_within([[start.isoformat(), LAT, LON]], start, start + timedelta(seconds=30))
    assert route is not None
    x, y = nearby.plane(route.origin, np.array([north_of(50.0)]), np.array([LON]))

    closest, _, near, near_from, near_to = nearby.near_windows(route, x, y, 100.0)

    assert abs(float(closest.min()) - 50.0) < 0.1
    assert near.all()
    assert float(near_from[near].min()) == 0.0 and float(near_to[near].max()) == 30.0
