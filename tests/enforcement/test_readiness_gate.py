"""The court-readiness gate: no challan on evidence that would not stand up, and each held one says why."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from safecity.challans import service as challans
from safecity.cli import app
from safecity.core.context import Context
from safecity.core.events import ViolationCandidate
from safecity.enforcement import service
from safecity.enforcement.models import Violation
from tests.conftest import auth_headers
from tests.enforcement.court import court_ready, ready_candidate

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
REGISTRY = (
    "plate,owner,cnic,address,make,colour\nABC123,Ali Khan,42101-1234567-1,House 1 Clifton,Corolla,white\n"
)


def record(ctx: Context, candidate: ViolationCandidate) -> Violation:
    with ctx.db.session() as session:
        if challans.registry_status(session, "ABC123") is None:
            challans.import_registry(session, REGISTRY, actor="test")
        violation, _ = service.record_candidate(session, candidate, media=ctx.media)
        return violation


def issue(ctx: Context) -> tuple[int, dict[str, str]]:
    with ctx.db.session() as session:
        report = challans.issue_pending(session, now=T0 + timedelta(hours=1))
        return report.issued, report.held_reasons


def test_a_court_ready_speeding_violation_names_its_calibration_and_becomes_a_challan(ctx: Context) -> None:
    calibration = court_ready(ctx, "cam-1", at=T0)
    violation = record(ctx, ready_candidate(ctx, "ok", at=T0, calibration_id=calibration))
    assert violation.status == "approved" and violation.hold_reason == ""
    assert violation.evidence["calibration"]["id"] == calibration
    assert {c["check"]: c["ok"] for c in violation.evidence["readiness"]} == {
        "images": True,
        "camera_clock": True,
        "road": True,
        "calibration": True,
    }
    assert issue(ctx) == (1, {})


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ({"calibration_id": None}, "calibration: the speed was measured without a recorded calibration"),
        ({"calibration_id": 999}, "calibration: calibration 999 is not on record"),
        ({"at": T0 - timedelta(days=40)}, "was not in force then"),
        ({"clock_offset_s": 7.0}, "camera_clock: camera cam-1's clock was +7.000 s off NTP (onvif"),
        ({"compliant": False}, "road: the road at camera cam-1 lacks stop lines (survey by Inspector Rana"),
        ({"missing_image": True}, "images: 1 evidence image(s) missing or not matching their hash"),
        ({"late_clock_check": True}, "camera_clock: camera cam-1's clock was not checked in the 24 h before"),
    ],
)
def test_a_speeding_violation_failing_a_check_is_held_with_the_check_and_never_issued(
    ctx: Context, setup: dict[str, object], reason: str
) -> None:
    at = T0 + timedelta(days=2) if setup.get("late_clock_check") else T0
    calibration = court_ready(
        ctx,
        "cam-1",
        at=T0,
        clock_offset_s=float(setup.get("clock_offset_s", 0.05)),  # type: ignore[arg-type]
        compliant=bool(setup.get("compliant", True)),
    )
    candidate = ready_candidate(
        ctx,
        "held",
        at=setup.get("at", at),  # type: ignore[arg-type]
        calibration_id=setup.get("calibration_id", calibration),  # type: ignore[arg-type]
    )
    if setup.get("missing_image"):
        gone = "sha256:" + "ab" * 32 + ".jpg"
        candidate.evidence_refs.append(gone)
        candidate.detail["frames_after"].append(gone)
    violation = record(ctx, candidate)
    assert violation.status == "pending" and not violation.auto_approved
    assert violation.hold_reason.startswith("not court-ready: ") and reason in violation.hold_reason
    # An officer who approves it anyway gets no challan: the gate runs again before issue.
    with ctx.db.session() as session:
        session.get(Violation, violation.id).status = "approved"  # type: ignore[union-attr]
    issued, held = issue(ctx)
    assert issued == 0 and reason in held[violation.id]
    with ctx.db.session() as session:
        assert session.get(Violation, violation.id).status == "unissuable"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("measured", "offset_ms", "reason"),
    [
        (1.5, 20, None),
        (0.01, 20, "signal: crossed 0.01 s into red, within the signal clock's known drift of 0.02 s"),
        (1.5, 500, "signal: controller ctl-J1's clock drifts +500 ms (tolerance 100 ms)"),
    ],
)
def test_a_red_light_needs_a_signal_source_whose_drift_is_known_and_smaller_than_the_time_into_red(
    ctx: Context, client: TestClient, measured: float, offset_ms: float, reason: str | None
) -> None:
    court_ready(ctx, "cam-j", at=T0)
    admin = auth_headers(ctx, "admin")
    source = {
        "kind": "controller",
        "device": "ctl-J1",
        "offset_ms": offset_ms,
        "checked_at": (T0 - timedelta(days=3)).isoformat(),
        "checked_by": "Engineer Shah",
    }
    assert client.post("/api/signals/J1/sources", json=source, headers=admin).status_code == 201
    candidate = ready_candidate(
        ctx, "rl", camera_id="cam-j", at=T0, offence="red_light", measured=measured, detail={"junction": "J1"}
    )
    violation = record(ctx, candidate)
    if reason is None:
        assert violation.status == "approved" and violation.hold_reason == ""
    else:
        assert violation.status == "pending" and reason in violation.hold_reason


def test_a_junction_without_a_signal_source_cannot_prove_a_red_light(ctx: Context) -> None:
    court_ready(ctx, "cam-j", at=T0)
    candidate = ready_candidate(
        ctx, "rl", camera_id="cam-j", at=T0, offence="red_light", detail={"junction": "J9"}
    )
    violation = record(ctx, candidate)
    assert "signal: junction J9 has no signal source checked in the 90 days" in violation.hold_reason


def test_held_violations_say_which_check_failed_in_the_api_the_review_and_the_cli(
    ctx: Context, client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    court_ready(ctx, "cam-1", at=T0, clock_offset_s=-12.5)
    violation = record(ctx, ready_candidate(ctx, "far-clock", at=T0, calibration_id=None))
    officer = auth_headers(ctx, "traffic_officer")
    listed = client.get("/api/violations", params={"status": "pending"}, headers=officer).json()
    assert "clock was -12.500 s off NTP" in listed[0]["hold_reason"]
    checks = client.get(f"/api/violations/{violation.id}/readiness", headers=officer).json()
    failed = {c["check"] for c in checks if not c["ok"]}
    assert failed == {"camera_clock", "calibration"}
    review = client.post(
        f"/api/violations/{violation.id}/review", json={"decision": "approve"}, headers=officer
    )
    assert review.status_code == 200
    assert review.json()["status"] == "unissuable"
    assert review.json()["outcome"].startswith("Approved, but no challan was issued: not court-ready: ")
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(ctx.settings.data_dir))
    result = CliRunner().invoke(app, ["enforcement", "held"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert (
        row["id"] == violation.id and row["status"] == "unissuable" and "camera_clock" in row["hold_reason"]
    )


def test_readiness_records_refuse_bad_input(ctx: Context, client: TestClient) -> None:
    court_ready(ctx, "cam-1", at=T0)
    admin = auth_headers(ctx, "admin")
    base = "/api/enforcement/cameras"
    bad_method = {"offset_s": 0.1, "measured_at": T0.isoformat(), "method": "guess"}
    assert client.post(f"{base}/cam-1/clock-checks", json=bad_method, headers=admin).status_code == 422
    far = {"offset_s": float("1e9"), "measured_at": T0.isoformat(), "method": "onvif"}
    assert client.post(f"{base}/cam-1/clock-checks", json=far, headers=admin).status_code == 422
    good = {"offset_s": 0.1, "measured_at": T0.isoformat(), "method": "onvif"}
    unknown = client.post(f"{base}/nowhere/clock-checks", json=good, headers=admin)
    assert unknown.status_code == 404 and "camera 'nowhere' does not exist" in unknown.json()["detail"]
    survey = {"lane_markings": True, "stop_lines": True, "surveyed_by": "x", "surveyed_at": T0.isoformat()}
    assert client.post(f"{base}/cam-1/road-surveys", json=survey, headers=admin).status_code == 422
    lamp = {
        "kind": "lamp",
        "device": "no-such-camera",
        "offset_ms": 0,
        "checked_at": T0.isoformat(),
        "checked_by": "x",
    }
    assert client.post("/api/signals/J1/sources", json=lamp, headers=admin).status_code == 404
    officer = auth_headers(ctx, "traffic_officer")
    assert client.post(f"{base}/cam-1/clock-checks", json=good, headers=officer).status_code == 403
    assert client.get(f"{base}/cam-1/clock-checks", headers=officer).json()[0]["method"] == "onvif"


def test_a_registration_does_not_reopen_a_violation_held_for_its_evidence(ctx: Context) -> None:
    court_ready(ctx, "cam-1", at=T0, compliant=False)
    violation = record(ctx, ready_candidate(ctx, "unready", at=T0, calibration_id=None))
    with ctx.db.session() as session:
        session.get(Violation, violation.id).status = "approved"  # type: ignore[union-attr]
    issue(ctx)
    with ctx.db.session() as session:
        service.reopen_unissuable(session, plates=["ABC123"])
        statuses = set(session.scalars(select(Violation.status)))
    assert statuses == {"unissuable"}


def test_a_misread_of_a_plate_already_in_the_queue_is_grouped_with_it_not_queued_as_new(
    ctx: Context, client: TestClient
) -> None:
    court_ready(ctx, "cam-1", at=T0)
    real = record(ctx, ready_candidate(ctx, "real", at=T0, confidence=0.7, calibration_id=None))
    # The same car a second later, its plate misread (8 for B), and as a plate with no owner on file.
    misread = ready_candidate(
        ctx, "misread", at=T0 + timedelta(seconds=1), offence="unregistered", plate="A8C123"
    )
    misread.detail["track_id"] = 99
    grouped = record(ctx, misread)
    another = ready_candidate(ctx, "other-car", at=T0 + timedelta(seconds=2), plate="KHB777")
    another.detail["track_id"] = 42
    other = record(ctx, another)
    assert grouped.detail["misread_of"] == real.id and grouped.status == "pending"
    assert grouped.hold_reason.startswith(f"possible misread of ABC123 (violation {real.id})")
    assert "misread_of" not in other.detail
    queue = client.get(
        "/api/violations", params={"status": "pending"}, headers=auth_headers(ctx, "traffic_officer")
    )
    by_id = {v["id"]: v for v in queue.json()}
    assert by_id[grouped.id]["detail"]["misread_of"] == real.id


def test_plates_alike_are_look_alikes_or_one_character_dropped() -> None:
    assert service.plates_alike("ABC123", "A8C123") and service.plates_alike("LEA4521", "LEA452I")
    assert service.plates_alike("ABC123", "ABC12") and service.plates_alike("ABC123", "ABC1234")
    # Consecutive registrations passing the same camera are two vehicles, not one misread.
    assert not service.plates_alike("KV000011", "KV000012") and not service.plates_alike("ABC123", "ABC124")
    assert not service.plates_alike("ABC123", "ABC123") and not service.plates_alike("ABC123", "KHB777")


def test_a_registry_of_a_whole_city_reopens_its_violations_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    # Importing a city's registry names more plates than one PostgreSQL statement may carry (65,535
    # parameters): the violations waiting for an owner are reopened in slices, none forgotten.
    from safecity.settings import Settings

    ctx = Context.create(Settings(data_dir=tmp_path / "data", database_url=pg_url))
    try:
        waiting = []
        with ctx.db.session() as session:
            for n, plate in enumerate(("KHI0001", "KHI4999", "KHI5000", "KHI69999")):
                violation = Violation(
                    id=f"v{n}",
                    offence="speeding",
                    plate=plate,
                    camera_id="cam-1",
                    at=T0,
                    status="unissuable",
                    confidence=0.99,
                    hold_reason="no registered owner",
                    evidence={},
                    detail={},
                    source_key=f"k{n}",
                    dedup_key=f"d{n}",
                )
                session.add(violation)
                waiting.append(violation.id)
        plates = [f"KHI{i:04d}" for i in range(70_000)]
        with ctx.db.session() as session:
            assert service.reopen_unissuable(session, plates=plates) == 4
            statuses = {v.status for v in session.scalars(select(Violation))}
        assert statuses == {"approved"}
    finally:
        ctx.db.dispose()
