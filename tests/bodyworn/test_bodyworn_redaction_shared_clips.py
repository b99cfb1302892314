"""Real footage (../shared/data, read in place): after a face redaction, no reference detector finds a face
on any frame of the copy, where it found one on every frame of the original."""

from __future__ import annotations

from pathlib import Path

import pytest

from safecity.bodyworn import ingest, redaction
from safecity.bodyworn import service as items
from safecity.bodyworn.models import RedactionIn
from safecity.core.context import Context
from safecity.vision.faces import BlazeFaceDetector, DlibHogDetector
from safecity.vision.redaction import frames_with_faces
from tests.bodyworn.bodyworn_support import META
from tests.conftest import need_shared_data

pytestmark = pytest.mark.shared_data


@pytest.mark.parametrize(
    "clip", ["face-demographics-walking.from_gif.mp4", "store-aisle-detection.from_gif.mp4"]
)
def test_no_frame_of_a_face_redacted_copy_shows_a_face_a_reference_detector_finds(
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
    assert frames_with_faces(copy, references) == {"blazeface": [], "hog": []}
