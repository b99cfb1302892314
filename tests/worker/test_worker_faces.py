"""The face camera pipeline: an enrolled person walking past is matched; a stranger leaves no trace."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import cv2
import numpy as np
import pytest

from safecity.core.camera_config import AnalysisSettings, Zone
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import Event
from safecity.faces import service as faces
from safecity.video.sources import Frame
from safecity.worker.anpr import CameraSetup
from safecity.worker.faces import FacePipelineRunner
from tests.conftest import need_shared_data

pytestmark = pytest.mark.shared_data


def walk_past(photo: np.ndarray, frames: int = 6) -> list[Frame]:
    """Frames of a street in which the person's photo (scaled to a 150 px face region) moves across."""
    scale = 220 / max(photo.shape[:2])
    person = cv2.resize(photo, None, fx=scale, fy=scale)
    h, w = person.shape[:2]
    start = utcnow()
    out = []
    for i in range(frames):
        street = np.full((480, 800, 3), 90, np.uint8)
        x = 60 + i * 25
        street[100 : 100 + h, x : x + w] = person
        out.append(
            Frame(image=street, pts_seconds=i / 5, wall_time=start + timedelta(seconds=i / 5), index=i)
        )
    return out


async def test_enrolled_person_is_matched_and_a_stranger_is_not(ctx: Context) -> None:
    folder = need_shared_data("faces", "images", "face_recognition")
    with ctx.db.session() as session:
        entry = faces.enroll(
            session,
            ctx.media,
            name="Biden",
            category="wanted",
            legal_basis="FIR 12/2026",
            requested_by="officer.a",
            photos=[(folder / "biden_1.jpg").read_bytes()],
            expires_at=utcnow() + timedelta(days=30),
        )
        faces.approve(session, entry.id, "supervisor.b")
    await ctx.bus.start()
    camera = CameraSetup("khi-s-face-01", "face", AnalysisSettings(analysis_fps=5.0))
    runner = await asyncio.to_thread(FacePipelineRunner, ctx, camera)
    media_before = sum(1 for _ in ctx.settings.media_dir.rglob("*.jpg"))

    stranger: list[Event] = []
    for frame in walk_past(cv2.imread(str(folder / "obama_1.jpg"))):
        stranger += await asyncio.to_thread(runner.process, frame)
    assert stranger == []
    assert sum(1 for _ in ctx.settings.media_dir.rglob("*.jpg")) == media_before, (
        "a stranger's face was stored"
    )

    wanted: list[Event] = []
    for frame in walk_past(cv2.imread(str(folder / "biden_2.jpg"))):
        wanted += await asyncio.to_thread(runner.process, frame)
    await ctx.bus.close()
    assert [e.type for e in wanted] == ["face_match"]
    match = wanted[0]
    assert match.entry_id == entry.id  # type: ignore[attr-defined]
    assert match.crop_ref and ctx.media.path(match.crop_ref).exists()  # type: ignore[attr-defined]


async def test_the_same_person_seen_again_by_a_new_tracker_is_a_new_match(ctx: Context) -> None:
    folder = need_shared_data("faces", "images", "face_recognition")
    with ctx.db.session() as session:
        entry = faces.enroll(
            session,
            ctx.media,
            name="Biden",
            category="wanted",
            legal_basis="FIR 12/2026",
            requested_by="officer.a",
            photos=[(folder / "biden_1.jpg").read_bytes()],
            expires_at=utcnow() + timedelta(days=30),
        )
        faces.approve(session, entry.id, "supervisor.b")
    await ctx.bus.start()
    camera = CameraSetup("khi-s-face-01", "face", AnalysisSettings(analysis_fps=5.0))
    photo = cv2.imread(str(folder / "biden_2.jpg"))
    keys = []
    for day in (0, 1):
        # A worker restart builds a new tracker, whose track numbers start again at 1.
        runner = await asyncio.to_thread(FacePipelineRunner, ctx, camera)
        for frame in walk_past(photo):
            frame.wall_time += timedelta(days=day)
            keys += [e.key for e in await asyncio.to_thread(runner.process, frame)]
    await ctx.bus.close()
    assert len(keys) == 2 and keys[0] != keys[1]


async def test_a_wanted_face_outside_the_roi_zones_is_not_matched(ctx: Context) -> None:
    folder = need_shared_data("faces", "images", "face_recognition")
    with ctx.db.session() as session:
        entry = faces.enroll(
            session,
            ctx.media,
            name="Biden",
            category="wanted",
            legal_basis="FIR 12/2026",
            requested_by="officer.a",
            photos=[(folder / "biden_1.jpg").read_bytes()],
            expires_at=utcnow() + timedelta(days=30),
        )
        faces.approve(session, entry.id, "supervisor.b")
    await ctx.bus.start()
    photo = cv2.imread(str(folder / "biden_2.jpg"))
    found = {}
    # The person walks across the left half of the picture (x 60 to 400).
    for side, polygon in {
        "left": [(0, 0), (420, 0), (420, 480)],
        "right": [(500, 0), (800, 0), (800, 480)],
    }.items():
        zone = Zone(name=f"{side} door", polygon=[*polygon, (polygon[0][0], 480)], purpose="roi")
        camera = CameraSetup("khi-s-face-01", "face", AnalysisSettings(analysis_fps=5.0), zones=[zone])
        runner = await asyncio.to_thread(FacePipelineRunner, ctx, camera)
        found[side] = [
            e for frame in walk_past(photo) for e in await asyncio.to_thread(runner.process, frame)
        ]
    await ctx.bus.close()
    assert [e.type for e in found["left"]] == ["face_match"]
    assert found["right"] == []
