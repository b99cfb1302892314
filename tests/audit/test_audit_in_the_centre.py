"""The running centre signs checkpoints on its schedule, alerts on a tampered log, and shows it on /audit."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from safecity.accounts.models import Role
from safecity.alerts.models import Alert
from safecity.audit import anchor, consumer, service
from safecity.audit.models import AuditEntry
from safecity.core.context import Context
from tests.conftest import auth_headers


def test_the_checkpoint_job_is_scheduled_and_signs_what_is_new(ctx: Context, client: TestClient) -> None:
    assert "audit.checkpoint" in ctx.jobs.jobs
    assert ctx.jobs.jobs["audit.checkpoint"].seconds == ctx.settings.audit_checkpoint_s
    auth_headers(ctx, Role.admin)
    consumer.sign_checkpoint(ctx)
    newest = anchor.for_url(ctx.settings.resolved_database_url).checkpoints.last()
    with ctx.db.session() as session:
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
    assert newest is not None and last is not None
    assert (newest.last_seq, newest.last_hash) == (last.seq, last.hash)


def test_a_tampered_log_gets_no_checkpoint_but_an_alert(ctx: Context, client: TestClient) -> None:
    auth_headers(ctx, Role.admin)
    consumer.sign_checkpoint(ctx)
    auth_headers(ctx, Role.operator)
    with ctx.db.session() as session:
        newest = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert newest is not None
        session.execute(update(AuditEntry).where(AuditEntry.seq == newest.seq).values(actor="nobody"))
    with pytest.raises(service.AuditTampered):
        consumer.sign_checkpoint(ctx)
    with ctx.db.session() as session:
        raised = session.scalars(select(Alert).where(Alert.kind == consumer.ALERT_KIND)).all()
    assert len(raised) == 1 and raised[0].priority == 1
    assert f"row {newest.seq}" in raised[0].title


def test_the_audit_page_api_names_the_first_bad_row(ctx: Context, client: TestClient) -> None:
    auditor = auth_headers(ctx, Role.auditor)
    intact = client.get("/api/audit/verify", headers=auditor).json()
    assert intact["ok"] and intact["checkpoints"] >= 1
    with ctx.db.session() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 1).values(target="rewritten"))
    report = client.get("/api/audit/verify", headers=auditor).json()
    assert not report["ok"] and report["first_bad_seq"] == 1
    assert any(p.startswith("row 1 ") and "altered" in p for p in report["problems"])


def test_continuous_viewing_is_one_row_per_viewer_and_subject_per_stretch(ctx: Context) -> None:
    for _ in range(5):  # a video-wall tile refreshing
        with ctx.db.session() as session:
            service.record_viewing(session, actor="operator1", action="camera.watch", target="cam-1")
    with ctx.db.session() as session:
        service.record_viewing(session, actor="operator1", action="camera.watch", target="cam-2")
        service.record_viewing(session, actor="operator2", action="camera.watch", target="cam-1")
    with ctx.db.session() as session:
        rows = service.entries(session, action="camera.watch")
    assert sorted((r.actor, r.target) for r in rows) == [
        ("operator1", "cam-1"),
        ("operator1", "cam-2"),
        ("operator2", "cam-1"),
    ]
    with ctx.db.session() as session:
        later = service.record_viewing(
            session, actor="operator1", action="camera.watch", target="cam-1", every_s=0
        )
    assert later is not None
