"""Redacting body-worn footage: what is hidden stays hidden in every frame, muted sound is silent, and the
copy is a new item with its own digest, its provenance and both custody logs; bad requests change nothing."""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import supervision as sv
from pydantic import ValidationError

from safecity.bodyworn import custody, ingest, redact_video, redaction
from safecity.bodyworn import service as items
from safecity.bodyworn.models import BodyWornItem, ItemMeta, RedactionIn
from safecity.core.context import Context
from safecity.core.errors import Forbidden, InvalidInput, NotFound, Unavailable
from safecity.video.display import (
    IDENTITY,
    mirrored,
    read_matrix,
    rotation_matrix,
    set_matrix,
    set_rotation,
    stored_box,
)
from safecity.vision.redaction import RegionTimeline, pixelate
from tests.bodyworn.redaction_support import (
    FPS,
    SQUARE,
    checker_edges,
    checkerboard,
    detail,
    frames_of,
    make_clip,
    rms,
    rotation_of,
    sound_of,
    sound_on_picture_clock,
    sound_onset,
    square_at,
)

META = ItemMeta(officer="pc.rana", device="BC-17", categories=["arrest"])


def _ingest_clip(ctx: Context, tmp_path: Path, **clip: object) -> BodyWornItem:
    path = make_clip(tmp_path / "FILE0001.MP4", **clip)  # type: ignore[arg-type]
    result = ingest.ingest_file(ctx, path, META, actor="dock-7")
    with ctx.db.session() as session:
        item = items.get(session, result.item_id or "")
        session.expunge(item)
    return item


def _box_at(t0: float, t1: float, index: int) -> dict[str, float]:
    x, y = square_at(index)
    return {"t0": t0, "t1": t1, "x": x - 2, "y": y - 2, "w": SQUARE + 4, "h": SQUARE + 4}


def test_pixelation_leaves_solid_blocks_that_keep_none_of_the_detail() -> None:
    image = np.zeros((96, 96, 3), np.uint8)
    image[:48, :48] = checkerboard(48)
    pixelate(image, np.array([[0, 0, 48, 48]], np.float32))
    assert detail(image, 0, 0, inset=0) < 1.0  # the checkerboard (detail ~64) is gone
    assert len(np.unique(image[:8, :8].reshape(-1, 3), axis=0)) == 1  # each block one colour


def test_the_timeline_interpolates_between_detections_and_holds_before_and_after_a_track() -> None:
    timeline = RegionTimeline(hold_before=3, hold_after=3, max_gap=5, pad=1.0, grow_per_frame=0.0)
    for frame, x in ((10, 100.0), (14, 140.0)):
        found = sv.Detections(xyxy=np.array([[x, 50, x + 20, 70]], np.float32), tracker_id=np.array([7]))
        timeline.add(frame, found)
    assert timeline.boxes(12)[0].tolist() == [120.0, 50.0, 140.0, 70.0]  # halfway between
    assert timeline.boxes(7)[0].tolist() == [100.0, 50.0, 120.0, 70.0]  # held before the first
    assert timeline.boxes(17)[0].tolist() == [140.0, 50.0, 160.0, 70.0]  # held after the last
    assert len(timeline.boxes(6)) == 0 and len(timeline.boxes(18)) == 0


def test_a_drawn_box_follows_its_moving_object_and_hides_it_in_every_frame_from_t0_to_t1(
    tmp_path: Path,
) -> None:
    source = make_clip(tmp_path / "clip.mp4", audio=False)
    t0, t1 = 0.6, 2.2
    box = _box_at(t0, t1, round(t0 * FPS))
    plan = redact_video.Plan(boxes=[redact_video.TimedBox(t0, t1, (box["x"], box["y"], box["w"], box["h"]))])
    result = redact_video.redact(source, tmp_path / "out.mp4", plan)
    assert result.frames == 45 and result.boxes_hidden > 0
    inside = before = 0
    for index, (t, image) in enumerate(frames_of(tmp_path / "out.mp4")):
        x, y = square_at(index)
        if t0 - 1e-3 <= t <= t1 + 1e-3:
            # 4 px a frame, 64 px over the range: only a box that follows keeps covering it. Not one
            # black-white step of the board may show (a lagging box leaves a strip of them).
            assert checker_edges(image, x, y) == 0, f"frame {index} at {t:.2f} s shows the square"
            inside += 1
        elif t < t0 - 0.1:
            assert detail(image, x, y) > 30, f"frame {index} before the range was touched"
            before += 1
    assert inside == round((t1 - t0) * FPS) + 1 and before > 5


