"""Dispatch: from an alert to the nearest available unit, field updates, and the incident's outcome."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from safecity.alerts import service as alerts
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.context import Context
from safecity.core.errors import Conflict
from safecity.dispatch import service
from tests.conftest import auth_headers

# Karachi: a camera at Saddar, units at Clifton (about 5 km), Lyari (about 2 km) and Korangi (14 km).
SADDAR = (24.8607, 67.0299)


@pytest.fixture
def city(ctx: Context) -> str:
    """A camera, three patrol units and a hot-list alert from the camera; returns the alert id."""
    with ctx.db.session() as session:
        cameras.create(
            session,
            CameraIn(
                id="cam-saddar",
                name="Saddar",
                kind="anpr",
                district="Saddar",
                latitude=SADDAR[0],
                longitude=SADDAR[1],
            ),
            actor="test",
        )
        service.create_unit(
            session, unit_id="PU-1", callsign="Clifton-1", latitude=24.8138, longitude=67.0300
        )
        service.create_unit(session, unit_id="PU-2", callsign="Lyari-2", latitude=24.8720, longitude=67.0120)
        service.create_unit(
            session, unit_id="PU-3", callsign="Korangi-3", latitude=24.8300, longitude=67.1650
        )
        service.create_unit(
            session, unit_id="PU-4", callsign="Off-4", latitude=24.8610, longitude=67.0300, status="off_duty"
        )
        alert, _ = alerts.raise_alert(
            session,
            kind="hotlist",
            priority=1,
            title="Stolen car BKA-123",
            source_key="read-1",
            dedup_key="plate:BKA123",
            camera_id="cam-saddar",
            evidence={"plate": "BKA123", "crop_ref": "sha256:" + "a" * 64 + ".jpg"},
        )
        return alert.id


def test_nearest_available_units_come_first_with_distance_and_eta(ctx: Context, city: str) -> None:
    with ctx.db.session() as session:
        found = service.candidates_for_alert(session, city, speed_kmh=30)
    assert [c.unit.id for c in found] == [
        "PU-2",
        "PU-1",
        "PU-3",
    ]  # the off-duty unit next door is not offered
    lyari = found[0]
    assert 1500 < lyari.distance_m < 2500
    assert lyari.eta_s == pytest.approx(lyari.distance_m * service.DETOUR_FACTOR / (30 / 3.6), abs=0.1)


def test_an_alert_to_an_arrest_links_alert_unit_evidence_and_outcome(
    ctx: Context, city: str, client: TestClient
) -> None:
    operator = auth_headers(ctx, "operator", "op-amna")
    supervisor = auth_headers(ctx, "supervisor")
    sent = client.post("/api/dispatch", json={"unit_id": "PU-2", "alert_id": city}, headers=operator)
    assert sent.status_code == 201, sent.text
    incident_id = sent.json()["incident_id"]
    assert sent.json()["eta_s"] > 0
    assert client.get(f"/api/alerts/{city}", headers=operator).json()["status"] == "acknowledged"
    moved = client.post(
        "/api/units/PU-2/position", json={"latitude": 24.861, "longitude": 67.029}, headers=supervisor
    )
    assert moved.status_code == 200
    assert (
        client.post(
            "/api/units/PU-2/status", json={"status": "on_scene", "note": "suspect stopped"}, headers=operator
        ).json()["status"]
        == "on_scene"
    )
    closed = client.post(f"/api/incidents/{incident_id}/close", json={"outcome": "arrest"}, headers=operator)
    assert closed.status_code == 200, closed.text
    incident = closed.json()
    assert incident["outcome"] == "arrest"
    assert incident["alert_ids"] == [city]
    assert incident["evidence"] == ["sha256:" + "a" * 64 + ".jpg"]
    assert [d["unit_id"] for d in incident["dispatches"]] == ["PU-2"]
    assert incident["dispatches"][0]["arrived_at"] is not None
    assert any("suspect stopped" in n["text"] for n in incident["notes"])
    assert client.get("/api/units/PU-2", headers=operator).json()["status"] == "available"
    history = client.get(f"/api/alerts/{city}/history", headers=operator).json()
    assert [h["to_status"] for h in history] == ["acknowledged", "confirmed", "closed"]
    stats = client.get("/api/dispatch/stats", headers=operator).json()
    assert stats["dispatches"] == 1 and stats["arrived"] == 1 and stats["by_outcome"] == {"arrest": 1}
    assert ctx.counters["dispatches"] == 1


def test_a_false_alarm_outcome_dismisses_the_alert_as_a_false_match(ctx: Context, city: str) -> None:
    with ctx.db.session() as session:
        sent = service.dispatch_unit(session, unit_id="PU-1", actor="op", alert_id=city)
        service.close_incident(session, sent.incident.id, outcome="false_alarm", actor="op")
    with ctx.db.session() as session:
        assert alerts.get(session, city).status == "dismissed"
        assert alerts.history(session, city)[-1].reason_code == "false_match"
        assert service.get_unit(session, "PU-1").status == "available"


def test_bad_input_gets_clear_answers_and_changes_nothing(
    ctx: Context, city: str, client: TestClient
) -> None:
    supervisor = auth_headers(ctx, "supervisor")
    unknown = client.post(
        "/api/units/PU-404/position", json={"latitude": 24.8, "longitude": 67.0}, headers=supervisor
    )
    assert unknown.status_code == 404
    assert "PU-404" in unknown.json()["detail"]
    off_globe = client.post(
        "/api/units/PU-1/position", json={"latitude": 124.8, "longitude": 67.0}, headers=supervisor
    )
    assert off_globe.status_code == 422
    assert (
        client.post(
            "/api/dispatch", json={"unit_id": "PU-1", "alert_id": city}, headers=supervisor
        ).status_code
        == 201
    )
    busy = client.post("/api/dispatch", json={"unit_id": "PU-1", "alert_id": city}, headers=supervisor)
    assert busy.status_code == 409
    assert "en route" in busy.json()["detail"]
    off = client.post("/api/dispatch", json={"unit_id": "PU-4", "alert_id": city}, headers=supervisor)
    assert off.status_code == 409
    assert client.post("/api/dispatch", json={"unit_id": "PU-2"}, headers=supervisor).status_code == 422
    assert (
        client.post(
            "/api/dispatch", json={"unit_id": "PU-2", "alert_id": "nope"}, headers=supervisor
        ).status_code
        == 404
    )
    assert (
        client.post("/api/units/PU-3/status", json={"status": "on_scene"}, headers=supervisor).status_code
        == 409
    )
    assert (
        client.post("/api/units/PU-3/status", json={"status": "napping"}, headers=supervisor).status_code
        == 422
    )
    duplicate = client.post("/api/units", json={"id": "PU-1", "callsign": "again"}, headers=supervisor)
    assert duplicate.status_code == 409
    incidents = client.get("/api/incidents", headers=supervisor).json()
    assert len(incidents) == 1 and [d["unit_id"] for d in incidents[0]["dispatches"]] == ["PU-1"]
    assert client.get("/api/units/PU-2", headers=supervisor).json()["status"] == "available"


def test_an_older_position_fix_never_moves_a_unit_back(ctx: Context, city: str) -> None:
    from datetime import timedelta

    from safecity.core.clock import utcnow

    with ctx.db.session() as session:
        _, moved = service.report_position(session, "PU-1", latitude=24.90, longitude=67.05)
        stale, moved_back = service.report_position(
            session, "PU-1", latitude=24.70, longitude=67.00, at=utcnow() - timedelta(minutes=5)
        )
    assert (moved, moved_back) == (True, False)
    assert (stale.latitude, stale.longitude) == (24.90, 67.05)


def test_two_operators_sending_one_unit_at_once_send_it_once(ctx: Context, city: str) -> None:
    barrier = threading.Barrier(2)
    results: list[str] = []

    def operator(name: str) -> None:
        barrier.wait()
        try:
            with ctx.db.session() as session:
                service.dispatch_unit(session, unit_id="PU-3", actor=name, alert_id=city)
            results.append("sent")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=operator, args=(n,)) for n in ("op-a", "op-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["conflict", "sent"]
    with ctx.db.session() as session:
        incidents = service.list_incidents(session)
        assert len(incidents) == 1
        assert len(service.incident_out(session, incidents[0]).dispatches) == 1


def test_roles_decide_who_sends_units_and_who_reports_positions(
    ctx: Context, city: str, client: TestClient
) -> None:
    auditor = auth_headers(ctx, "auditor")
    operator = auth_headers(ctx, "operator")
    assert client.get("/api/units", headers=auditor).status_code == 200
    assert (
        client.post("/api/dispatch", json={"unit_id": "PU-1", "alert_id": city}, headers=auditor).status_code
        == 403
    )
    assert client.get(f"/api/dispatch/candidates?alert_id={city}", headers=auditor).status_code == 403
    assert (
        client.post(
            "/api/units/PU-1/position", json={"latitude": 24.8, "longitude": 67.0}, headers=operator
        ).status_code
        == 403
    )
    assert (
        client.post("/api/units", json={"id": "PU-9", "callsign": "x"}, headers=operator).status_code == 403
    )
    assert client.get("/api/units").status_code == 401


def test_a_status_change_is_announced_at_its_own_time_and_a_fix_at_the_fix_time(
    ctx: Context, city: str
) -> None:
    from datetime import timedelta

    from safecity.core.clock import as_utc, utcnow

    fix_at = utcnow() - timedelta(hours=3)
    with ctx.db.session() as session:
        unit = service.get_unit(session, "PU-1")
        unit.position_at = fix_at  # its last fix, three hours ago
        assert as_utc(service.unit_event(unit, at=unit.position_at).at) == fix_at
        before = utcnow()
        unit = service.set_unit_status(session, "PU-1", status="off_duty", actor="test")
        changed = service.unit_event(unit)
    # The unit's last fix is three hours old; its change of status happened now.
    assert as_utc(changed.at) >= before and changed.status == "off_duty"
