"""Retention: per camera, group and type; event footage kept longer; protected footage kept; all logged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from safecity.audit import service as audit
from safecity.core.context import Context
from safecity.recordings import retention, service
from safecity.recordings.models import PolicyIn, RecordingSegment, VolumeIn
from tests.recordings.recordings_support import T0, Recorded

DAY = timedelta(days=1)


def _segments(ctx: Context, camera_id: str) -> list[RecordingSegment]:
    with ctx.db.session() as session:
        return list(session.scalars(select(RecordingSegment).where(RecordingSegment.camera_id == camera_id)))


def test_footage_past_its_policy_goes_event_footage_stays_longer_and_every_deletion_is_logged(
    ctx: Context, record: Callable[..., Recorded]
) -> None:
    record("cam-1", seconds=8, segment_seconds=2)
    with ctx.db.session() as session:
        service.set_policy(
            session, PolicyIn(scope="district:South", continuous_days=7, event_days=30), actor="t"
        )
        service.mark_event(
            session,
            camera_id="cam-1",
            at=T0 + timedelta(seconds=6),
            ref="alert:a1",
            reason="crowd surge",
            before_s=1,
            after_s=1,
        )
    with ctx.db.session() as session:
        files = [
            service.segment_file(session, s, ctx.settings) for s in session.scalars(select(RecordingSegment))
        ]

    with ctx.db.session() as session:
        kept_early = retention.apply_retention(session, settings=ctx.settings, now=T0 + 6 * DAY)
    with ctx.db.session() as session:
        report = retention.apply_retention(session, settings=ctx.settings, now=T0 + 8 * DAY)

    assert kept_early.deleted_segments == 0
    assert report.by_reason == {"continuous_retention": 2}
    left = _segments(ctx, "cam-1")
    assert len(left) == 2  # the segments around the event, seconds 4–8
    assert all(s.start >= T0 + timedelta(seconds=3) for s in left)
    assert sum(1 for path in files if path.exists()) == 2
    with ctx.db.session() as session:
        logged = audit.entries(session, action="recordings.delete")
        assert logged[0].actor == "retention" and logged[0].detail["segments"] == 2
        assert logged[0].detail["reason"] == "continuous_retention"
        assert audit.verify(session).ok
        report = retention.apply_retention(session, settings=ctx.settings, now=T0 + 31 * DAY)
    assert report.by_reason == {"event_retention": 2}
    assert _segments(ctx, "cam-1") == []


def test_a_camera_policy_overrides_its_district_and_the_default(
    ctx: Context, record: Callable[..., Recorded]
) -> None:
    record("cam-1", seconds=4)
    record("cam-2", seconds=4)
    with ctx.db.session() as session:
        service.set_policy(
            session, PolicyIn(scope="district:South", continuous_days=3, event_days=3), actor="t"
        )
        service.set_policy(
            session, PolicyIn(scope="camera:cam-2", continuous_days=60, event_days=60), actor="t"
        )
        retention.apply_retention(session, settings=ctx.settings, now=T0 + 10 * DAY)

    assert _segments(ctx, "cam-1") == []
    assert len(_segments(ctx, "cam-2")) == 2


def test_protected_footage_outlives_retention_until_released(
    ctx: Context, record: Callable[..., Recorded]
) -> None:
    record("cam-1", seconds=4)
    with ctx.db.session() as session:
        service.protect(
            session,
            camera_id="cam-1",
            start=T0,
            end=T0 + timedelta(seconds=4),
            reason="challan 88",
            ref="challan:88",
        )
        report = retention.apply_retention(session, settings=ctx.settings, now=T0 + 400 * DAY)
    assert report.protected_kept == 2 and len(_segments(ctx, "cam-1")) == 2

    with ctx.db.session() as session:
        assert service.release(session, ref="challan:88") == 1
        retention.apply_retention(session, settings=ctx.settings, now=T0 + 400 * DAY)
    assert _segments(ctx, "cam-1") == []


def test_a_volume_over_budget_loses_its_oldest_unprotected_footage_first(
    ctx: Context, record: Callable[..., Recorded]
) -> None:
    record("cam-old", seconds=4, start=T0 - timedelta(hours=2))
    record("cam-kept", seconds=4, start=T0 - timedelta(hours=3))
    record("cam-new", seconds=4)
    newest = sum(s.bytes for s in _segments(ctx, "cam-new"))
    kept = sum(s.bytes for s in _segments(ctx, "cam-kept"))
    with ctx.db.session() as session:
        service.protect(
            session,
            camera_id="cam-kept",
            start=T0 - timedelta(hours=4),
            end=T0,
            reason="incident 4",
            ref="incident:4",
        )
        total = service.used_bytes(session, "default")
        service.set_volume(
            session,
            VolumeIn(
                name="default",
                path=str(ctx.settings.data_dir / "recordings"),
                budget_bytes=newest + kept + 1,
                reserve_bytes=0,
            ),
            actor="t",
        )
        report = retention.apply_retention(session, settings=ctx.settings, now=T0)
        assert service.used_bytes(session, "default") <= newest + kept + 1 < total

    assert report.by_reason == {"storage_budget": 2}
    assert _segments(ctx, "cam-old") == []
    assert len(_segments(ctx, "cam-kept")) == 2 and len(_segments(ctx, "cam-new")) == 2


@pytest.mark.parametrize("scope", ["everything", "camera:", "district"])
def test_a_malformed_policy_scope_is_refused(scope: str) -> None:
    with pytest.raises(ValueError, match="scope"):
        PolicyIn(scope=scope, continuous_days=1, event_days=1)


def test_a_service_runs_the_same_on_each_database(
    any_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from safecity.core.db import Database
    from safecity.recordings.recorder import SegmentInfo

    db = Database(any_db_url)
    db.migrate()
    root = tmp_path_factory.mktemp("vol")
    info = SegmentInfo(
        "cam-1", root / "cam-1" / "a.ts", T0, T0 + timedelta(seconds=60), 10, "h264", 320, 240, 9
    )
    with db.session() as session:
        service.index_segment(session, info=info, volume="default", root=root)
        service.index_segment(session, info=info, volume="default", root=root)  # twice: one row
        service.mark_event(
            session, camera_id="cam-1", at=T0 + timedelta(seconds=30), ref="alert:x", reason="x"
        )
    with db.session() as session:
        found = service.segments_between(
            session, camera_id="cam-1", start=T0 + timedelta(seconds=59), end=T0 + timedelta(minutes=5)
        )
        assert [s.path for s in found] == ["cam-1/a.ts"]
        assert found[0].start == T0
    db.dispose()
