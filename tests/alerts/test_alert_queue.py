"""The alert queue: de-duplication, decisions under concurrency, dismissal reasons and figures."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from safecity.alerts import service
from safecity.alerts.models import Alert
from safecity.audit import service as audit
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.errors import Conflict, InvalidInput
from safecity.settings import Settings
from tests.conftest import auth_headers


def _raise(ctx: Context, n: int = 1, *, camera: str = "cam-1", kind: str = "hotlist", **extra: object) -> str:
    with ctx.db.session() as session:
        alert, _ = service.raise_alert(
            session,
            kind=kind,
            priority=1,
            title=f"Stolen car ABC-{n}",
            source_key=f"src-{camera}-{kind}-{n}",
            dedup_key=f"dedup-{camera}-{kind}-{n}",
            camera_id=camera,
            evidence={"plate": f"ABC{n}", "crop_ref": None},
            **extra,
        )
        return alert.id


def test_same_fact_raises_one_alert_and_repeats_fold_into_it(ctx: Context) -> None:
    with ctx.db.session() as session:
        first, new1 = service.raise_alert(
            session, kind="hotlist", priority=1, title="t", source_key="read-1", dedup_key="plate:ABC"
        )
        again, new2 = service.raise_alert(
            session, kind="hotlist", priority=1, title="t", source_key="read-1", dedup_key="plate:ABC"
        )
        repeat, new3 = service.raise_alert(
            session, kind="hotlist", priority=1, title="t", source_key="read-2", dedup_key="plate:ABC"
        )
        assert (new1, new2, new3) == (True, False, False)
        assert first.id == again.id == repeat.id
        assert repeat.occurrences == 2


def _race(db_url: str, tmp_path: Path) -> None:
    context = Context.create(Settings(data_dir=tmp_path / "race", database_url=db_url))
    try:
        alert_id = _raise(context)
        barrier = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def operator(name: str, action: str) -> None:
            barrier.wait()
            try:
                with context.db.session() as session:
                    reason = "wrong car" if action == "dismiss" else ""
                    service.act(session, alert_id, action=action, actor=name, reason=reason, version=1)
                outcomes[name] = "won"
            except Conflict:
                outcomes[name] = "conflict"

        threads = [
            threading.Thread(target=operator, args=("ayesha", "confirm")),
            threading.Thread(target=operator, args=("bilal", "dismiss")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes.values()) == ["conflict", "won"]
        winner = next(name for name, result in outcomes.items() if result == "won")
        with context.db.session() as session:
            alert = session.get(Alert, alert_id)
            assert alert is not None
            history = service.history(session, alert_id)
            assert [(h.actor, h.from_status) for h in history] == [(winner, "new")]
            assert alert.version == 2
            assert alert.status == history[0].to_status
            assert alert.assigned_to == winner
    finally:
        context.db.dispose()


def test_two_operators_acting_at_once_one_wins_and_history_stays_consistent(
    any_db_url: str, tmp_path: Path
) -> None:
    _race(any_db_url, tmp_path)


def test_dismissal_needs_a_reason_and_a_known_code(ctx: Context) -> None:
    alert_id = _raise(ctx)
    with ctx.db.session() as session, pytest.raises(InvalidInput, match="needs a reason"):
        service.act(session, alert_id, action="dismiss", actor="op")
    with ctx.db.session() as session, pytest.raises(InvalidInput, match="unknown dismissal reason"):
        service.act(session, alert_id, action="dismiss", actor="op", reason="x", reason_code="bored")
    with ctx.db.session() as session:
        assert service.history(session, alert_id) == []
        assert service.get(session, alert_id).status == "new"


def test_dismissals_feed_false_alarm_figures_per_camera_and_rule(ctx: Context) -> None:
    ids = [_raise(ctx, n, camera="cam-noisy") for n in range(4)] + [_raise(ctx, 9, camera="cam-good")]
    face = _raise(ctx, 1, camera="cam-good", kind="face_match", detail={"rule": "watchlist-wanted"})
    with ctx.db.session() as session:
        for alert_id, code in ((ids[0], "misread"), (ids[1], "false_match"), (ids[2], "duplicate")):
            service.act(session, alert_id, action="dismiss", actor="op", reason="n/a", reason_code=code)
        service.act(session, ids[3], action="confirm", actor="op")
        service.act(session, face, action="dismiss", actor="op", reason="twin", reason_code="false_match")
    with ctx.db.session() as session:
        report = service.false_alarms(session, since=utcnow() - timedelta(days=1))
    cameras = {row.key: row for row in report.by_camera}
    assert cameras["cam-noisy"].raised == 4
    assert cameras["cam-noisy"].dismissed == 3
    assert cameras["cam-noisy"].false_alarms == 2
    assert cameras["cam-noisy"].false_alarm_rate == 0.5
    assert cameras["cam-noisy"].reasons == {"misread": 1, "false_match": 1, "duplicate": 1}
    assert cameras["cam-good"].false_alarms == 1
    rules = {row.key: row for row in report.by_rule}
    assert rules["watchlist-wanted"].false_alarm_rate == 1.0
    assert rules["hotlist"].raised == 5
    assert report.by_rule[0].key == "watchlist-wanted"


def test_viewing_an_alert_is_audited_and_listing_the_queue_is_not(ctx: Context, client: TestClient) -> None:
    alert_id = _raise(ctx)
    headers = auth_headers(ctx, "operator", "op-view")
    assert client.get("/api/alerts", headers=headers).status_code == 200
    assert client.get(f"/api/alerts/{alert_id}", headers=headers).json()["id"] == alert_id
    with ctx.db.session() as session:
        views = list(audit.entries(session, action="alert.view"))
    assert [(e.actor, e.target) for e in views] == [("op-view", alert_id)]


def test_roles_decide_who_may_act_on_alerts(ctx: Context, client: TestClient) -> None:
    alert_id = _raise(ctx)
    auditor = auth_headers(ctx, "auditor")
    refused = client.post(f"/api/alerts/{alert_id}/actions", json={"action": "confirm"}, headers=auditor)
    assert refused.status_code == 403
    assert "alerts:act" in refused.json()["detail"]
    operator = auth_headers(ctx, "operator")
    bad = client.post(
        f"/api/alerts/{alert_id}/actions",
        json={"action": "dismiss", "reason": "x", "reason_code": "bored"},
        headers=operator,
    )
    assert bad.status_code == 422
    ok = client.post(
        f"/api/alerts/{alert_id}/actions",
        json={"action": "dismiss", "reason": "wrong car", "reason_code": "misread", "version": 1},
        headers=operator,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "dismissed"
    stale = client.post(
        f"/api/alerts/{alert_id}/actions", json={"action": "close", "version": 1}, headers=operator
    )
    assert stale.status_code == 409
    history = client.get(f"/api/alerts/{alert_id}/history", headers=operator).json()
    assert [(h["action"], h["reason_code"]) for h in history] == [("dismiss", "misread")]
    assert client.get("/api/alerts/nope", headers=operator).status_code == 404


def test_dashboard_figures_count_alerts_per_hour_and_time_to_first_decision(
    ctx: Context, client: TestClient
) -> None:
    first = _raise(ctx, 1)
    _raise(ctx, 2, kind="face_match")
    with ctx.db.session() as session:
        service.act(session, first, action="acknowledge", actor="op")
    headers = auth_headers(ctx, "supervisor")
    hourly = client.get("/api/alerts/stats/hourly?hours=6", headers=headers).json()
    assert len(hourly["hours"]) == 6
    assert hourly["counts"]["hotlist"][-1] == 1
    assert hourly["counts"]["face_match"][-1] == 1
    response = client.get("/api/alerts/stats/response", headers=headers).json()
    assert response["decided"] == 1
    assert 0 <= response["p50_s"] < 60
    assert client.get("/api/alerts/stats/hourly?hours=0", headers=headers).status_code == 422


def test_a_priority_one_alert_nobody_acknowledges_is_escalated_once_and_an_acknowledged_one_never(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safecity.alerts.consumer import escalate
    from safecity.core import outbox
    from safecity.core.events import AlertChanged

    waiting, handled = _raise(ctx, 1), _raise(ctx, 2)
    with ctx.db.session() as session:
        service.act(session, handled, action="acknowledge", actor="op", version=1)
        two_minutes_ago = utcnow() - timedelta(seconds=ctx.settings.alert_escalate_after_s + 5)
        for alert_id in (waiting, handled):
            session.get(Alert, alert_id).created_at = two_minutes_ago  # type: ignore[union-attr]
    staged: list[AlertChanged] = []
    original = outbox.stage

    def keep(session: object, event: object) -> None:
        if isinstance(event, AlertChanged):
            staged.append(event)
        original(session, event)  # type: ignore[arg-type]

    monkeypatch.setattr(outbox, "stage", keep)
    assert escalate(ctx) == 1
    assert escalate(ctx) == 0  # once
    with ctx.db.session() as session:
        assert session.get(Alert, waiting).escalated_at is not None  # type: ignore[union-attr]
        assert session.get(Alert, handled).escalated_at is None  # type: ignore[union-attr]
        [entry] = audit.entries(session, action="alert.escalate")
        assert entry.target == waiting and entry.detail["waited_s"] >= ctx.settings.alert_escalate_after_s
    assert [(e.alert_id, e.escalated) for e in staged] == [(waiting, True)]