def test_a_still_box_stays_where_it_was_drawn(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "clip.mp4", audio=False)
    plan = redact_video.Plan(boxes=[redact_video.TimedBox(0.0, 3.0, (20, 88, 52, 60), follow=False)])
    redact_video.redact(source, tmp_path / "out.mp4", plan)
    shown = frames_of(tmp_path / "out.mp4")
    assert detail(shown[0][1], *square_at(0)) < 8  # under the box at first
    assert detail(shown[30][1], *square_at(30)) > 30  # the square moved out from under it


def test_mute_ranges_are_silent_and_the_rest_of_the_sound_is_kept(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "clip.mp4")
    plan = redact_video.Plan(mutes=[(0.5, 1.2), (2.0, 2.5)])
    result = redact_video.redact(source, tmp_path / "out.mp4", plan)
    assert result.audio == "muted"
    samples, rate = sound_of(tmp_path / "out.mp4")
    loud = rms(*sound_of(source), 0.1, 0.4)
    assert loud > 0.3
    assert rms(samples, rate, 0.55, 1.15) < 0.01 * loud
    assert rms(samples, rate, 2.05, 2.45) < 0.01 * loud
    for a, b in ((0.1, 0.4), (1.3, 1.9), (2.6, 2.9)):
        assert rms(samples, rate, a, b) > 0.8 * loud, (a, b)


@pytest.mark.parametrize(("mutes", "audio"), [([], "copied"), ([(1.5, 2.0)], "muted")])
def test_sound_that_starts_after_the_picture_starts_as_late_in_the_copy(
    tmp_path: Path, mutes: list[tuple[float, float]], audio: str
) -> None:
    source = make_clip(tmp_path / "clip.mp4", sound_from=1.0)
    assert abs(sound_onset(source) - 1.0) < 0.01
    result = redact_video.redact(source, tmp_path / "out.mp4", redact_video.Plan(mutes=mutes))
    assert result.audio == audio
    assert abs(sound_onset(tmp_path / "out.mp4") - sound_onset(source)) < 0.005
    samples, rate, start = sound_on_picture_clock(tmp_path / "out.mp4")
    loud = rms(samples, rate, 1.1 - start, 1.4 - start)
    assert loud > 0.3
    if mutes:  # the range is on the picture's clock, as the editor shows it, not the sound's own
        assert rms(samples, rate, 1.55 - start, 1.95 - start) < 0.01 * loud
        assert rms(samples, rate, 2.1 - start, 2.9 - start) > 0.8 * loud


@pytest.mark.parametrize("turn", [90.0, -90.0, 180.0])
def test_a_recording_made_on_its_side_keeps_its_rotation_in_the_copy(tmp_path: Path, turn: float) -> None:
    source = make_clip(tmp_path / "clip.mp4", seconds=1.0)
    set_rotation(source, turn)
    assert rotation_of(source) % 360 == turn % 360  # FFmpeg reads the turn back from the original
    plan = redact_video.Plan(boxes=[redact_video.TimedBox(0.0, 1.0, (20, 88, 52, 60), follow=False)])
    result = redact_video.redact(source, tmp_path / "out.mp4", plan)
    assert result.rotation % 360 == turn % 360
    assert rotation_of(tmp_path / "out.mp4") % 360 == turn % 360
    assert detail(frames_of(tmp_path / "out.mp4")[0][1], *square_at(0)) < 8  # boxes on the stored picture


# Display matrices and what a player shows of a stored picture under each (Chromium was seen to turn and
# flip the editor's player so), as numpy does it.
MIRRORS = {
    "mirrored": (mirrored(IDENTITY), np.fliplr),  # a front camera: left and right swapped
    "upside-down": (mirrored(IDENTITY, horizontal=False), np.flipud),  # FFmpeg reads a half turn from it
    "turned-mirrored-moved": (
        (*mirrored(rotation_matrix(90))[:6], 240 << 16, 320 << 16, 1 << 30),
        lambda image: image.transpose(1, 0, 2)[::-1, ::-1],
    ),
    "turned": (rotation_matrix(90), np.rot90),
}


