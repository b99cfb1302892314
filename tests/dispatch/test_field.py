"""The officer's phone: a shift on a unit, the dispatch it receives, updates sent late, twice, in order."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from safecity.audit import service as audit
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.dispatch import service
from tests.conftest import auth_headers

SADDAR = (24.8607, 67.0299)


def _on_shift(ctx: Context, client: TestClient, name: str, unit_id: str) -> dict[str, str]:
    headers = auth_headers(ctx, "patrol_officer", name)
    signed = client.post("/api/field/shift", json={"unit_id": unit_id}, headers=headers)
    assert signed.status_code == 200, signed.text
    return headers


def _sent(ctx: Context, client: TestClient, alert_id: str, unit_id: str = "PU-2") -> str:
    operator = auth_headers(ctx, "operator")
    sent = client.post("/api/dispatch", json={"unit_id": unit_id, "alert_id": alert_id}, headers=operator)
    assert sent.status_code == 201, sent.text
    return str(sent.json()["incident_id"])


def _update(key: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"key": key, "kind": kind, "at": fields.pop("at", utcnow()).isoformat(), **fields}


def _live_status(client: TestClient, headers: dict[str, str], unit_id: str, status: str) -> bool:
    """Waits (briefly) until the live list's newest event of the unit says `status`."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        recent = client.get("/api/live/recent", headers=headers).json()
        if any(
            m.get("type") == "unit" and m.get("unit_id") == unit_id and m.get("status") == status
            for m in recent
        ):
            return True
        time.sleep(0.1)
    return False


def test_an_officer_signs_in_to_one_unit_and_nobody_else_can_take_it(
    ctx: Context, client: TestClient, alert_id: str
) -> None:
    rana = _on_shift(ctx, client, "pc.rana", "PU-2")
    again = client.post("/api/field/shift", json={"unit_id": "PU-2"}, headers=rana)
    assert again.status_code == 200  # a phone that retries the sign-in gets the same shift
    khan = auth_headers(ctx, "patrol_officer", "pc.khan")
    taken = client.post("/api/field/shift", json={"unit_id": "PU-2"}, headers=khan)
    assert taken.status_code == 409 and "pc.rana" in taken.json()["detail"]
    elsewhere = client.post("/api/field/shift", json={"unit_id": "PU-1"}, headers=rana)
    assert elsewhere.status_code == 409 and "PU-2" in elsewhere.json()["detail"]
    units = {u["id"]: u["taken"] for u in client.get("/api/field/units", headers=khan).json()}
    assert units == {"PU-1": False, "PU-2": True}
    assert client.post("/api/field/shift/end", headers=rana).json()["ended_at"] is not None
    assert client.post("/api/field/shift", json={"unit_id": "PU-2"}, headers=khan).status_code == 200
    with ctx.db.session() as session:
        started = [(e.actor, e.target) for e in audit.entries(session, action="unit.shift.start")]
        ended = [(e.actor, e.target) for e in audit.entries(session, action="unit.shift.end")]
    assert sorted(started) == [("pc.khan", "PU-2"), ("pc.rana", "PU-2")] and ended == [("pc.rana", "PU-2")]


def test_the_officer_receives_the_dispatch_with_photo_place_and_route(
    ctx: Context, client: TestClient, alert_id: str
) -> None:
    rana = _on_shift(ctx, client, "pc.rana", "PU-2")
    khan = _on_shift(ctx, client, "pc.khan", "PU-1")
    idle = client.get("/api/field/assignment", headers=rana)
    assert idle.json()["incident"] is None and idle.json()["callsign"] == "Lyari-2"
    # Where the unit was last known: the map's "you" before the phone has a fix of its own.
    where = idle.json()["position"]
    assert (where["latitude"], where["longitude"]) == (24.8720, 67.0120) and where["at"] is not None
    incident_id = _sent(ctx, client, alert_id)
    got = client.get("/api/field/assignment", headers=rana)
    incident = got.json()["incident"]
    assert incident["id"] == incident_id and incident["title"] == "Wanted man on a motorcycle"
    assert incident["place"] == "Empress Market, Saddar"
    assert incident["navigate"] == f"geo:{SADDAR[0]:.6f},{SADDAR[1]:.6f}?q={SADDAR[0]:.6f},{SADDAR[1]:.6f}"
    assert 1500 < incident["distance_m"] < 2500 and incident["eta_s"] > 0
    # No road file: the route is the straight line from the unit, and says why.
    assert incident["route"] == {
        "points": [[24.8720, 67.0120], list(SADDAR)],
        "distance_m": incident["distance_m"],
        "eta_s": incident["eta_s"],
        "source": "straight",
        "note": "Straight line: no road file is set (SAFECITY_ROAD_GRAPH).",
    }
    unchanged = client.get("/api/field/assignment", headers={**rana, "If-None-Match": got.headers["ETag"]})
    assert unchanged.status_code == 304 and unchanged.content == b""
    [photo] = incident["photos"]
    assert client.get(f"/media/{photo}", headers=rana).status_code == 200
    assert client.get(f"/media/{photo}", headers=khan).status_code == 403  # not their unit's incident
    assert client.get("/api/field/assignment", headers=khan).json()["incident"] is None


