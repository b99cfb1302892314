"""Searching recorded footage for a face: found where the person walks past, audited, bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.context import Context
from safecity.core.errors import InvalidInput
from safecity.faces import footage
from safecity.recordings.models import RecordingSegment
from tests.conftest import auth_headers, need_shared_data

pytestmark = pytest.mark.shared_data
START = datetime(2026, 11, 3, 21, 40, tzinfo=UTC)


def record_walk(path: Path, photo: np.ndarray, *, seconds: int = 6, fps: int = 5) -> None:
    """Encodes a street where the person walks in after 2 s, key-frame every second."""
    scale = 220 / max(photo.shape[:2])
    person = cv2.resize(photo, None, fx=scale, fy=scale)
    h, w = person.shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 800, 480, "yuv420p"
        stream.options = {"g": str(fps), "preset": "ultrafast"}
        stream.time_base = Fraction(1, fps)
        for i in range(seconds * fps):
            street = np.full((480, 800, 3), 90, np.uint8)
            if i >= 2 * fps:
                x = 40 + (i - 2 * fps) * 20
                street[120 : 120 + h, x : x + w] = person
            frame = av.VideoFrame.from_ndarray(street, format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture
def recorded(ctx: Context, tmp_path: Path) -> Path:
    folder = need_shared_data("faces", "images", "face_recognition")
    video = tmp_path / "segment.mp4"
    record_walk(video, cv2.imread(str(folder / "biden_2.jpg")))
    with ctx.db.session() as session:
        cameras.create(
            session,
            CameraIn.model_validate(
                {
                    "id": "khi-s-face-01",
                    "name": "Regal Chowk",
                    "kind": "face",
                    "district": "South",
                    "latitude": 24.86,
                    "longitude": 67.02,
                }
            ),
            actor="test",
        )
        session.add(
            RecordingSegment(
                id="seg1",
                camera_id="khi-s-face-01",
                volume="default",
                path=str(video),
                start=START,
                end=START + timedelta(seconds=6),
                bytes=video.stat().st_size,
                codec="h264",
                width=800,
                height=480,
                packets=30,
            )
        )
    return folder


def test_the_person_is_found_where_they_walk_past_and_the_search_is_audited(
    ctx: Context, client: TestClient, recorded: Path
) -> None:
    investigator = auth_headers(ctx, "investigator")
    form = {
        "case_reference": "FIR 88/2026",
        "reason": "suspect seen near Regal Chowk",
        "cameras": "khi-s-face-01",
        "start": START.isoformat(),
        "end": (START + timedelta(minutes=1)).isoformat(),
    }
    photo = {"photo": ("probe.jpg", (recorded / "biden_1.jpg").read_bytes(), "image/jpeg")}
    res = client.post("/api/faces/recordings-search", headers=investigator, data=form, files=photo)
    assert res.status_code == 200, res.text
    hits = res.json()
    assert hits, "the person in the recording was not found"
    first = datetime.fromisoformat(min(h["at"] for h in hits))
    assert START + timedelta(seconds=2) <= first <= START + timedelta(seconds=4)
    assert all(h["camera_id"] == "khi-s-face-01" and h["play_url"].startswith("/recordings?") for h in hits)
    stranger = {"photo": ("other.jpg", (recorded / "obama_1.jpg").read_bytes(), "image/jpeg")}
    assert (
        client.post("/api/faces/recordings-search", headers=investigator, data=form, files=stranger).json()
        == []
    )
    audit_rows = client.get(
        "/api/audit?action=faces.recordings_search", headers=auth_headers(ctx, "auditor")
    ).json()
    assert len(audit_rows) == 2 and audit_rows[0]["target"] == "FIR 88/2026"


def test_operators_may_not_search_footage_for_faces(ctx: Context, client: TestClient, recorded: Path) -> None:
    form = {
        "case_reference": "FIR 1/2026",
        "reason": "curious",
        "cameras": "khi-s-face-01",
        "start": START.isoformat(),
        "end": (START + timedelta(minutes=1)).isoformat(),
    }
    photo = {"photo": ("p.jpg", (recorded / "biden_1.jpg").read_bytes(), "image/jpeg")}
    res = client.post(
        "/api/faces/recordings-search", headers=auth_headers(ctx, "operator"), data=form, files=photo
    )
    assert res.status_code == 403


def test_a_search_needs_a_case_and_stays_within_two_camera_hours(ctx: Context, recorded: Path) -> None:
    photo = (recorded / "biden_1.jpg").read_bytes()
    common = {"actor": "inv", "camera_ids": ["khi-s-face-01"], "threshold": 0.9}
    with ctx.db.session() as session:
        with pytest.raises(InvalidInput, match="case reference"):
            footage.search_recordings(
                session,
                ctx.settings,
                ctx.media,
                photo,
                case_reference="",
                reason="why",
                start=START,
                end=START + timedelta(minutes=1),
                **common,
            )  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="camera-hours"):
            footage.search_recordings(
                session,
                ctx.settings,
                ctx.media,
                photo,
                case_reference="FIR 2",
                reason="why",
                start=START,
                end=START + timedelta(hours=3),
                **common,
            )  # type: ignore[arg-type]