def _bounds(mask: npt.NDArray[np.bool_]) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


@pytest.mark.parametrize("name", list(MIRRORS))
def test_a_box_drawn_on_the_shown_picture_is_the_same_box_on_the_stored_one(name: str) -> None:
    matrix, show = MIRRORS[name]
    stored = np.zeros((240, 320, 1), bool)
    stored[90:138, 20:68] = True
    shown = show(stored)[:, :, 0]
    assert stored_box(_bounds(shown), matrix, 320, 240) == pytest.approx((20, 90, 48, 48))


@pytest.mark.parametrize("shown", [False, True])
@pytest.mark.parametrize("name", list(MIRRORS)[:3])
def test_a_mirrored_recording_keeps_its_display_matrix_exactly_and_boxes_land_on_the_stored_pixels(
    tmp_path: Path, name: str, shown: bool
) -> None:
    matrix, show = MIRRORS[name]
    source = make_clip(tmp_path / "clip.mp4", seconds=1.0, audio=False)
    set_matrix(source, matrix)
    x, y = square_at(0)
    box = (x - 2, y - 2, SQUARE + 4, SQUARE + 4)
    mask = np.zeros((240, 320, 1), bool)
    mask[box[1] : box[1] + box[3], box[0] : box[0] + box[2]] = True
    drawn = _bounds(show(mask)[:, :, 0]) if shown else box  # as the editor draws it, or as stored
    plan = redact_video.Plan(boxes=[redact_video.TimedBox(0.0, 1.0, drawn, follow=False, shown=shown)])
    result = redact_video.redact(source, tmp_path / "out.mp4", plan)
    assert read_matrix(tmp_path / "out.mp4") == read_matrix(source) == matrix
    assert result.matrix == matrix
    before, after = frames_of(source)[0][1], frames_of(tmp_path / "out.mp4")[0][1]
    assert detail(after, x, y) < 8  # the square is hidden where it is stored…
    change = np.abs(before.astype(np.int16) - after.astype(np.int16)).max(axis=2)
    assert np.percentile(change[~mask[:, :, 0]], 99) < 12  # …and nothing else changed (x264's loss aside)


def test_a_display_matrix_that_is_not_nine_numbers_is_refused(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "clip.mp4", seconds=0.5, audio=False)
    with pytest.raises(InvalidInput, match="9 signed 32-bit numbers"):
        set_matrix(source, [1, 0, 0])
    with pytest.raises(InvalidInput, match="9 signed 32-bit numbers"):
        set_matrix(source, [1 << 31, 0, 0, 0, 1, 0, 0, 0, 1])
    assert read_matrix(source) == IDENTITY


def test_an_upright_recording_gets_no_rotation_and_only_an_mp4_takes_one(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "clip.mp4", seconds=1.0, audio=False)
    result = redact_video.redact(source, tmp_path / "out.mp4", redact_video.Plan())
    assert result.rotation == 0 and rotation_of(tmp_path / "out.mp4") == 0
    (tmp_path / "notes.txt").write_bytes(b"not a video at all" * 10)
    with pytest.raises(InvalidInput, match="no MP4 video track header"):
        set_rotation(tmp_path / "notes.txt", 90)