def test_arrival_and_suspect_confirmed_close_the_incident_and_the_alert_as_dispatch_does(
    ctx: Context, client: TestClient, alert_id: str
) -> None:
    rana = _on_shift(ctx, client, "pc.rana", "PU-2")
    incident_id = _sent(ctx, client, alert_id)
    supervisor = auth_headers(ctx, "supervisor")
    arrived_at = utcnow() - timedelta(seconds=1)
    arrived = client.post(
        "/api/field/updates",
        json={"updates": [_update("key-arrived-1", "arrived", incident_id=incident_id, at=arrived_at)]},
        headers=rana,
    )
    assert arrived.json()["results"][0]["status"] == "applied", arrived.text
    assert _live_status(client, supervisor, "PU-2", "on_scene")  # the command centre sees it live
    note = "stopped at the signal"
    update = _update(
        "key-outcome-1", "outcome", incident_id=incident_id, outcome="suspect_confirmed", note=note
    )
    closed = client.post("/api/field/updates", json={"updates": [update]}, headers=rana)
    assert closed.json()["results"][0] == {
        "key": "key-outcome-1",
        "status": "applied",
        "detail": "incident closed: suspect confirmed",
    }
    assert _live_status(client, supervisor, "PU-2", "available")
    incident = client.get(f"/api/incidents/{incident_id}", headers=supervisor).json()
    assert (incident["status"], incident["outcome"]) == ("closed", "arrest")
    assert incident["dispatches"][0]["arrived_at"] is not None
    assert any(
        "suspect confirmed: stopped at the signal" in n["text"] and n["actor"] == "pc.rana"
        for n in incident["notes"]
    )
    history = client.get(f"/api/alerts/{alert_id}/history", headers=supervisor).json()
    assert [h["to_status"] for h in history] == ["acknowledged", "confirmed", "closed"]
    assert client.get("/api/units/PU-2", headers=supervisor).json()["status"] == "available"
    assert client.get("/api/field/assignment", headers=rana).json()["incident"] is None


def test_updates_queued_offline_are_applied_in_order_exactly_once(
    ctx: Context, client: TestClient, alert_id: str
) -> None:
    rana = _on_shift(ctx, client, "pc.rana", "PU-2")
    incident_id = _sent(ctx, client, alert_id)
    # The phone went offline just after the dispatch reached it, and came back with four updates queued.
    start = utcnow()
    time.sleep(0.5)
    first = _update("key-pos-1", "position", latitude=24.865, longitude=67.020, at=start)
    arrived = _update("key-arr-1", "arrived", incident_id=incident_id, at=start + timedelta(seconds=0.1))
    second = _update(
        "key-pos-2", "position", latitude=24.8608, longitude=67.0298, at=start + timedelta(seconds=0.1)
    )
    outcome = _update(
        "key-out-1",
        "outcome",
        incident_id=incident_id,
        outcome="not_found",
        at=start + timedelta(seconds=0.2),
    )
    # The first send's answer was lost on the way back; the phone sends its whole queue again, longer now.
    assert client.post("/api/field/updates", json={"updates": [first, arrived]}, headers=rana).is_success
    replay = client.post(
        "/api/field/updates", json={"updates": [first, arrived, second, outcome]}, headers=rana
    )
    assert [r["status"] for r in replay.json()["results"]] == ["ignored", "duplicate", "applied", "applied"]
    again = client.post(
        "/api/field/updates", json={"updates": [first, arrived, second, outcome]}, headers=rana
    )
    assert [r["status"] for r in again.json()["results"]] == ["ignored", "duplicate", "ignored", "duplicate"]
    with ctx.db.session() as session:
        unit = service.get_unit(session, "PU-2")
        incident = service.get_incident(session, incident_id)
        dispatched = service.incident_out(session, incident).dispatches[0]
        closes = audit.entries(session, action="incident.close")
        statuses = [e.detail["status"] for e in audit.entries(session, action="unit.status")]
    assert (unit.latitude, unit.longitude) == (24.8608, 67.0298)
    assert incident.outcome == "not_found" and len(closes) == 1 and statuses == ["on_scene"]
    # Arrival is when it happened on the phone, not when the connection came back.
    assert dispatched.arrived_at == start + timedelta(seconds=0.1)


