"""Real moving-camera clips (../shared/data/analytics, read in place): every container a body camera may
write comes in whole, with its length and picture size, stored under its digest in its own container."""

from __future__ import annotations

import hashlib

import pytest

from safecity.bodyworn import ingest
from safecity.bodyworn import service as items
from safecity.core.context import Context
from tests.bodyworn.bodyworn_support import META
from tests.conftest import need_shared_data

pytestmark = pytest.mark.shared_data


def test_the_shared_moving_camera_clips_import_as_a_docking_folder(ctx: Context) -> None:
    folder = need_shared_data("analytics")
    clips = sorted(p for p in folder.iterdir() if p.suffix.lower() in ingest.CONTAINERS)
    report = ingest.import_folder(ctx, folder, META, actor="dock-7")
    assert (report.files, report.ingested, report.refused) == (len(clips), len(clips), 0)
    assert any("not recordings" in w for w in report.warnings)  # the manifest, README and events
    with ctx.db.session() as session:
        for clip in clips:
            item = items.by_digest(session, hashlib.sha256(clip.read_bytes()).hexdigest())
            assert item is not None, clip.name
            assert item.ref.endswith("." + ingest.CONTAINERS[clip.suffix.lower()])
            assert item.duration_s and item.duration_s > 1 and item.width and item.height, clip.name
            assert ctx.media.path(item.ref).stat().st_size == clip.stat().st_size
    assert ingest.import_folder(ctx, folder, META, actor="dock-7").skipped == len(clips)
