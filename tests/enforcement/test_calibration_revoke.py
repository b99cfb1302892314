"""Revoking a calibration: speeds it measured from then on are held, refused at issue and listed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from safecity.audit import service as audit
from safecity.challans import service as challans
from safecity.cli import app
from safecity.core.context import Context
from safecity.core.errors import Conflict, InvalidInput, NotFound
from safecity.core.outbox import OutboxRow
from safecity.enforcement import service
from safecity.enforcement.calibrations import service as calibrations
from safecity.enforcement.models import Violation
from tests.conftest import auth_headers
from tests.enforcement.court import court_ready, ready_candidate

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
REGISTRY = (
    "plate,owner,cnic,address,make,colour\nABC123,Ali Khan,42101-1234567-1,House 1 Clifton,Corolla,white\n"
)


def _record(ctx: Context, key: str, at: datetime, calibration: int, confidence: float = 0.99) -> Violation:
    with ctx.db.session() as session:
        if challans.registry_status(session, "ABC123") is None:
            challans.import_registry(session, REGISTRY, actor="test")
        violation, _ = service.record_candidate(
            session,
            ready_candidate(ctx, key, at=at, calibration_id=calibration, confidence=confidence),
            media=ctx.media,
        )
        return violation


def _issue(ctx: Context) -> list[str]:
    with ctx.db.session() as session:
        return challans.issue_pending(session, now=T0 + timedelta(hours=2)).numbers


def _status(ctx: Context, violation_id: str) -> tuple[str, str]:
    with ctx.db.session() as session:
        v = session.get(Violation, violation_id)
        assert v is not None
        return v.status, v.hold_reason


def _scene(ctx: Context) -> dict[str, object]:
    """A calibration with a challan issued before and after the revocation moment, an approved
    violation not yet issued and one pending review."""
    calibration = court_ready(ctx, "cam-1", at=T0 - timedelta(hours=1))
    before = _record(ctx, "before", T0 - timedelta(minutes=10), calibration)
    after = _record(ctx, "after", T0 + timedelta(minutes=10), calibration)
    issued = _issue(ctx)
    assert len(issued) == 2
    approved = _record(ctx, "approved", T0 + timedelta(minutes=20), calibration)
    pending = _record(ctx, "pending", T0 + timedelta(minutes=30), calibration, confidence=0.5)
    assert (approved.status, pending.status) == ("approved", "pending")
    return {
        "calibration": calibration,
        "before": before.id,
        "after": after.id,
        "approved": approved.id,
        "pending": pending.id,
    }


def test_a_revoked_calibration_holds_what_it_measured_from_then_and_lists_issued_challans(
    ctx: Context,
) -> None:
    scene = _scene(ctx)
    moment = T0 + timedelta(minutes=5)
    with ctx.db.session() as session:
        row, held, numbers = calibrations.revoke(
            session,
            int(scene["calibration"]),  # type: ignore[call-overload]
            effective_from=moment,
            reason="radar found out of tolerance at its annual check",
            actor="inspector.rana",
        )
        assert row.valid_until == moment and row.revoked_by == "inspector.rana"
    assert sorted(held) == sorted([scene["approved"], scene["pending"]])
    with ctx.db.session() as session:
        from safecity.challans.models import Challan

        after_challan = session.scalars(
            select(Challan.number).where(Challan.violation_id == scene["after"])
        ).one()
        before_challan = session.scalars(
            select(Challan.number).where(Challan.violation_id == scene["before"])
        ).one()
    assert numbers == [after_challan] and before_challan not in numbers
    status, reason = _status(ctx, str(scene["approved"]))
    assert status == "unissuable" and "was revoked from 2025-06-01T08:05:00+00:00 by inspector.rana" in reason
    status, reason = _status(ctx, str(scene["pending"]))
    assert status == "pending" and "radar found out of tolerance" in reason
    assert _status(ctx, str(scene["before"]))[0] == "issued"
    # A speed measured later with it is held by the gate, which names the revocation.
    late = _record(ctx, "late", T0 + timedelta(minutes=40), int(scene["calibration"]))  # type: ignore[call-overload]
    assert late.status == "pending"
    assert f"calibration {scene['calibration']} was revoked from" in late.hold_reason
    with ctx.db.session() as session:
        (entry,) = audit.entries(session, action="enforcement.calibration_revoke")
        assert entry.detail["challans_to_review"] == [after_challan]
        assert entry.detail["violations_held"] == 2
        # Workers are told: the calibration's period now ends at the revocation.
        staged = [json.loads(r.data) for r in session.scalars(select(OutboxRow))]
        assert any(
            e.get("type") == "calibration_changed"
            and e.get("calibration_id") == scene["calibration"]
            and e.get("valid_until", "").startswith("2025-06-01T08:05:00")
            for e in staged
        )


def test_revocation_refuses_what_cannot_be(ctx: Context) -> None:
    calibration = court_ready(ctx, "cam-1", at=T0)
    with ctx.db.session() as session:
        with pytest.raises(NotFound):
            calibrations.revoke(session, 999, effective_from=T0, reason="faulty", actor="x")
        with pytest.raises(InvalidInput, match="outside that period"):
            calibrations.revoke(
                session, calibration, effective_from=T0 - timedelta(days=60), reason="faulty", actor="x"
            )
        with pytest.raises(InvalidInput, match="needs a reason"):
            calibrations.revoke(session, calibration, effective_from=T0, reason="  ", actor="x")
    with ctx.db.session() as session:
        calibrations.revoke(
            session, calibration, effective_from=T0, reason="certificate withdrawn", actor="x"
        )
    with ctx.db.session() as session:
        with pytest.raises(Conflict, match="already revoked"):
            calibrations.revoke(
                session, calibration, effective_from=T0 + timedelta(hours=1), reason="again", actor="x"
            )
        # An earlier moment still may be given (the fault turned out to be older).
        row, _, _ = calibrations.revoke(
            session, calibration, effective_from=T0 - timedelta(days=1), reason="older fault", actor="x"
        )
        assert row.valid_until == T0 - timedelta(days=1)


def test_revocation_over_http_and_the_cli(
    ctx: Context, client: TestClient, monkeypatch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    calibration = court_ready(ctx, "cam-1", at=T0)
    url = f"/api/enforcement/calibrations/{calibration}/revoke"
    body = {
        "effective_from": (T0 + timedelta(hours=1)).isoformat(),
        "reason": "device replaced after a crash",
    }
    assert client.post(url, json=body, headers=auth_headers(ctx, "operator")).status_code == 403
    admin = auth_headers(ctx, "admin")
    refused = client.post(url, json={**body, "effective_from": "2020-01-01T00:00:00Z"}, headers=admin)
    assert refused.status_code == 422 and "outside that period" in refused.text
    assert (
        client.post("/api/enforcement/calibrations/999/revoke", json=body, headers=admin).status_code == 404
    )
    done = client.post(url, json=body, headers=admin)
    assert done.status_code == 200, done.text
    assert done.json()["calibration"]["revoked_reason"] == "device replaced after a crash"
    assert done.json()["violations_held"] == [] and done.json()["challans_to_review"] == []
    # The CLI: an earlier moment, given in the display zone (Asia/Karachi, +05:00).
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(ctx.settings.data_dir))
    result = CliRunner().invoke(
        app,
        [
            "enforcement",
            "revoke-calibration",
            str(calibration),
            "--from",
            "2025-06-01T12:30",
            "--reason",
            "older",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["calibration"]["revoked_from"].startswith("2025-06-01T07:30:00")
    bad = CliRunner().invoke(
        app,
        ["enforcement", "revoke-calibration", str(calibration), "--from", "yesterday", "--reason", "x y z"],
    )
    assert bad.exit_code == 1 and "is not a time" in bad.output


def test_a_revocation_by_another_serve_reaches_this_ones_gate_at_once(tmp_path: Path, pg_url: str) -> None:
    # City mode: each serve keeps the calibrations and road surveys the gate reads in memory. A
    # revocation committed by another serve must reach this one's gate before its next violation.
    import time

    from safecity.core.db import Database
    from safecity.settings import Settings

    ctx = Context.create(Settings(data_dir=tmp_path / "data", database_url=pg_url))
    other = Database(pg_url)
    try:
        ctx.db.memo.start()
        deadline = time.monotonic() + 10
        while not ctx.db.memo.listening:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        calibration = court_ready(ctx, "cam-1", at=T0 - timedelta(hours=1))
        first = _record(ctx, "first", T0 + timedelta(minutes=10), calibration)
        assert first.status == "approved"
        assert ctx.db.memo.holds("enforcement.calibrations")  # the gate read it from memory from now on
        with other.session() as session:
            calibrations.revoke(
                session,
                calibration,
                effective_from=T0 + timedelta(minutes=5),
                reason="radar found out of tolerance",
                actor="inspector.rana",
            )
        while ctx.db.memo.holds("enforcement.calibrations"):
            assert time.monotonic() < deadline + 10, "the revocation was never heard"
            time.sleep(0.02)
        late = _record(ctx, "late", T0 + timedelta(minutes=40), calibration)
        assert late.status == "pending"
        assert f"calibration {calibration} was revoked from" in late.hold_reason
    finally:
        other.dispose()
        ctx.db.dispose()