def test_an_officer_cannot_act_for_another_unit(ctx: Context, client: TestClient, alert_id: str) -> None:
    incident_id = _sent(ctx, client, alert_id, "PU-2")
    khan = _on_shift(ctx, client, "pc.khan", "PU-1")
    tried = client.post(
        "/api/field/updates",
        json={
            "updates": [
                _update("key-khan-arr", "arrived", incident_id=incident_id),
                _update("key-khan-out", "outcome", incident_id=incident_id, outcome="false_alarm"),
            ]
        },
        headers=khan,
    )
    results = tried.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected"]
    assert "Clifton-1 is not on incident" in results[0]["detail"]
    assert (
        client.post(
            "/api/units/PU-2/position", json={"latitude": 24.8, "longitude": 67.0}, headers=khan
        ).status_code
        == 403
    )
    assert client.post("/api/units/PU-2/status", json={"status": "on_scene"}, headers=khan).status_code == 403
    nobody = auth_headers(ctx, "patrol_officer", "pc.nobody")
    off_shift = client.post(
        "/api/field/updates",
        json={"updates": [_update("key-nobody-1", "arrived", incident_id=incident_id)]},
        headers=nobody,
    )
    assert off_shift.json()["results"][0]["status"] == "rejected"
    with ctx.db.session() as session:
        assert service.get_incident(session, incident_id).status == "open"
        assert service.get_unit(session, "PU-2").status == "en_route"


def test_the_console_sees_who_is_on_each_unit_and_a_supervisor_can_end_a_shift(
    ctx: Context, client: TestClient, alert_id: str
) -> None:
    rana = _on_shift(ctx, client, "pc.rana", "PU-2")
    operator = auth_headers(ctx, "operator")
    units = {u["id"]: u for u in client.get("/api/units", headers=operator).json()}
    assert units["PU-2"]["officer"] == "pc.rana" and units["PU-2"]["officer_since"]
    assert units["PU-1"]["officer"] is None
    assert client.get("/api/units/PU-2", headers=operator).json()["officer"] == "pc.rana"
    # The phone was lost: an operator may not end the shift, a supervisor may (with a reason).
    body = {"reason": "phone reported lost"}
    assert client.post("/api/units/PU-2/shift/end", json=body, headers=operator).status_code == 403
    supervisor = auth_headers(ctx, "supervisor", "insp.sana")
    short = client.post("/api/units/PU-2/shift/end", json={"reason": "x"}, headers=supervisor)
    assert short.status_code == 422
    ended = client.post("/api/units/PU-2/shift/end", json=body, headers=supervisor)
    assert ended.status_code == 200 and ended.json()["officer"] is None
    again = client.post("/api/units/PU-2/shift/end", json=body, headers=supervisor)
    assert again.status_code == 404 and "no officer is signed in" in again.json()["detail"]
    # The officer's phone is told it is no longer on the unit (and may sign in again).
    assert client.get("/api/field/assignment", headers=rana).json()["shift"] is None
    assert client.post("/api/field/shift", json={"unit_id": "PU-2"}, headers=rana).status_code == 200
    with ctx.db.session() as session:
        (override,) = [e for e in audit.entries(session, action="unit.shift.end") if e.detail.get("override")]
    assert (override.actor, override.detail["officer"], override.detail["reason"]) == (
        "insp.sana",
        "pc.rana",
        "phone reported lost",
    )


def test_old_update_keys_are_pruned_and_recent_ones_still_protect(
    ctx: Context, client: TestClient, alert_id: str
) -> None:
    from safecity.dispatch.consumer import prune_field_keys
    from safecity.dispatch.field.models import FieldUpdate

    rana = _on_shift(ctx, client, "pc.rana", "PU-2")
    incident_id = _sent(ctx, client, alert_id)
    arrived = _update("key-arr-old", "arrived", incident_id=incident_id)
    assert client.post("/api/field/updates", json={"updates": [arrived]}, headers=rana).is_success
    assert prune_field_keys(ctx) == 0  # a fresh key stays: a resent queue is still applied once
    replay = client.post("/api/field/updates", json={"updates": [arrived]}, headers=rana)
    assert replay.json()["results"][0]["status"] == "duplicate"
    with ctx.db.session() as session:
        row = session.get(FieldUpdate, ("pc.rana", "key-arr-old"))
        assert row is not None
        row.received_at = utcnow() - timedelta(days=ctx.settings.field_update_keys_days + 1)
    assert prune_field_keys(ctx) == 1
    with ctx.db.session() as session:
        assert session.get(FieldUpdate, ("pc.rana", "key-arr-old")) is None
