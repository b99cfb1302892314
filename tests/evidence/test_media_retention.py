"""Every stored object belongs to a row with a retention class; the sweep removes what no live claim keeps.

Objects nobody claims go once the grace has passed twice over (file age and an earlier sighting);
claims past their class's days are dropped first; holds (legal, appeal, case) keep what they name
until released; every removal is in the audit log; one sweep runs at a time; a claim or a store that
races the sweep never loses its file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from safecity.anpr import service as anpr
from safecity.anpr.models import PlateReadRow, PlateSeen
from safecity.audit import service as audit
from safecity.challans import service as challans
from safecity.challans.models import AppealIn, DecisionIn
from safecity.cli import app as cli
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.errors import Conflict, InvalidInput, NotFound
from safecity.core.events import PlateRead, ViolationCandidate
from safecity.core.jobs import exclusive
from safecity.core.media import MediaStore
from safecity.enforcement import service as enforcement
from safecity.evidence import retention
from safecity.evidence import service as evidence
from safecity.evidence.models import MediaUnclaimed
from safecity.server import create_app
from safecity.settings import Settings
from tests.conftest import auth_headers
from tests.enforcement.court import IMAGE, prepare

HOUR = timedelta(hours=1)


def make_ctx(tmp_path: Path, **settings: Any) -> Context:
    return Context.create(Settings(data_dir=tmp_path / "data", **settings))


@pytest.fixture
def city(tmp_path: Path) -> Iterator[Context]:
    """A data folder whose sweep waits one hour for unclaimed objects."""
    ctx = make_ctx(tmp_path, media_orphan_grace_hours=1)
    yield ctx
    ctx.db.dispose()


def aged(store: MediaStore, data: bytes, *, hours: float = 48, ext: str = "jpg") -> str:
    """Stores `data` as if written `hours` ago."""
    ref = store.put(data, ext)
    then = time.time() - hours * 3600
    os.utime(store.path(ref), (then, then))
    return ref


def sweep(ctx: Context, *, at: datetime | None = None, dry_run: bool = False) -> Any:
    return retention.sweep(ctx.db, ctx.media, ctx.settings, now=at, dry_run=dry_run, actor="test")


def deletions(ctx: Context) -> list[str]:
    with ctx.db.session() as session:
        return [ref for e in audit.entries(session, action="media.delete") for ref in e.detail["refs"]]


def test_an_object_no_row_claims_goes_after_the_grace_with_an_audit_entry(city: Context) -> None:
    orphan = aged(city.media, b"a frame nobody kept")
    kept = aged(city.media, b"a crop an alert shows")
    with city.db.session() as session:
        evidence.own(session, "alert", "alert-1", [kept])

    first = sweep(city)
    assert (first.removed, first.waiting, first.examined) == (0, 1, 2)
    assert city.media.path(orphan).exists() and deletions(city) == []

    later = sweep(city, at=utcnow() + 2 * HOUR)
    assert (later.removed, later.waiting) == (1, 0)
    assert later.removed_bytes > len(b"a frame nobody kept")  # sealed at rest: nonce and tag on top
    assert not city.media.path(orphan).exists()
    assert city.media.get(kept) == b"a crop an alert shows"
    assert deletions(city) == [orphan]
    with city.db.session() as session:
        entry = audit.entries(session, action="media.delete")[0]
        assert entry.detail["reason"] == "no row claims them" and entry.detail["objects"] == 1
        assert session.scalar(select(func.count()).select_from(MediaUnclaimed)) == 0


def test_a_freshly_stored_object_waits_however_often_the_sweep_runs(city: Context) -> None:
    fresh = city.media.put(b"a frame whose event is still on the bus", "jpg")
    for _ in range(3):
        assert sweep(city).removed == 0
    assert sweep(city, at=utcnow() + 0.5 * HOUR).waiting == 1
    assert city.media.get(fresh)


def test_storing_the_same_bytes_again_makes_an_old_unclaimed_object_fresh(city: Context) -> None:
    ref = aged(city.media, b"the same crop, read again")
    with city.db.session() as session:
        session.add(MediaUnclaimed(ref=ref, seen_at=utcnow() - 2 * HOUR))  # a sweep saw it unclaimed
    assert city.media.put(b"the same crop, read again", "jpg") == ref  # touched, not rewritten
    assert sweep(city).removed == 0
    assert city.media.path(ref).exists()
    then = time.time() - 2 * 3600
    os.utime(city.media.path(ref), (then, then))  # had it not been stored again, it would have gone
    assert sweep(city).removed == 1


def test_the_plate_read_purge_and_the_sweep_leave_no_crop_or_frame_past_retention(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, media_orphan_grace_hours=0, plate_read_retention_days=30)
    old_crop, old_frame = (
        aged(ctx.media, b"old crop", hours=24 * 40),
        aged(ctx.media, b"old frame", hours=24 * 40),
    )
    new_crop = ctx.media.put(b"new crop", "jpg")
    with ctx.db.session() as session:
        anpr.store_reads(
            session,
            [
                PlateRead(
                    key="old",
                    camera_id="cam-1",
                    at=utcnow() - timedelta(days=40),
                    plate="LEA4521",
                    confidence=0.9,
                    crop_ref=old_crop,
                    frame_ref=old_frame,
                ),
                PlateRead(
                    key="new",
                    camera_id="cam-1",
                    at=utcnow(),
                    plate="BKR778",
                    confidence=0.9,
                    crop_ref=new_crop,
                ),
            ],
        )
    with ctx.db.session() as session:
        assert anpr.purge_reads(session, older_than_days=30) == 1
    report = sweep(ctx)
    assert report.removed == 2
    assert not ctx.media.path(old_crop).exists() and not ctx.media.path(old_frame).exists()
    assert ctx.media.get(new_crop) == b"new crop"
    assert sorted(deletions(ctx)) == sorted([old_crop, old_frame])
    ctx.db.dispose()


def reads_of(session: Session, plate: str) -> list[PlateReadRow]:
    return list(session.scalars(select(PlateReadRow).where(PlateReadRow.plate == plate)))


def test_a_plate_read_under_a_legal_hold_outlives_its_retention_row_and_pictures(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, media_orphan_grace_hours=0)
    crop = aged(ctx.media, b"held crop", hours=24 * 40)
    with ctx.db.session() as session:
        anpr.store_reads(
            session,
            [
                PlateRead(
                    key=key,
                    camera_id="cam-1",
                    at=utcnow() - timedelta(days=40),
                    plate=plate,
                    confidence=0.9,
                    crop_ref=crop if key == "held" else None,
                )
                for key, plate in (("held", "LEA4521"), ("free", "BKR778"))
            ],
        )
        [held] = reads_of(session, "LEA4521")
        hold = evidence.place_hold(
            session,
            kind="legal",
            reference="FIR 212/2026 Clifton",
            reason="the vehicle's movements are evidence in the case",
            actor="investigator",
            owners=[f"plate_read:{held.id}"],
        )
    with ctx.db.session() as session:
        assert anpr.purge_reads(session, older_than_days=30) == 1  # only the read nobody holds
        assert [r.id for r in reads_of(session, "LEA4521")] == [held.id]
        assert session.get(PlateSeen, "LEA4521") is not None  # still found by a partial search
        [entry] = audit.entries(session, action="anpr.purge")
        assert entry.detail["kept_under_hold"] == 1
    assert sweep(ctx).removed == 0 and ctx.media.get(crop) == b"held crop"
    with ctx.db.session() as session:
        evidence.release_hold(session, hold.id, reason="case closed by the court", actor="investigator")
    with ctx.db.session() as session:
        assert anpr.purge_reads(session, older_than_days=30) == 1
        assert reads_of(session, "LEA4521") == []
    assert sweep(ctx).removed == 1 and not ctx.media.path(crop).exists()
    ctx.db.dispose()


def test_claims_past_their_class_are_dropped_then_their_objects_go(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, media_orphan_grace_hours=0, media_retention_days={"camera_fault": 30})
    old = aged(ctx.media, b"fault frame, 40 days old", hours=24 * 40)
    recent = aged(ctx.media, b"fault frame, 10 days old", hours=24 * 10)
    with ctx.db.session() as session:
        evidence.own(session, "camera_fault", "cam-1", [old], at=utcnow() - timedelta(days=40))
        evidence.own(session, "camera_fault", "cam-2", [recent], at=utcnow() - timedelta(days=10))
    report = sweep(ctx)
    assert report.claims_expired == {"camera_fault": 1}
    assert report.removed == 1
    assert not ctx.media.path(old).exists() and ctx.media.path(recent).exists()
    with ctx.db.session() as session:
        [entry] = audit.entries(session, action="media.claims_expired")
        assert entry.detail == {"by_class": {"camera_fault": 1}, "days": {"camera_fault": 30}}
    ctx.db.dispose()


def test_a_dry_run_says_what_would_go_and_changes_nothing(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, media_orphan_grace_hours=0, media_retention_days={"clip": 1})
    orphan = aged(ctx.media, b"orphan")
    clip = aged(ctx.media, b"clip", ext="mp4")
    with ctx.db.session() as session:
        evidence.own(session, "clip", "clip-1", [clip], at=utcnow() - timedelta(days=3))
    report = sweep(ctx, dry_run=True)
    assert report.dry_run and report.removed == 1 and report.claims_expired == {"clip": 1}
    assert ctx.media.path(orphan).exists() and ctx.media.path(clip).exists()
    with ctx.db.session() as session:
        assert evidence.owners_of(session, clip)
        assert audit.entries(session, action="media.delete") == []
        assert retention.last_sweep(session) is None
    ctx.db.dispose()


def test_a_legal_hold_keeps_evidence_past_its_retention_until_it_is_released(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, media_orphan_grace_hours=0, media_retention_days={"violation": 1})
    frame = aged(ctx.media, b"violation frame", hours=24 * 5)
    with ctx.db.session() as session:
        evidence.own(session, "violation", "v-1", [frame], at=utcnow() - timedelta(days=5))
        hold = evidence.place_hold(
            session,
            kind="legal",
            reference="SHC order 14/2026",
            reason="preserve for the hearing",
            actor="inspector",
            owners=["violation:v-1"],
        )
        assert hold.objects == 1
    report = sweep(ctx)
    assert report.claims_expired == {"violation": 1} and report.removed == 0
    assert report.store is not None
    assert {c.name: c.objects for c in report.store.classes}["hold"] == 1
    assert ctx.media.get(frame) == b"violation frame"
    with ctx.db.session() as session:
        evidence.release_hold(session, hold.id, reason="hearing over, order 19/2026", actor="inspector")
        with pytest.raises(Conflict, match="already released"):
            evidence.release_hold(session, hold.id, reason="again", actor="inspector")
        actions = [e.action for e in audit.entries(session) if e.action.startswith("media.hold")]
        assert sorted(actions) == ["media.hold", "media.hold_release"]
    assert sweep(ctx).removed == 1 and not ctx.media.path(frame).exists()
    ctx.db.dispose()


def test_an_appeal_holds_its_challans_evidence_until_the_committee_decides(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, media_orphan_grace_hours=0, media_retention_days={"violation": 1})
    issued = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
    frame = aged(ctx.media, b"red light frame", hours=24 * 5)
    with ctx.db.session() as session:
        challans.import_registry(
            session,
            "plate,owner,cnic,address,make,colour,phone,email\nABC123,Ali Khan,42101-1234567-1,"
            "House 1 Clifton,Toyota Corolla,white,03001234567,\n",
            actor="test",
        )
        # Court-ready (calibration, survey, clock check), so the challan is issued on this frame.
        calibration_id = prepare(session, ctx.media, "cam-1", at=issued - HOUR)
        violation, _ = enforcement.record_candidate(
            session,
            ViolationCandidate(
                key="v1",
                camera_id="cam-1",
                at=issued - HOUR,
                offence="speeding",
                plate="ABC123",
                confidence=0.99,
                measured=92.0,
                limit=60.0,
                evidence_refs=[frame],
                detail={
                    "unit": "km/h",
                    "frames_before": [frame],
                    "frames_after": [frame],
                    "calibration_id": calibration_id,
                    "calibration": {"image_points": [list(p) for p in IMAGE]},
                },
            ),
            media=ctx.media,
        )
        assert evidence.owners_of(session, frame)
        violation.status = "approved"
        session.flush()
        report = challans.issue_pending(session, now=issued)
        assert report.numbers, report.held_reasons
        number = report.numbers[0]
        challans.file_appeal(
            session,
            number,
            AppealIn(grounds="I was not driving that fast."),
            actor="citizen",
            now=issued + timedelta(days=3),
        )
        [hold] = evidence.list_holds(session)
        assert (hold.kind, hold.reference, hold.objects) == ("appeal", number, 1)
        with pytest.raises(Conflict, match="keeps the evidence of the appeal"):
            evidence.release_hold(session, hold.id, reason="tidying up", actor="clerk")
    far = utcnow() + timedelta(days=3)
    assert sweep(ctx, at=far).removed == 0 and ctx.media.path(frame).exists()
    with ctx.db.session() as session:
        challans.decide_appeal(
            session,
            number,
            DecisionIn(decision="dismissed", reason="The calibrated measure stands", committee=["SSP"]),
            actor="ssp",
            now=issued + timedelta(days=20),
        )
        assert evidence.list_holds(session) == []
    assert sweep(ctx, at=far).removed == 1
    ctx.db.dispose()


def test_a_hold_on_anything_unknown_is_refused_whole(city: Context) -> None:
    known = aged(city.media, b"a known crop")
    with city.db.session() as session:
        evidence.own(session, "alert", "alert-1", [known])
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"refs": ["not-a-ref"]}, InvalidInput, "is not a media ref"),
        ({"refs": ["sha256:" + "0" * 64 + ".jpg"]}, NotFound, "no stored object"),
        ({"owners": ["violation:nope"]}, NotFound, "nothing stored belongs to violation nope"),
        ({"owners": ["spaceship:1"]}, InvalidInput, "not a kind of stored evidence"),
        ({"owners": ["alert-1"]}, InvalidInput, "does not name a row"),
        ({}, InvalidInput, "names what it keeps"),
        ({"refs": [known], "owners": ["violation:nope"]}, NotFound, "violation nope"),
    ]
    for targets, error, message in cases:
        with city.db.session() as session, pytest.raises(error, match=message):
            evidence.place_hold(
                session,
                kind="legal",
                reference="FIR 1/2026",
                reason="preserve",
                actor="t",
                store=city.media,
                **targets,
            )
    with city.db.session() as session:
        assert evidence.list_holds(session, include_released=True) == []
        assert [o.kind for o in evidence.owners_of(session, known)] == ["alert"]


def test_holds_sweeps_and_figures_over_http(city: Context) -> None:
    ref = aged(city.media, b"evidence for a case")
    with city.db.session() as session:
        evidence.own(session, "face_match", "m-1", [ref])
    investigator, admin = auth_headers(city, "investigator"), auth_headers(city, "admin")
    operator = auth_headers(city, "operator")
    with TestClient(create_app(city)) as client:
        body = {
            "kind": "case",
            "reference": "FIR 88/2026",
            "reason": "abduction case",
            "owners": ["face_match:m-1"],
        }
        placed = client.post("/api/media/holds", json=body, headers=investigator)
        assert placed.status_code == 201, placed.text
        assert placed.json()["objects"] == 1 and placed.json()["placed_by"].startswith("investigator")
        bad = client.post(
            "/api/media/holds", json={**body, "owners": [], "refs": ["sha256:xyz.jpg"]}, headers=investigator
        )
        assert bad.status_code == 422 and "is not a media ref" in bad.text
        unknown = client.post(
            "/api/media/holds", json={**body, "owners": ["violation:v9"]}, headers=investigator
        )
        assert unknown.status_code == 404 and "nothing stored belongs to violation v9" in unknown.text
        assert client.post("/api/media/holds", json=body, headers=operator).status_code == 403
        appeal = client.post("/api/media/holds", json={**body, "kind": "appeal"}, headers=investigator)
        assert appeal.status_code == 422

        status = client.get("/api/media/status", params={"fresh": "true"}, headers=operator).json()
        assert status["objects"] == 1 and status["open_holds"] == 1
        assert {c["name"]: c["objects"] for c in status["classes"]}["hold"] == 1

        assert client.post("/api/media/sweep", headers=investigator).status_code == 403
        swept = client.post("/api/media/sweep", params={"dry_run": "true"}, headers=admin).json()
        assert swept["dry_run"] and swept["examined"] == 1 and swept["removed"] == 0

        hold_id = placed.json()["id"]
        released = client.post(
            f"/api/media/holds/{hold_id}/release", json={"reason": "case closed"}, headers=investigator
        )
        assert released.status_code == 200 and released.json()["released_by"].startswith("investigator")
        again = client.post(
            f"/api/media/holds/{hold_id}/release", json={"reason": "case closed"}, headers=investigator
        )
        assert again.status_code == 409
        assert (
            client.post(
                "/api/media/holds/nope/release", json={"reason": "x" * 5}, headers=investigator
            ).status_code
            == 404
        )
        listed = client.get(
            "/api/media/holds", params={"include_released": "true"}, headers=auth_headers(city, "auditor")
        )
        assert [h["id"] for h in listed.json()] == [hold_id]

        assert client.get("/api/system/pipeline", headers=operator).json()["media"] is None
        assert client.post("/api/media/sweep", headers=admin).json()["examined"] == 1
        media = client.get("/api/system/pipeline", headers=operator).json()["media"]
        assert media["objects"] == 1 and media["open_holds"] == 0 and media["removed"] == 0
        assert client.get("/api/media/status", headers=operator).json()["objects"] == 1


def test_a_sweep_while_another_runs_is_refused_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(tmp_path, media_orphan_grace_hours=0)
    orphan = aged(ctx.media, b"orphan")
    with exclusive(ctx.db, retention.SWEEP):
        with pytest.raises(Conflict, match=r"media\.sweep is already running"):
            sweep(ctx)
        monkeypatch.setenv("SAFECITY_DATA_DIR", str(tmp_path / "data"))
        result = CliRunner().invoke(cli, ["media", "sweep"])
        assert result.exit_code == 1 and "already running" in result.output
    assert ctx.media.path(orphan).exists()
    assert sweep(ctx).removed == 1  # the lease went back with the first sweep
    ctx.db.dispose()


def test_a_store_racing_the_sweep_writes_the_file_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(tmp_path, media_orphan_grace_hours=0)
    ref = aged(ctx.media, b"a crop read again this very moment")
    set_aside = MediaStore.set_aside

    def racing(store: MediaStore, ref: str, *, stale_before: float) -> int | None:
        size = set_aside(store, ref, stale_before=stale_before)
        store.put(b"a crop read again this very moment", "jpg")  # a worker stores it meanwhile
        return size

    monkeypatch.setattr(MediaStore, "set_aside", racing)
    sweep(ctx)
    assert ctx.media.get(ref) == b"a crop read again this very moment"


def test_a_claim_committed_while_the_file_is_set_aside_puts_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(tmp_path, media_orphan_grace_hours=0)
    ref = aged(ctx.media, b"a frame an alert is claiming right now")
    set_aside = MediaStore.set_aside

    def racing(store: MediaStore, ref: str, *, stale_before: float) -> int | None:
        size = set_aside(store, ref, stale_before=stale_before)
        with ctx.db.session() as session:
            evidence.own(session, "alert", "alert-9", [ref])
        return size

    monkeypatch.setattr(MediaStore, "set_aside", racing)
    report = sweep(ctx)
    assert (report.removed, report.kept_reclaimed) == (0, 1)
    assert ctx.media.get(ref) == b"a frame an alert is claiming right now"
    assert deletions(ctx) == []


def test_a_file_a_crashed_sweep_left_aside_is_put_back_and_judged_again(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, media_orphan_grace_hours=0)
    ref = aged(ctx.media, b"claimed, set aside by a sweep that died")
    with ctx.db.session() as session:
        evidence.own(session, "clip", "clip-1", [ref])
    assert ctx.media.set_aside(ref, stale_before=time.time()) is not None
    with pytest.raises(NotFound):
        ctx.media.get(ref)
    assert sweep(ctx).removed == 0
    assert ctx.media.get(ref) == b"claimed, set aside by a sweep that died"


def test_the_store_reports_its_size_by_class_in_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(tmp_path)
    crop = ctx.media.put(b"x" * 1000, "jpg")
    with ctx.db.session() as session:
        evidence.own(session, "plate_read", "r-1", [crop])
        evidence.own(session, "alert", "a-1", [crop])
        evidence.own(session, "watchlist_photo", "w-1", [ctx.media.put(b"y" * 500, "jpg")])
    ctx.media.put(b"z" * 10, "pdf")
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["media", "status", "--json"])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.output)
    by_class = {c["name"]: (c["objects"], c["retention_days"]) for c in report["classes"]}
    # The crop counts once, under the claim that keeps it longest (the alert's year, not the read's 90 days).
    assert by_class["alert"] == (1, 365) and by_class["plate_read"] == (0, 90)
    assert by_class["watchlist_photo"] == (1, None)
    assert report["objects"] == 3 and report["unclaimed_objects"] == 1
    ctx.db.dispose()


def test_a_retention_setting_that_names_no_class_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(tmp_path, media_retention_days={"violations": 30})
    with pytest.raises(InvalidInput, match=r"names \['violations'\]"):
        sweep(ctx)
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SAFECITY_MEDIA_RETENTION_DAYS", '{"hold": 3}')
    result = CliRunner().invoke(cli, ["media", "status"])
    assert result.exit_code == 1 and "until it is released" in result.output
    ctx.db.dispose()