def test_a_redacted_copy_is_a_new_item_with_its_own_digest_provenance_and_both_custody_logs(
    ctx: Context, tmp_path: Path
) -> None:
    original = _ingest_clip(ctx, tmp_path)
    stored = ctx.media.path(original.ref)
    before = hashlib.sha256(stored.read_bytes()).hexdigest()
    body = RedactionIn(
        faces=True,
        boxes=[_box_at(0.0, 1.0, 0)],  # type: ignore[list-item]
        mutes=[{"t0": 0.5, "t1": 1.0}],  # type: ignore[list-item]
        reason="disclosure to the complainant",
    )
    job = redaction.redact_now(ctx, original.id, body, actor="si.khan")
    assert job.status == "done" and job.frames_done == 45
    with ctx.db.session() as session:
        made = items.get(session, job.result_item_id or "")
        copy = ctx.media.path(made.ref)
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == made.sha256 != original.sha256
        assert made.bytes == copy.stat().st_size
        assert (made.derived_from, made.categories, made.access_class) == (original.id, ["arrest"], "normal")
        assert [op["op"] for op in made.operations] == ["faces", "box", "mute", "encode"]
        assert made.operations[0]["model"] == "blazeface-full-range"
        assert "TrackerMIL" in made.operations[1]["tracker"]
        assert (
            items.detail(session, ctx.settings, items.get(session, original.id)).derived[0]["id"] == made.id
        )
        on_original = custody.entries_of(session, original.id)
        on_copy = custody.entries_of(session, made.id)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == before == original.sha256
    assert [e.action for e in on_original] == ["ingest", "redact_request", "redact"]
    assert on_original[-1].detail["result"] == made.id and on_original[-1].actor == "si.khan"
    assert [e.action for e in on_copy] == ["derive"]
    assert on_copy[0].detail["original_sha256"] == original.sha256
    assert on_copy[0].detail["operations"][2] == {"op": "mute", "t0": 0.5, "t1": 1.0}


def test_the_copy_of_an_item_in_an_open_case_joins_the_case_and_keeps_its_access_class(
    ctx: Context, tmp_path: Path
) -> None:
    from safecity.bodyworn import cases
    from safecity.bodyworn.models import CaseIn, ClassifyIn

    original = _ingest_clip(ctx, tmp_path, audio=False)
    with ctx.db.session() as session:
        cases.create(session, CaseIn(number="CASE-7", title="Assault"), actor="si.khan")
        cases.add_item(session, "CASE-7", kind="bodyworn", ref_id=original.id, actor="si.khan")
        change = ClassifyIn(access_class="restricted", reason="a minor is visible")
        items.classify(session, ctx.settings, original.id, change, actor="insp.rana")
    body = RedactionIn(mutes=[{"t0": 0.0, "t1": 1.0}], reason="for the court")  # type: ignore[list-item]
    job = redaction.redact_now(ctx, original.id, body, actor="si.khan")
    with ctx.db.session() as session:
        made = items.get(session, job.result_item_id or "")
        assert made.access_class == "restricted"
        assert [n for n, _ in items.cases_of(session, [made.id])[made.id]] == ["CASE-7"]


def test_a_copy_of_an_item_marked_do_not_disclose_stays_marked_until_a_manager_lifts_it_with_a_reason(
    ctx: Context, tmp_path: Path
) -> None:
    from safecity.bodyworn import sharing
    from safecity.bodyworn.models import ClassifyIn, ShareIn

    original = _ingest_clip(ctx, tmp_path, audio=False)
    with ctx.db.session() as session:
        change = ClassifyIn(do_not_disclose=True, reason="a witness at risk")
        items.classify(session, ctx.settings, original.id, change, actor="insp.rana")
    body = RedactionIn(boxes=[_box_at(0.0, 1.0, 0)], reason="for the press")  # type: ignore[list-item]
    made_id = redaction.redact_now(ctx, original.id, body, actor="si.khan").result_item_id or ""
    share = ShareIn(recipient="Adv. S. Khan", recipient_role="defence", reason="trial")
    with ctx.db.session() as session:
        assert items.get(session, made_id).do_not_disclose
        assert custody.entries_of(session, made_id)[0].detail["do_not_disclose"] is True
        with pytest.raises(Forbidden, match="marked do not disclose"):
            sharing.create(session, made_id, share, actor="si.khan")
    with ctx.db.session() as session:
        lift = ClassifyIn(do_not_disclose=False, reason="faces hidden, cleared for the defence")
        items.classify(session, ctx.settings, made_id, lift, actor="insp.rana")
    with ctx.db.session() as session:
        sharing.create(session, made_id, share, actor="si.khan")  # the copy may go out now
        assert items.get(session, original.id).do_not_disclose  # the original keeps its mark
        with pytest.raises(Forbidden, match="marked do not disclose"):
            sharing.create(session, original.id, share, actor="si.khan")
        lifted = [e for e in custody.entries_of(session, made_id) if e.action == "classify"]
    assert [(e.actor, e.reason) for e in lifted] == [("insp.rana", "faces hidden, cleared for the defence")]
    assert (lifted[0].detail["before"], lifted[0].detail["after"]) == (
        {"do_not_disclose": True},
        {"do_not_disclose": False},
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"boxes": [{"t0": 0, "t1": 1, "x": 300, "y": 10, "w": 40, "h": 40}]},
            "lies outside the 320×240 frame",
        ),
        (  # on the picture as shown, turned a quarter or not, it is outside either way
            {"boxes": [{"t0": 0, "t1": 1, "x": 250, "y": 250, "w": 20, "h": 20, "shown": True}]},
            "lies outside the 320×240 frame",
        ),
        ({"boxes": [{"t0": 9, "t1": 10, "x": 0, "y": 0, "w": 40, "h": 40}]}, "after the recording ends"),
        ({"mutes": [{"t0": 2, "t1": 7.5}]}, "mute range 1 ends at 7.5 s, after the recording ends"),
    ],
)
def test_a_redaction_that_does_not_fit_the_item_is_refused_and_the_refusal_recorded(
    ctx: Context, tmp_path: Path, change: dict[str, object], message: str
) -> None:
    original = _ingest_clip(ctx, tmp_path, audio=False)
    body = RedactionIn.model_validate({"reason": "for the press", **change})
    with pytest.raises(InvalidInput, match=message), ctx.db.session() as session:
        redaction.request(session, original.id, body, actor="si.khan")
    with ctx.db.session() as session:
        assert [e.action for e in custody.entries_of(session, original.id)] == ["ingest", "redact_refused"]
        assert session.query(BodyWornItem).count() == 1


