"""Exports with hashed manifests (CLI and API, audited) and event clips cut from the recorded segments."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from safecity.audit import service as audit
from safecity.core.context import Context
from safecity.core.events import AlertChanged, ViolationCandidate
from safecity.recordings import consumer, service
from safecity.recordings.cli import app as recordings_cli
from safecity.recordings.export import process_due_clips
from tests.conftest import auth_headers
from tests.recordings.recordings_support import T0, Recorded, add_camera


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_cli_export_writes_mp4s_and_a_manifest_whose_hashes_match(
    ctx: Context, record: Callable[..., Recorded], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record("cam-1", seconds=4)
    record("cam-1", seconds=4, start=T0 + timedelta(seconds=20), register=False)
    record("cam-2", seconds=4)
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(ctx.settings.data_dir))
    out = tmp_path / "case-17"

    result = CliRunner().invoke(
        recordings_cli,
        [
            "export",
            "cam-1",
            "cam-2",
            "--from",
            _iso(T0 + timedelta(seconds=1)),
            "--to",
            _iso(T0 + timedelta(seconds=22)),
            "--out",
            str(out),
            "--reason",
            "case 17/2024, court order 5",
        ],
    )

    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["reason"] == "case 17/2024, court order 5" and manifest["exported_by"] == "cli"
    assert sorted(f["camera_id"] for f in manifest["files"]) == ["cam-1", "cam-1", "cam-2"]
    for item in manifest["files"]:
        data = (out / item["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item["sha256"]
        assert _frames(out / item["name"]) > 0
    assert len(manifest["gaps"]["cam-1"]) == 1  # the sixteen seconds between the two recordings
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    with ctx.db.session() as session:
        entry = audit.entries(session, action="recordings.export")[0]
        assert entry.detail["reason"] == "case 17/2024, court order 5"
        assert (
            entry.detail["manifest_sha256"]
            == hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest()
        )


def test_cli_export_with_no_footage_or_a_bad_time_says_why_and_writes_nothing(
    ctx: Context, record: Callable[..., Recorded], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record("cam-1", seconds=4)
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(ctx.settings.data_dir))
    runner = CliRunner()
    out = tmp_path / "none"

    empty = runner.invoke(
        recordings_cli,
        [
            "export",
            "cam-1",
            "--from",
            _iso(T0 - timedelta(days=3)),
            "--to",
            _iso(T0 - timedelta(days=2, hours=23)),
            "--out",
            str(out),
            "--reason",
            "case 1",
        ],
    )
    naive = runner.invoke(
        recordings_cli,
        [
            "export",
            "cam-1",
            "--from",
            "2024-05-07T21:40",
            "--to",
            "2024-05-07T21:41",
            "--out",
            str(out),
            "--reason",
            "case 1",
        ],
    )
    reversed_ = runner.invoke(
        recordings_cli,
        [
            "export",
            "cam-1",
            "--from",
            _iso(T0),
            "--to",
            _iso(T0 - timedelta(minutes=1)),
            "--out",
            str(out),
            "--reason",
            "case 1",
        ],
    )

    assert empty.exit_code == 1 and "no footage" in empty.output and "oldest footage" in empty.output
    # A time without a zone is display-zone (Karachi) wall-clock time: 21:40 PKT, when nothing was recorded.
    assert naive.exit_code == 1 and "no footage" in naive.output
    assert reversed_.exit_code == 1 and "not after its start" in reversed_.output
    assert not out.exists() or not list(out.iterdir())


def test_api_export_is_for_investigators_and_lands_in_the_media_store(
    ctx: Context, client: TestClient, record: Callable[..., Recorded]
) -> None:
    record("cam-1", seconds=4)
    body = {
        "cameras": ["cam-1"],
        "start": _iso(T0),
        "end": _iso(T0 + timedelta(seconds=3)),
        "reason": "case 9",
    }

    refused = client.post("/api/recordings/exports", json=body, headers=auth_headers(ctx, "operator"))
    investigator = auth_headers(ctx, "investigator")
    done = client.post("/api/recordings/exports", json=body, headers=investigator)
    no_reason = client.post("/api/recordings/exports", json={**body, "reason": ""}, headers=investigator)

    assert refused.status_code == 403
    assert done.status_code == 201, done.text
    item = done.json()["files"][0]
    assert ctx.media.verify(item["media_ref"])
    assert item["media_ref"] == f"sha256:{item['sha256']}.mp4"
    assert client.get(f"/media/{done.json()['manifest_ref']}", headers=investigator).status_code == 200
    assert no_reason.status_code == 422


def test_a_new_alert_gets_its_clip_once_and_its_footage_protected_until_closed(
    ctx: Context, record: Callable[..., Recorded]
) -> None:
    record("cam-1", seconds=8, clip_before_s=2, clip_after_s=3)
    alert = AlertChanged(
        key="a1:1:1",
        camera_id="cam-1",
        at=T0 + timedelta(seconds=4),
        alert_id="a1",
        kind="hotlist",
        priority=1,
        status="new",
        title="stolen car LEA-4521",
    )

    consumer.on_alert(ctx, alert)
    consumer.on_alert(ctx, alert)  # redelivered: changes nothing
    finished = process_due_clips(ctx, now=datetime.now(UTC))

    assert finished == 1
    with ctx.db.session() as session:
        clips = service.clips_for(session, "a1")
        assert len(clips) == 1 and clips[0].status == "done"
        assert clips[0].covered_seconds == 5.0
        assert len(service.active_protections(session, "cam-1", before=T0 + timedelta(days=1))) == 1
    clip_path = ctx.media.path(clips[0].media_ref or "")
    assert 100 <= _frames(clip_path) <= 150  # five seconds from the key-frame at or before second two

    consumer.on_alert(ctx, alert.model_copy(update={"key": "a1:2:1", "status": "closed"}))
    with ctx.db.session() as session:
        assert service.active_protections(session, "cam-1", before=T0 + timedelta(days=1)) == []


def test_an_alert_at_a_camera_that_does_not_record_protects_nothing_and_its_clip_says_why(
    ctx: Context, record: Callable[..., Recorded]
) -> None:
    add_camera(ctx, "cam-off", record=False)
    add_camera(ctx, "cam-idle")  # recorded in its settings, but no worker ever recorded it
    record("cam-1", seconds=4)  # its recorder has stopped since: footage up to T0 + 4 s only

    def alert(camera_id: str, at: datetime) -> AlertChanged:
        return AlertChanged(
            key=f"a-{camera_id}:1:1",
            camera_id=camera_id,
            at=at,
            alert_id=f"a-{camera_id}",
            kind="hotlist",
            priority=1,
            status="new",
            title="stolen car LEA-4521",
        )

    for camera_id in ("cam-off", "cam-idle"):
        consumer.on_alert(ctx, alert(camera_id, T0))
    consumer.on_alert(ctx, alert("cam-1", T0 + timedelta(hours=1)))

    with ctx.db.session() as session:
        clips = {c.camera_id: c for c in service.due_clips(session, now=T0 + timedelta(days=1))}
        assert clips == {}  # none waits to be cut from footage that does not exist
        details = {
            camera_id: service.clips_for(session, f"a-{camera_id}")[0]
            for camera_id in ("cam-off", "cam-idle", "cam-1")
        }
        assert {c.status for c in details.values()} == {"not_recorded"}
        assert "recording is off in its settings" in details["cam-off"].detail
        assert "no recorder running" in details["cam-idle"].detail
        assert "recorded nothing since" in details["cam-1"].detail and "stopped" in details["cam-1"].detail
        for camera_id in ("cam-off", "cam-idle", "cam-1"):
            assert service.active_protections(session, camera_id, before=T0 + timedelta(days=1)) == []
        assert audit.entries(session, action="recordings.protect") == []


def test_a_clip_waits_for_its_after_time_and_reports_missing_footage(
    ctx: Context, record: Callable[..., Recorded]
) -> None:
    record("cam-1", seconds=4)
    late = ViolationCandidate(
        key="v1", camera_id="cam-1", at=T0 + timedelta(minutes=10), offence="red_light", plate="LEA4521"
    )
    consumer.on_violation(ctx, late)

    assert process_due_clips(ctx, now=T0 + timedelta(minutes=10, seconds=5)) == 0  # still inside its window
    assert process_due_clips(ctx, now=T0 + timedelta(minutes=15)) == 1
    with ctx.db.session() as session:
        clip = service.clips_for(session, "violation:v1")[0]
        assert clip.status == "no_footage" and "recorded nothing" in clip.detail


def test_clips_api_lists_the_clips_of_a_reference(
    ctx: Context, client: TestClient, record: Callable[..., Recorded]
) -> None:
    record("cam-1", seconds=8)
    with ctx.db.session() as session:
        service.request_clip(
            session,
            ref="incident-5",
            kind="incident",
            camera_id="cam-1",
            at=T0 + timedelta(seconds=4),
            before_s=1,
            after_s=1,
        )
    process_due_clips(ctx, now=datetime.now(UTC))

    answer = client.get(
        "/api/recordings/clips", params={"ref": "incident-5"}, headers=auth_headers(ctx, "operator")
    )

    assert answer.status_code == 200
    assert answer.json()[0]["status"] == "done"
    assert answer.json()[0]["media_ref"].endswith(".mp4")
