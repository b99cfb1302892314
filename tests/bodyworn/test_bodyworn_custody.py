"""Custody: every act on an item is an audit-chain row, a PDF prints it, re-hashing finds tampering."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from safecity.alerts.models import Alert
from safecity.audit import service as audit
from safecity.bodyworn import consumer, custody, integrity
from safecity.bodyworn.models import BodyWornItem
from safecity.core.clock import utcnow
from safecity.core.context import Context
from tests.bodyworn.bodyworn_support import ingest_one
from tests.conftest import auth_headers

API = "/api/bodyworn/items"


def test_every_view_stream_download_hold_and_change_is_in_the_custody_log_with_who_and_why(
    ctx: Context, client: TestClient, tmp_path: Path
) -> None:
    item_id = ingest_one(ctx, tmp_path / "dock").item_id
    investigator = auth_headers(ctx, "investigator", "si.khan")
    supervisor = auth_headers(ctx, "supervisor", "insp.rana")
    assert client.get(f"{API}/{item_id}?reason=FIR 112/2026 review", headers=investigator).status_code == 200
    video = client.get(f"{API}/{item_id}/video", headers={**investigator, "Range": "bytes=0-99"})
    assert video.status_code == 206 and len(video.content) == 100
    client.get(
        f"{API}/{item_id}/video", headers={**investigator, "Range": "bytes=100-"}
    )  # one stretch of watching
    assert (
        client.get(f"{API}/{item_id}/download", headers=investigator).status_code == 422
    )  # a download needs a why
    download = client.get(f"{API}/{item_id}/download?reason=copy for the prosecutor", headers=investigator)
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    held = client.post(
        f"{API}/{item_id}/holds",
        json={"reference": "Court order 7/2026", "reason": "ordered preserved"},
        headers=investigator,
    )
    assert held.status_code == 201, held.text
    changed = client.post(
        f"{API}/{item_id}/classify",
        json={"categories": ["arrest"], "reason": "an arrest was made"},
        headers=supervisor,
    )
    assert changed.status_code == 200 and changed.json()["categories"] == ["arrest"]

    log = client.get(f"{API}/{item_id}/custody", headers=auth_headers(ctx, "auditor")).json()
    assert [(e["action"], e["actor"], e["reason"]) for e in log] == [
        ("ingest", "dock-7", "received from FILE0001.MP4"),
        ("view", "si.khan", "FIR 112/2026 review"),
        ("stream", "si.khan", ""),
        ("download", "si.khan", "copy for the prosecutor"),
        ("hold", "si.khan", "ordered preserved"),
        ("retention", "insp.rana", "an arrest was made"),
    ]
    assert log[-1]["detail"] == {"before": {"categories": []}, "after": {"categories": ["arrest"]}}
    # Each entry is a row of the hash-chained audit log, and the chain verifies.
    with ctx.db.session() as session:
        assert audit.verify(session).ok
        rows = audit.by_seqs(session, [e["seq"] for e in log])
    assert [r.hash for r in rows] == [e["hash"] for e in log]
    assert all(r.target == f"bodyworn:{item_id}" for r in rows)
    report = client.get(f"{API}/{item_id}/custody.pdf", headers=investigator)
    assert report.status_code == 200 and report.content.startswith(b"%PDF") and len(report.content) > 2000
    assert client.get(f"{API}/{item_id}/custody", headers=investigator).json()[-1]["action"] == "report"


def test_a_changed_original_fails_verification_and_raises_a_priority_one_alert(
    ctx: Context, tmp_path: Path
) -> None:
    first = ingest_one(ctx, tmp_path / "dock", "A.MP4", seed=1).item_id or ""
    second = ingest_one(ctx, tmp_path / "dock", "B.MP4", seed=2).item_id or ""
    assert integrity.verify_many(ctx, [first, second], actor="insp.rana").ok == 2
    with ctx.db.session() as session:
        ref = session.get(BodyWornItem, first).ref  # type: ignore[union-attr]
    stored = ctx.media.path(ref)
    os.chmod(stored, 0o600)
    with stored.open("r+b") as handle:  # someone with access to the volume edits one byte
        handle.seek(200)
        byte = handle.read(1)
        handle.seek(200)
        handle.write(bytes([byte[0] ^ 0xFF]))
    ctx.media.path(ctx_ref(ctx, second)).unlink()

    report = integrity.verify_many(ctx, integrity.live_items(ctx), actor="integrity")

    assert (report.checked, report.ok, report.mismatched, report.missing) == (2, 0, [first], [second])
    with ctx.db.session() as session:
        alerts = session.scalars(select(Alert).where(Alert.kind == integrity.ALERT_KIND)).all()
        log = custody.entries_of(session, first)
        item = session.get(BodyWornItem, first)
    assert sorted(a.detail["item"] for a in alerts) == sorted([first, second])
    assert all(a.priority == 1 for a in alerts)
    assert log[-1].action == "verify_failed" and log[-1].detail["outcome"] == "mismatch"
    assert item is not None and item.verified_ok is False


def ctx_ref(ctx: Context, item_id: str) -> str:
    with ctx.db.session() as session:
        item = session.get(BodyWornItem, item_id)
        assert item is not None
        return item.ref


def test_originals_are_verified_again_on_a_schedule(ctx: Context, tmp_path: Path) -> None:
    item_id = ingest_one(ctx, tmp_path / "dock").item_id
    asyncio.run(consumer.register(ctx))
    assert {"bodyworn.verify", "bodyworn.retention", "bodyworn.copies", "bodyworn.uploads"} <= set(
        ctx.jobs.jobs
    )
    assert integrity.verify_due(ctx).checked == 0  # hashed on arrival: not due yet
    with ctx.db.session() as session:
        item = session.get(BodyWornItem, item_id)
        assert item is not None
        item.verified_at = utcnow() - timedelta(days=ctx.settings.bodyworn_verify_days + 1)
    asyncio.run(ctx.jobs.run_now("bodyworn.verify"))
    with ctx.db.session() as session:
        log = custody.entries_of(session, item_id or "")
    assert (log[-1].action, log[-1].actor, log[-1].reason) == (
        "verify",
        "integrity",
        "scheduled re-verification",
    )
