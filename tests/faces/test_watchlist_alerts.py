"""A worker's face match in the running centre: alert, missing-person notice, decisions, outcome, stats."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from test_watchlist_governance import person_photo, stand_in_encoder

from safecity.accounts.models import Role
from safecity.alerts import service as alerts
from safecity.alerts.models import Alert
from safecity.audit import service as audit
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import Event, FaceMatch
from safecity.faces import service
from safecity.faces.models import FaceMatchRecord
from tests.conftest import auth_headers


def publish(ctx: Context, *events: Event) -> None:
    """Publishes events into the running app and waits until every handler has run."""
    for event in events:
        ctx.bus.publish_threadsafe(event)
    assert ctx.bus.loop is not None
    asyncio.run_coroutine_threadsafe(ctx.settle(), ctx.bus.loop).result(60)


def entry(ctx: Context, *, category: str = "wanted", approve: bool = True, **overrides: object) -> str:
    fields: dict[str, object] = {
        "name": "Kamran Sheikh",
        "category": category,
        "legal_basis": "FIR 455/2024 PS Clifton",
        "requested_by": "inspector.ali",
        "case_officer": "si.nadia",
        "photos": [person_photo(120), person_photo(120, noise=3)],
        "expires_at": utcnow() + timedelta(days=10),
        "encoder": stand_in_encoder,
    }
    fields.update(overrides)
    with ctx.db.session() as session:
        row = service.enroll(session, ctx.media, **fields)  # type: ignore[arg-type]
        if approve:
            service.approve(session, row.id, "supervisor.sana")
        return row.id


def face_match(ctx: Context, entry_id: str, key: str = "cam-7:track-1", camera: str = "cam-7") -> FaceMatch:
    crop = ctx.media.put_image(np.full((60, 50, 3), 99, dtype=np.uint8))
    frame = ctx.media.put_image(np.full((360, 640, 3), 98, dtype=np.uint8))
    return FaceMatch(
        key=key,
        camera_id=camera,
        entry_id=entry_id,
        similarity=0.93,
        crop_ref=crop,
        frame_ref=frame,
        track_id=1,
    )


def test_wanted_match_raises_one_priority_one_alert_with_its_evidence(
    ctx: Context, client: TestClient
) -> None:
    entry_id = entry(ctx)
    match = face_match(ctx, entry_id)
    publish(ctx, match, match)  # redelivered: still one alert, one match
    with ctx.db.session() as session:
        (alert,) = alerts.list_alerts(session, kind="face_match")
        assert alert.priority == 1 and alert.camera_id == "cam-7"
        assert alert.evidence["crop_ref"] == match.crop_ref
        assert alert.evidence["frame_ref"] == match.frame_ref
        assert alert.evidence["entry_id"] == entry_id
        assert alert.evidence["similarity"] == 0.93 and alert.evidence["category"] == "wanted"
        assert len(alert.evidence["watchlist_photo_refs"]) == 2
        assert alert.detail["workflow"] == "wanted"
        assert session.scalar(select(func.count()).select_from(FaceMatchRecord)) == 1
        assert service.list_notifications(session) == []
    assert ctx.counters["face_matches"] == 1


def test_missing_person_match_notifies_the_case_officer(ctx: Context, client: TestClient) -> None:
    entry_id = entry(ctx, category="missing", name="Ayesha (age 9)")
    publish(ctx, face_match(ctx, entry_id))
    with ctx.db.session() as session:
        (alert,) = alerts.list_alerts(session, kind="face_match")
        assert alert.priority == 2 and alert.detail["workflow"] == "missing_person"
        (notice,) = service.list_notifications(session, recipient="si.nadia")
        assert "Ayesha (age 9)" in notice.message and alert.id in notice.message
    headers = auth_headers(ctx, Role.operator)
    shown = client.get("/api/faces/notifications?unacknowledged=true", headers=headers).json()
    assert [n["recipient"] for n in shown] == ["si.nadia"]
    acked = client.post(f"/api/faces/notifications/{shown[0]['id']}/ack", headers=headers)
    assert acked.status_code == 200 and acked.json()["acknowledged_by"]


def test_match_of_an_inactive_entry_is_refused_and_its_images_deleted(
    ctx: Context, client: TestClient
) -> None:
    pending = entry(ctx, approve=False)
    match = face_match(ctx, pending)
    publish(ctx, match)
    with ctx.db.session() as session:
        assert alerts.list_alerts(session, kind="face_match") == []
        assert session.scalar(select(func.count()).select_from(FaceMatchRecord)) == 0
        assert audit.entries(session, action="faces.match_refused")
    assert match.crop_ref and not ctx.media.path(match.crop_ref).exists()
    assert match.frame_ref and not ctx.media.path(match.frame_ref).exists()
    assert "face_matches" not in ctx.counters


def test_event_list_match_from_another_camera_is_refused(ctx: Context, client: TestClient) -> None:
    now = utcnow()
    entry_id = entry(
        ctx,
        category="event",
        event_cameras=["gate-1"],
        event_start=now - timedelta(hours=1),
        event_end=now + timedelta(hours=2),
    )
    publish(ctx, face_match(ctx, entry_id, key="k-elsewhere", camera="market-3"))
    publish(ctx, face_match(ctx, entry_id, key="k-gate", camera="gate-1"))
    with ctx.db.session() as session:
        assert [a.camera_id for a in alerts.list_alerts(session, kind="face_match")] == ["gate-1"]


def test_operator_rejection_dismisses_the_alert_and_counts_against_entry_and_camera(
    ctx: Context, client: TestClient
) -> None:
    entry_id = entry(ctx)
    publish(
        ctx,
        face_match(ctx, entry_id, key="a", camera="cam-7"),
        face_match(ctx, entry_id, key="b", camera="cam-9"),
    )
    headers = auth_headers(ctx, Role.operator)
    matches = {m["camera_id"]: m for m in client.get("/api/faces/matches", headers=headers).json()}
    no_reason = client.post(
        f"/api/faces/matches/{matches['cam-7']['id']}/decision", json={"decision": "reject"}, headers=headers
    )
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["detail"]
    rejected = client.post(
        f"/api/faces/matches/{matches['cam-7']['id']}/decision",
        json={"decision": "reject", "reason": "different person, beard and age do not fit"},
        headers=headers,
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    again = client.post(
        f"/api/faces/matches/{matches['cam-7']['id']}/decision", json={"decision": "confirm"}, headers=headers
    )
    assert again.status_code == 409
    with ctx.db.session() as session:
        alert = session.get(Alert, matches["cam-7"]["alert_id"])
        assert alert is not None and alert.status == "dismissed"
    stats = client.get("/api/faces/stats/rejections", headers=headers).json()
    by_camera = {s["camera_id"]: s for s in stats}
    assert by_camera["cam-7"]["rejected"] == 1 and by_camera["cam-7"]["rejection_rate"] == 1.0
    assert by_camera["cam-9"]["rejected"] == 0 and by_camera["cam-7"]["entry_name"] == "Kamran Sheikh"


def test_confirmed_match_gets_the_officers_outcome_and_closes_the_alert(
    ctx: Context, client: TestClient
) -> None:
    entry_id = entry(ctx)
    publish(ctx, face_match(ctx, entry_id))
    headers = auth_headers(ctx, Role.operator)
    (match,) = client.get("/api/faces/matches", headers=headers).json()
    early = client.post(
        f"/api/faces/matches/{match['id']}/outcome", json={"outcome": "not_found"}, headers=headers
    )
    assert early.status_code == 409 and "confirm the match first" in early.json()["hint"]
    assert (
        client.post(
            f"/api/faces/matches/{match['id']}/decision", json={"decision": "confirm"}, headers=headers
        ).status_code
        == 200
    )
    bad = client.post(
        f"/api/faces/matches/{match['id']}/outcome", json={"outcome": "escaped"}, headers=headers
    )
    assert bad.status_code == 422
    done = client.post(
        f"/api/faces/matches/{match['id']}/outcome",
        json={"outcome": "not_the_person", "note": "ID card checked: a cousin"},
        headers=headers,
    )
    assert done.status_code == 200 and done.json()["outcome"] == "not_the_person"
    with ctx.db.session() as session:
        alert = session.get(Alert, match["alert_id"])
        assert alert is not None and alert.status == "closed"
    (stat,) = client.get("/api/faces/stats/rejections", headers=headers).json()
    assert (stat["confirmed"], stat["misidentified"], stat["rejection_rate"]) == (1, 1, 1.0)


def test_dismissing_the_alert_on_the_queue_rejects_its_matches(ctx: Context, client: TestClient) -> None:
    entry_id = entry(ctx)
    publish(ctx, face_match(ctx, entry_id))
    headers = auth_headers(ctx, Role.operator)
    (match,) = client.get("/api/faces/matches", headers=headers).json()
    response = client.post(
        f"/api/alerts/{match['alert_id']}/actions",
        json={"action": "dismiss", "reason": "not him", "reason_code": "false_match"},
        headers=headers,
    )
    assert response.status_code == 200
    publish(ctx)
    with ctx.db.session() as session:
        record = session.get(FaceMatchRecord, match["id"])
        assert record is not None and record.status == "rejected" and record.decision_reason == "not him"


def test_operators_cannot_read_or_change_the_watch_list(ctx: Context, client: TestClient) -> None:
    headers = auth_headers(ctx, Role.operator)
    assert client.get("/api/faces/entries", headers=headers).status_code == 403
    assert (
        client.post(
            "/api/faces/search",
            headers=headers,
            data={"reason": "x"},
            files={"photo": ("a.jpg", person_photo(120), "image/jpeg")},
        ).status_code
        == 403
    )
    assert client.get("/api/faces/matches").status_code == 401
