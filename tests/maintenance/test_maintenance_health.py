"""Health reports through the real app: history spans, faults with evidence, recovery closing them."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from safecity.alerts import service as alerts
from safecity.cameras import consumer as cameras_consumer
from safecity.core.context import Context
from safecity.maintenance import consumer
from safecity.maintenance.models import CameraFault, HealthSpan
from tests.maintenance.maintenance_support import T0, add_camera, health, publish

FRAME = "sha256:" + "c" * 64 + ".jpg"


def spans(ctx: Context, camera_id: str) -> list[HealthSpan]:
    with ctx.db.session() as session:
        return list(
            session.scalars(
                select(HealthSpan).where(HealthSpan.camera_id == camera_id).order_by(HealthSpan.since)
            )
        )


def faults(ctx: Context, camera_id: str) -> list[CameraFault]:
    with ctx.db.session() as session:
        return list(
            session.scalars(
                select(CameraFault).where(CameraFault.camera_id == camera_id).order_by(CameraFault.started_at)
            )
        )


def camera_alerts(ctx: Context, camera_id: str) -> list[tuple[str, str]]:
    with ctx.db.session() as session:
        rows = alerts.list_alerts(session, kind="camera_fault", limit=1000)
        return sorted((a.dedup_key, a.status) for a in rows if a.camera_id == camera_id)


def test_every_health_change_is_stored_as_a_span_that_ends_where_the_next_begins(
    client: TestClient, ctx: Context
) -> None:
    add_camera(ctx, "cam-1")
    publish(
        client,
        ctx,
        health("cam-1", "online", T0),
        health("cam-1", "frozen", T0 + timedelta(minutes=5), detail="the picture has not changed for 3 s"),
        health("cam-1", "online", T0 + timedelta(minutes=9)),
    )
    got = [(s.state, s.since, s.until) for s in spans(ctx, "cam-1")]
    assert got == [
        ("online", T0, T0 + timedelta(minutes=5)),
        ("frozen", T0 + timedelta(minutes=5), T0 + timedelta(minutes=9)),
        ("online", T0 + timedelta(minutes=9), None),
    ]


def test_a_fault_opens_with_its_evidence_and_start_and_closes_by_itself_on_recovery(
    client: TestClient, ctx: Context, admin: dict[str, str]
) -> None:
    add_camera(ctx, "cam-1")
    began = T0 + timedelta(minutes=1)
    publish(
        client,
        ctx,
        health("cam-1", "online", T0),
        health(
            "cam-1", "covered", began, detail="most of the picture is blank: lens covered", frame_ref=FRAME
        ),
    )
    open_faults = client.get("/api/maintenance/faults?open=true", headers=admin).json()
    assert [(f["camera_id"], f["state"], f["frame_ref"]) for f in open_faults] == [
        ("cam-1", "covered", FRAME)
    ]
    assert open_faults[0]["started_at"].startswith("2025-03-10T08:01:00")
    assert open_faults[0]["detail"] == "most of the picture is blank: lens covered"
    assert camera_alerts(ctx, "cam-1") == [("camera_fault:cam-1:covered", "new")]

    publish(client, ctx, health("cam-1", "online", began + timedelta(minutes=3)))

    [fault] = faults(ctx, "cam-1")
    assert fault.closed_by == "recovered"
    assert fault.ended_at == began + timedelta(minutes=3)
    assert "online again after 3 min" in fault.resolution
    assert client.get("/api/maintenance/faults?open=true", headers=admin).json() == []
    assert camera_alerts(ctx, "cam-1") == [("camera_fault:cam-1:covered", "closed")]
    assert ctx.counters["faults_opened"] == 1
    assert ctx.counters["faults_closed"] == 1


def test_an_outage_through_several_faults_closes_every_fault_alert_when_the_camera_recovers(
    client: TestClient, ctx: Context
) -> None:
    add_camera(ctx, "cam-1")
    publish(
        client,
        ctx,
        health("cam-1", "online", T0),
        health("cam-1", "too_dark", T0 + timedelta(hours=1), detail="average brightness 12 of 255"),
        health("cam-1", "offline", T0 + timedelta(hours=2), detail="no picture for 6 s"),
    )
    first, second = faults(ctx, "cam-1")
    assert (first.state, first.closed_by, first.resolution) == ("too_dark", "superseded", "became offline")
    assert (second.state, second.ended_at) == ("offline", None)
    # The outage began with the first fault, whatever it turned into since.
    assert second.outage_since == T0 + timedelta(hours=1)

    publish(client, ctx, health("cam-1", "online", T0 + timedelta(hours=3)))

    assert all(f.ended_at is not None for f in faults(ctx, "cam-1"))
    assert camera_alerts(ctx, "cam-1") == [
        ("camera_fault:cam-1:offline", "closed"),
        ("camera_fault:cam-1:too_dark", "closed"),
    ]


def test_a_fault_alert_raised_after_the_recovery_was_seen_is_closed_at_once(
    client: TestClient, ctx: Context
) -> None:
    add_camera(ctx, "cam-1")
    fault = health("cam-1", "offline", T0, detail="connection refused")
    # This domain reads the bus faster than the cameras domain: it sees the fault and the recovery first.
    consumer.handle_health(ctx, fault)
    consumer.handle_health(ctx, health("cam-1", "online", T0 + timedelta(minutes=2)))
    cameras_consumer.handle_health(ctx, fault)  # only now is the alert raised (and announced)
    publish(client, ctx)

    assert camera_alerts(ctx, "cam-1") == [("camera_fault:cam-1:offline", "closed")]


def test_a_redelivered_report_changes_nothing(client: TestClient, ctx: Context) -> None:
    add_camera(ctx, "cam-1")
    down = health("cam-1", "offline", T0, detail="no picture for 6 s")
    publish(client, ctx, down, health("cam-1", "online", T0 + timedelta(minutes=1)), down)

    assert [s.state for s in spans(ctx, "cam-1")] == ["offline", "online"]
    assert len(faults(ctx, "cam-1")) == 1
    assert ctx.counters["faults_opened"] == 1


def test_a_report_of_the_same_state_refreshes_its_detail_without_a_new_span(
    client: TestClient, ctx: Context
) -> None:
    add_camera(ctx, "cam-1")
    publish(
        client,
        ctx,
        health("cam-1", "offline", T0, detail="connection refused"),
        health("cam-1", "offline", T0 + timedelta(minutes=1), detail="wrong user name or password"),
    )
    [span] = spans(ctx, "cam-1")
    assert (span.since, span.detail) == (T0, "wrong user name or password")
    [fault] = faults(ctx, "cam-1")
    assert fault.detail == "wrong user name or password"


def test_a_late_report_is_slotted_into_the_history_without_reopening_a_fault(
    client: TestClient, ctx: Context
) -> None:
    add_camera(ctx, "cam-1")
    publish(
        client,
        ctx,
        health("cam-1", "online", T0),
        health("cam-1", "online", T0 + timedelta(minutes=20)),
        health("cam-1", "frozen", T0 + timedelta(minutes=30)),
        health("cam-1", "online", T0 + timedelta(minutes=40)),
    )
    # A report delayed on the bus: the camera was offline for a while before it froze.
    publish(client, ctx, health("cam-1", "offline", T0 + timedelta(minutes=10)))

    got = [(s.state, s.since, s.until) for s in spans(ctx, "cam-1")]
    assert got == [
        ("online", T0, T0 + timedelta(minutes=10)),
        ("offline", T0 + timedelta(minutes=10), T0 + timedelta(minutes=30)),
        ("frozen", T0 + timedelta(minutes=30), T0 + timedelta(minutes=40)),
        ("online", T0 + timedelta(minutes=40), None),
    ]
    assert [f.state for f in faults(ctx, "cam-1") if f.ended_at is None] == []


def test_a_report_for_an_unregistered_camera_is_ignored(client: TestClient, ctx: Context) -> None:
    publish(client, ctx, health("cam-ghost", "offline", T0))
    assert spans(ctx, "cam-ghost") == []
    assert faults(ctx, "cam-ghost") == []


def test_the_state_in_plain_words_reaches_the_maintenance_view(
    client: TestClient, ctx: Context, admin: dict[str, str]
) -> None:
    add_camera(ctx, "cam-1")
    add_camera(ctx, "cam-2")
    add_camera(ctx, "cam-3")
    publish(
        client,
        ctx,
        health("cam-1", "offline", T0, detail="camera refused the user name or password (401)"),
        health("cam-2", "online", T0),
    )
    rows = {r["camera_id"]: r for r in client.get("/api/maintenance/cameras", headers=admin).json()}
    assert rows["cam-1"]["state"] == "offline"
    assert rows["cam-1"]["detail"] == "camera refused the user name or password (401)"
    assert rows["cam-1"]["open_fault"]["state"] == "offline"
    assert rows["cam-2"]["state"] == "online" and rows["cam-2"]["open_fault"] is None
    assert rows["cam-3"]["state"] == "unknown" and rows["cam-3"]["uptime_7d"] is None
    faulty = client.get("/api/maintenance/cameras?faulty=true", headers=admin).json()
    assert [r["camera_id"] for r in faulty] == ["cam-1"]
