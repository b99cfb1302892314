"""An alert says all an officer needs: the place by name, the listing, the sightings, the unit sent."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from safecity.accounts.models import Role
from safecity.alerts import service as alerts
from safecity.anpr import service as anpr
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import PlateRead
from safecity.dispatch import service as dispatch
from safecity.faces.models import WatchlistEntry
from tests.conftest import auth_headers

PLACES = {
    "cam-empress": ("Empress Market", "Saddar", 24.8607, 67.0299),
    "cam-teen-talwar": ("Teen Talwar", "Clifton", 24.8340, 67.0330),
}


def city(ctx: Context) -> None:
    with ctx.db.session() as session:
        for camera_id, (name, district, lat, lon) in PLACES.items():
            data = {"id": camera_id, "name": name, "kind": "anpr", "district": district}
            cameras.create(
                session, CameraIn.model_validate({**data, "latitude": lat, "longitude": lon}), actor="t"
            )
        dispatch.create_unit(session, unit_id="PU-1", callsign="Saddar-1", latitude=24.862, longitude=67.031)


def test_a_hot_list_alert_names_the_place_the_listing_the_trail_and_the_unit_sent(
    ctx: Context, client: TestClient
) -> None:
    city(ctx)
    with ctx.db.session() as session:
        anpr.add_hotlist_entry(
            session,
            plate="LEA4521",
            list_name="stolen",
            reason="snatched at gunpoint",
            actor="sgt.rana",
            vehicle="white Corolla",
            reference="FIR 212/2026 PS Clifton",
        )
        now = utcnow()
        reads = [
            PlateRead(
                key=f"r{i}",
                camera_id=camera_id,
                at=now - timedelta(minutes=minutes),
                plate="LEA4521",
                confidence=0.95,
                latitude=PLACES[camera_id][2],
                longitude=PLACES[camera_id][3],
            )
            for i, (camera_id, minutes) in enumerate((("cam-teen-talwar", 40), ("cam-empress", 2)))
        ]
        anpr.process_reads(session, reads)
    with ctx.db.session() as session:
        alert = next(a for a in alerts.list_alerts(session, kind="hotlist") if a.camera_id == "cam-empress")
        dispatch.dispatch_unit(session, unit_id="PU-1", actor="op.khan", alert_id=alert.id)

    headers = auth_headers(ctx, Role.operator)
    context = client.get(f"/api/alerts/{alert.id}/context", headers=headers)
    assert context.status_code == 200, context.text
    body = context.json()
    assert body["headline"] == "Stolen vehicle LEA4521 (white Corolla) at Empress Market, Saddar"
    assert body["place"]["name"] == "Empress Market"
    assert (
        body["listing"]["reference"] == "FIR 212/2026 PS Clifton"
        and body["listing"]["added_by"] == "sgt.rana"
    )
    assert [s["camera_name"] for s in body["trail"]] == ["Teen Talwar", "Empress Market"]
    assert (
        body["first_seen"]["camera_name"] == "Teen Talwar"
        and body["last_seen"]["camera_name"] == "Empress Market"
    )
    [unit] = body["units"]
    assert (
        unit["callsign"] == "Saddar-1"
        and unit["unit_status"] == "en_route"
        and unit["dispatched_by"] == "op.khan"
    )

    assert client.get("/api/alerts/nope/context", headers=headers).status_code == 404
    assert client.get(f"/api/alerts/{alert.id}/context").status_code == 401


def test_a_face_match_alert_names_the_person_and_the_legal_basis(ctx: Context, client: TestClient) -> None:
    city(ctx)
    with ctx.db.session() as session:
        entry = WatchlistEntry(
            id="e1",
            name="Imran Qureshi",
            category="wanted",
            status="active",
            legal_basis="Warrant 77/2026 ATC-II",
            requested_by="insp.ali",
            approved_by="sp.shah",
            case_officer="insp.ali",
            expires_at=utcnow() + timedelta(days=30),
        )
        session.add(entry)
        session.flush()
        alert, _ = alerts.raise_alert(
            session,
            kind="face_match",
            priority=1,
            title="Watch list (wanted): Imran Qureshi on cam-empress, 91%",
            source_key="face-1",
            dedup_key="face:e1:cam-empress",
            camera_id="cam-empress",
            evidence={"entry_id": "e1", "similarity": 0.91, "watchlist_photo_refs": []},
        )
    body = client.get(f"/api/alerts/{alert.id}/context", headers=auth_headers(ctx, Role.operator)).json()
    assert body["headline"] == "Wanted person Imran Qureshi (91% alike) at Empress Market, Saddar"
    assert body["watchlist"]["legal_basis"] == "Warrant 77/2026 ATC-II"
    assert body["watchlist"]["approved_by"] == "sp.shah" and body["trail"] == [] and body["units"] == []


def test_the_live_list_reloads_its_recent_past_filtered_like_the_live_socket(
    ctx: Context, client: TestClient
) -> None:
    city(ctx)
    with ctx.db.session() as session:
        anpr.process_reads(
            session,
            [PlateRead(key="r1", camera_id="cam-empress", at=utcnow(), plate="BKR778", confidence=0.9)],
        )
        dispatch.set_unit_status(session, "PU-1", status="off_duty", actor="op")
    seen = client.get("/api/live/recent", headers=auth_headers(ctx, Role.supervisor)).json()
    kinds = {m["type"] for m in seen}
    assert {"plate_read", "unit"} <= kinds and all(m["channel"] == "event" for m in seen)
    assert [m["at"] for m in seen] == sorted((m["at"] for m in seen), reverse=True)
    read = next(m for m in seen if m["type"] == "plate_read")
    assert read["plate"] == "BKR778" and read["camera_id"] == "cam-empress"
    # An operator may not search plates, a cashier not even see the map: the live socket's rule.
    assert {
        m["type"] for m in client.get("/api/live/recent", headers=auth_headers(ctx, Role.operator)).json()
    } == {"unit"}
    assert client.get("/api/live/recent", headers=auth_headers(ctx, Role.cashier)).json() == []
    assert client.get("/api/live/recent").status_code == 401
