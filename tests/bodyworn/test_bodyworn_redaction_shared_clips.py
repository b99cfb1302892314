"""Real footage (../shared/data, read in place): after a face redaction, no reference detector finds a face
on any frame of the copy where it finds one in the original (the walking clip: on every frame); and the
face finder sees faces that turn up between its fine passes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from safecity.bodyworn import ingest, redaction
from safecity.bodyworn import service as items
from safecity.bodyworn.models import RedactionIn
from safecity.core.context import Context
from safecity.vision.faces import BlazeFaceDetector, DlibHogDetector
from safecity.vision.redaction import FaceFinder, frames_with_faces, frames_with_faces_left
from tests.bodyworn.bodyworn_support import META
from tests.conftest import need_shared_data

pytestmark = pytest.mark.shared_data


@pytest.mark.parametrize(
    "clip", ["face-demographics-walking.from_gif.mp4", "store-aisle-detection.from_gif.mp4"]
)
def test_no_frame_of_a_face_redacted_copy_shows_a_face_a_reference_detector_finds_in_the_original(
    ctx: Context, tmp_path: Path, clip: str
) -> None:
    source = need_shared_data("videos", clip)
    item_id = ingest.ingest_file(ctx, source, META, actor="dock-7").item_id or ""
    job = redaction.redact_now(ctx, item_id, RedactionIn(faces=True, reason="press release"), actor="si.khan")
    with ctx.db.session() as session:
        copy: Path = ctx.media.path(items.get(session, job.result_item_id or "").ref)
    references = {"blazeface": BlazeFaceDetector(min_face_px=20), "hog": DlibHogDetector(upsample=1)}
    if clip.startswith("face-"):
        assert len(frames_with_faces(source, references)["blazeface"]) == job.frames_done  # faces throughout
    assert frames_with_faces_left(copy, source, references) == {"blazeface": [], "hog": []}


def _face_on_street(px: int, contrast: float) -> npt.NDArray[np.uint8]:
    """Returns a grey 720p frame with a real face `px` wide from (600, 300), its contrast scaled (fog)."""
    photo = need_shared_data("faces", "images", "face_recognition", "biden_1.jpg")
    image = np.ascontiguousarray(cv2.imread(str(photo))[:, :, ::-1])
    x, y, w, h = BlazeFaceDetector(min_face_px=20).detect(image)[0].box
    margin = w * 3 // 5
    head = image[max(0, y - margin) : y + h + margin, max(0, x - margin) : x + w + margin]
    small = cv2.resize(head, None, fx=px / w, fy=px / w, interpolation=cv2.INTER_AREA).astype(np.float32)
    left, top = 600 - round(min(x, margin) * px / w), 300 - round(min(y, margin) * px / w)
    frame = np.full((720, 1280, 3), 128, np.uint8)
    frame[top : top + small.shape[0], left : left + small.shape[1]] = np.clip(
        128 + contrast * (small - 128), 0, 255
    ).astype(np.uint8)
    return frame


def _score_near(
    frame: npt.NDArray[np.uint8], detector: BlazeFaceDetector, x: int = 600, y: int = 300
) -> float:
    """Returns the best score of a detection whose box starts near (x, y)."""
    return max(
        (f.score for f in detector.detect(frame) if abs(f.box[0] - x) < 20 and abs(f.box[1] - y) < 20),
        default=0.0,
    )


def test_a_small_face_scored_just_under_the_threshold_on_a_fine_frame_is_looked_for_again_in_the_next() -> (
    None
):
    finder = FaceFinder()  # the whole-frame fine pass on frames 0, 3, 6…
    scorer = BlazeFaceDetector(min_face_px=20, min_score=0.05)
    low, high = 0.0, 0.2  # fog: find the contrast at which the face scores between watch and threshold
    for _ in range(12):
        contrast = (low + high) / 2
        score = _score_near(_face_on_street(21, contrast), scorer)
        if score < finder.watch_score + 0.03:
            low = contrast
        elif score > finder.min_score - 0.03:
            high = contrast
        else:
            break
    assert finder.watch_score < score < finder.min_score
    faint, clear = _face_on_street(21, contrast), _face_on_street(21, 1.0)
    assert len(finder.find(0, faint)) == 0  # under the threshold: not yet a face
    found = finder.find(1, clear)  # the fog lifts between fine passes
    assert len(found) == 1 and abs(found.xyxy[0][0] - 600) < 8 and abs(found.xyxy[0][1] - 300) < 8
    before = FaceFinder(coarse_min_face_px=80, watch_score=0.3)  # the finder without the second look
    before.find(0, faint)
    assert len(before.find(1, clear)) == 0


def test_a_mid_size_face_that_appears_between_fine_passes_is_found_on_the_frame_it_appears() -> None:
    empty, face = np.full((720, 1280, 3), 128, np.uint8), _face_on_street(56, 1.0)
    finder, before = FaceFinder(), FaceFinder(coarse_min_face_px=80, watch_score=0.3)
    finder.find(0, empty)
    found = finder.find(1, face)  # a head turning round, a man stepping out from behind a car
    assert len(found) == 1 and abs(found.xyxy[0][0] - 600) < 10 and abs(found.xyxy[0][1] - 300) < 10
    before.find(0, empty)
    assert len(before.find(1, face)) == 0  # coarse passes from 80 px: too coarse for a 56 px face