def test_a_box_on_the_picture_as_shown_may_be_on_it_turned_a_quarter(ctx: Context, tmp_path: Path) -> None:
    original = _ingest_clip(ctx, tmp_path, audio=False)  # 320×240 as stored; a player may show 240×320
    box = {"t0": 0, "t1": 1, "x": 10, "y": 250, "w": 200, "h": 60}
    with ctx.db.session() as session:
        redaction.request(
            session,
            original.id,
            RedactionIn.model_validate({"reason": "press", "boxes": [{**box, "shown": True}]}),
            actor="si.khan",
        )
    with pytest.raises(InvalidInput, match="lies outside"), ctx.db.session() as session:
        redaction.request(
            session,
            original.id,
            RedactionIn.model_validate({"reason": "press", "boxes": [box]}),
            actor="si.khan",
        )


def test_requests_that_make_no_sense_say_what_to_fix(ctx: Context) -> None:
    with pytest.raises(ValidationError, match=r"ends .* before it starts"):
        RedactionIn.model_validate(
            {"reason": "press", "boxes": [{"t0": 2, "t1": 1, "x": 0, "y": 0, "w": 9, "h": 9}]}
        )
    with pytest.raises(ValidationError, match="nothing to redact"):
        RedactionIn.model_validate({"reason": "press"})
    with pytest.raises(NotFound, match="no body-worn item NOPE"), ctx.db.session() as session:
        redaction.request(session, "NOPE", RedactionIn(faces=True, reason="press"), actor="si.khan")


def test_a_file_that_is_not_video_is_refused_in_plain_words(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("minutes of the meeting")
    with pytest.raises(InvalidInput, match="not a video PyAV can read"):
        redact_video.redact(fake, tmp_path / "out.mp4", redact_video.Plan(mutes=[(0, 1)]))


def test_a_full_disk_while_writing_registers_nothing_and_the_failure_is_in_custody(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = _ingest_clip(ctx, tmp_path, audio=False)
    real = redact_video.redact

    def filling(source: Path, target: Path, plan: redact_video.Plan, **kw: object) -> redact_video.Result:
        real(source, target, plan)  # the copy is written, then the disk fills before it is closed
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(redaction.redact_video, "redact", filling)
    body = RedactionIn(mutes=[{"t0": 0.0, "t1": 1.0}], reason="for the court")  # type: ignore[list-item]
    with pytest.raises(Unavailable, match="the evidence store is full"):
        redaction.redact_now(ctx, original.id, body, actor="si.khan")
    assert not list(ctx.media.incoming().iterdir())
    with ctx.db.session() as session:
        assert session.query(BodyWornItem).count() == 1
        [job] = redaction.of_item(session, original.id)
        assert job.status == "failed" and "full" in (job.error or "")
        assert [e.action for e in custody.entries_of(session, original.id)][-1] == "redact_failed"
