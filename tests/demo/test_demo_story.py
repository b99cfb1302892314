"""The seed story's pieces: who the wanted man is, how he rides past, and that the face camera knows him."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from safecity.core.camera_config import AnalysisSettings
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import Event, FaceMatch
from safecity.demo import story
from safecity.demo.city import build_city
from safecity.demo.scenes import Pass, SceneRenderer
from safecity.settings import Settings
from safecity.video.sources import Frame
from safecity.worker.anpr import CameraSetup
from safecity.worker.faces import FacePipelineRunner
from tests.conftest import need_shared_data

LABELS = "file,person_id,source_repo,source_name,role,labelled_faces,source_path,note\n"


def _face_set(folder: Path, rows: list[tuple[str, str, str]]) -> Path:
    """Writes a labels.csv and a picture per row (file, person, role) into `folder`."""
    lines = [LABELS]
    for file, person, role in rows:
        (folder / file).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / file), np.full((120, 100, 3), 128, np.uint8))
        lines.append(f"{file},{person},repo,,{role},1,{file},\n")
    (folder / "labels.csv").write_text("".join(lines))
    return folder


def test_a_missing_face_set_says_where_it_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(story.StoryUnavailable, match=str(tmp_path / "absent")):
        story.find_wanted(tmp_path / "absent")


def test_the_wanted_man_has_a_watchlist_photo_and_another_photo(tmp_path: Path) -> None:
    folder = _face_set(
        tmp_path,
        [
            ("images/a_1.jpg", "x_alone", "gallery"),  # only one photo: he cannot be matched again
            ("images/b_1.jpg", "x_pair", "gallery"),
            ("images/b_2.jpg", "x_pair", "probe"),
            ("images/c_1.jpg", "x_stranger", "unknown_probe"),
        ],
    )
    wanted = story.find_wanted(folder)
    assert wanted.person_id == "x_pair"
    assert (wanted.watchlist_photo.name, wanted.street_photo.name) == ("b_1.jpg", "b_2.jpg")
    _face_set(tmp_path, [("images/a_1.jpg", "x_alone", "gallery")])
    with pytest.raises(story.StoryUnavailable, match="no person with two photos"):
        story.find_wanted(folder)


def test_a_street_photo_without_a_face_is_refused(tmp_path: Path) -> None:
    ok, data = cv2.imencode(".jpg", np.full((200, 200, 3), 90, np.uint8))
    assert ok
    with pytest.raises(story.StoryUnavailable, match="no face found"):
        story.rider_head(data.tobytes())


def test_a_rider_waits_at_the_chowk_then_rides_on() -> None:
    rider = Pass(0.0, "", 15.0, (0, 0, 0), "motorcycle", halt=(90.0, 8.0))
    reached = (90.0 + 170) / (15.0 / 3.6 * 12)
    assert rider.top_at(reached - 1) < 90.0
    assert rider.top_at(reached + 0.1) == rider.top_at(reached + 7.9) == pytest.approx(90.0)
    assert rider.top_at(reached + 9) > 90.0
    assert Pass(0.0, "X", 15.0, (0, 0, 0)).top_at(reached + 5) > 90.0  # no halt: drives straight on


@pytest.mark.shared_data
async def test_the_face_camera_matches_the_wanted_rider_to_his_entry(ctx: Context) -> None:
    folder = need_shared_data("faces", "labels.csv").parent
    wanted = story.find_wanted(folder)
    with ctx.db.session() as session:
        entry_id = story.enrol_wanted(session, ctx.media, wanted)
    head = story.rider_head(wanted.street_photo.read_bytes())
    scene = SceneRenderer(story.FACE_CAM, junction=False, seed=3, faces={story.RIDER_FACE: head})
    rider = Pass(0.0, "", 15.0, (40, 90, 150), "motorcycle", face=story.RIDER_FACE, halt=(90.0, 8.0))
    await ctx.bus.start()
    camera = CameraSetup(story.FACE_CAM, "face", AnalysisSettings(analysis_fps=1.0))
    runner = await asyncio.to_thread(FacePipelineRunner, ctx, camera, fps=1.0)
    start = utcnow()
    events: list[Event] = []
    for second in range(16):  # analysed once a second, as the demo's face camera is
        image = scene.render(float(second), [rider] if second == 0 else [])
        frame = Frame(
            image=image, pts_seconds=second, wall_time=start + timedelta(seconds=second), index=second
        )
        events += await asyncio.to_thread(runner.process, frame)
    runner.close()
    await ctx.bus.close()
    assert len(events) == 1 and isinstance(events[0], FaceMatch)
    assert events[0].entry_id == entry_id and events[0].similarity >= runner.voter.threshold


def test_a_labels_file_without_its_columns_is_named(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("name,picture\nbiden,biden.jpg\n")
    with pytest.raises(story.StoryUnavailable, match="has no column file, person_id, role"):
        story.find_wanted(tmp_path)


def test_a_city_whose_face_photos_show_no_face_runs_without_the_story(tmp_path: Path) -> None:
    folder = _face_set(
        tmp_path / "faces", [("images/b_1.jpg", "x_pair", "gallery"), ("images/b_2.jpg", "x_pair", "probe")]
    )
    ctx = Context.create(Settings(data_dir=tmp_path / "city"))
    try:
        city, plan = build_city(ctx, seconds=60, faces_dir=folder)
    finally:
        ctx.db.dispose()
    assert city.face_story.startswith("no face story: no face found") and city.wanted_entry_id is None
    assert city.rider_head is None and city.story_unit == "mobile-01"
    # The face camera still streams riders and cars, none of them the wanted man.
    passes = plan.due(story.FACE_CAM, 3600)
    assert passes and not any(p.face for p in passes)


@pytest.mark.shared_data
def test_a_watchlist_photo_the_list_refuses_leaves_the_story_out(tmp_path: Path) -> None:
    street = need_shared_data("faces", "images", "deepface", "p05_img17.jpg")
    folder = _face_set(tmp_path / "faces", [("images/blank.jpg", "x_pair", "gallery")])
    # The street photo is read in place from the shared set; the watch-list photo shows nobody.
    (folder / "labels.csv").write_text(
        LABELS + f"images/blank.jpg,x_pair,r,,gallery,1,,\n{street},x_pair,r,,probe,1,,\n"
    )
    ctx = Context.create(Settings(data_dir=tmp_path / "city"))
    try:
        city, plan = build_city(ctx, seconds=60, faces_dir=folder)
    finally:
        ctx.db.dispose()
    assert city.face_story.startswith(f"no face story: the watch list refused {folder / 'images/blank.jpg'}")
    assert city.wanted_entry_id is None and city.rider_head is None
    assert not any(p.face for p in plan.due(story.FACE_CAM, 3600))


def test_the_stranger_is_another_person_preferring_one_the_set_enrolls_nowhere(tmp_path: Path) -> None:
    folder = _face_set(
        tmp_path,
        [
            ("images/b_1.jpg", "x_pair", "gallery"),
            ("images/b_2.jpg", "x_pair", "probe"),
            ("images/g_1.jpg", "x_group", "multi"),  # several faces: not one man's
            ("images/d_1.jpg", "x_other", "gallery"),
            ("images/c_1.jpg", "x_stranger", "unknown_probe"),
        ],
    )
    assert story.find_stranger(folder, besides="x_pair") == story.Stranger(
        "x_stranger", folder / "images/c_1.jpg"
    )
    _face_set(tmp_path, [("images/b_1.jpg", "x_pair", "gallery"), ("images/d_1.jpg", "x_other", "probe")])
    assert story.find_stranger(folder, besides="x_pair").person_id == "x_other"
    with pytest.raises(story.StoryUnavailable, match="no other person than x_other"):
        story.find_stranger(_face_set(tmp_path / "one", [("a.jpg", "x_other", "gallery")]), besides="x_other")


@pytest.mark.shared_data
async def test_a_man_on_no_watch_list_is_examined_matched_to_no_one_and_nothing_of_him_is_kept(
    ctx: Context,
) -> None:
    folder = need_shared_data("faces", "labels.csv").parent
    wanted = story.find_wanted(folder)
    stranger = story.find_stranger(folder, besides=wanted.person_id)
    with ctx.db.session() as session:
        story.enrol_wanted(session, ctx.media, wanted)
    kept_before = sorted(p for p in ctx.media.root.rglob("*") if p.is_file())
    head = story.rider_head(stranger.photo.read_bytes())
    scene = SceneRenderer(story.STRANGER_CAM, junction=False, seed=3, faces={story.STRANGER_FACE: head})
    rider = Pass(0.0, "", 15.0, (120, 60, 40), "motorcycle", face=story.STRANGER_FACE, halt=(90.0, 8.0))
    await ctx.bus.start()
    camera = CameraSetup(story.STRANGER_CAM, "face", AnalysisSettings(analysis_fps=1.0))
    runner = await asyncio.to_thread(FacePipelineRunner, ctx, camera, fps=1.0)
    start = utcnow()
    events: list[Event] = []
    for second in range(16):
        image = scene.render(float(second), [rider] if second == 0 else [])
        frame = Frame(
            image=image, pts_seconds=second, wall_time=start + timedelta(seconds=second), index=second
        )
        events += await asyncio.to_thread(runner.process, frame)
    runner.close()
    await ctx.bus.close()
    examined = ctx.counters.get(f"faces_examined:{story.STRANGER_CAM}", 0)
    assert events == [] and examined >= 3  # seen on several frames, matched to no one
    assert ctx.counters.get(f"faces_matched_no_one:{story.STRANGER_CAM}", 0) == examined
    assert sorted(p for p in ctx.media.root.rglob("*") if p.is_file()) == kept_before  # no crop of him
    with ctx.db.session() as session:
        told = story.stranger_report(session, ctx.counters, plan="test", passes=1)
    assert (told["face_matches"], told["alerts"], told["face_images_kept"]) == (0, 0, 0)
    assert told["face_frames_examined"] == examined and told["kept"].startswith("nothing")
