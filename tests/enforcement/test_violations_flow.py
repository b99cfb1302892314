"""From observation to violation: de-duplication, review, auto-issue, section speed, unregistered, signals."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from safecity.challans import service as challans
from safecity.challans.models import Challan
from safecity.core.context import Context
from safecity.core.events import Event, PlateRead, ViolationCandidate
from safecity.enforcement import service
from safecity.enforcement.models import EnforcementPolicy, SpeedLimit, SpeedSectionIn, Violation
from tests.conftest import auth_headers
from tests.enforcement.court import court_ready, ready_candidate

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
REGISTRY = (
    "plate,owner,cnic,address,make,colour\n"
    "ABC123,Ali Khan,42101-1234567-1,House 1 Clifton Karachi,Toyota Corolla,white\n"
    "KHB777,Sara Ahmed,42201-7654321-2,Flat 4 Gulshan Karachi,Honda CD70,red\n"
)


def publish(ctx: Context, *events: Event) -> None:
    """Publishes events on the running app's bus and waits until every handler has finished."""
    assert ctx.bus.loop is not None
    for event in events:
        ctx.bus.publish_threadsafe(event)
    # Handlers stage follow-up events (approved → challan): settle until every one is handled.
    asyncio.run_coroutine_threadsafe(ctx.settle(), ctx.bus.loop).result(60)


def candidate(
    key: str, *, plate: str | None = "ABC123", at: datetime = T0, confidence: float = 0.99
) -> ViolationCandidate:
    return ViolationCandidate(
        key=key,
        camera_id="cam-1",
        at=at,
        offence="speeding",
        plate=plate,
        confidence=confidence,
        measured=92.0,
        limit=60.0,
        detail={"unit": "km/h", "track_id": 7},
    )


def violations(ctx: Context) -> list[Violation]:
    with ctx.db.session() as session:
        return list(session.scalars(select(Violation).order_by(Violation.created_at)))


def challan_count(ctx: Context) -> int:
    with ctx.db.session() as session:
        return session.scalar(select(func.count()).select_from(Challan)) or 0


def load_registry(ctx: Context) -> None:
    with ctx.db.session() as session:
        assert not challans.import_registry(session, REGISTRY, actor="test").errors


def test_redelivered_violation_issues_one_challan(ctx: Context, client: TestClient) -> None:
    load_registry(ctx)
    calibration = court_ready(ctx, "cam-1", at=T0)
    event = ready_candidate(ctx, "cam-1:speeding:7:1", at=T0, calibration_id=calibration)
    publish(ctx, event, event.model_copy())
    publish(ctx, event)
    rows = violations(ctx)
    assert len(rows) == 1 and rows[0].status == "issued" and rows[0].auto_approved
    assert challan_count(ctx) == 1
    assert ctx.counters["violations"] == 1 and ctx.counters["challans"] == 1


def test_same_vehicle_offence_and_camera_within_the_window_is_one_violation(ctx: Context) -> None:
    with ctx.db.session() as session:
        first, new1 = service.record_candidate(session, candidate("a"))
        same, new2 = service.record_candidate(session, candidate("b", at=T0 + timedelta(seconds=60)))
        later, new3 = service.record_candidate(session, candidate("c", at=T0 + timedelta(minutes=30)))
        assert new1 and not new2 and new3
        assert same.id == first.id and first.occurrences == 2 and later.id != first.id
        service.set_policy(session, EnforcementPolicy(dedup_window_s=3600), actor="test")
        _, new4 = service.record_candidate(session, candidate("d", at=T0 + timedelta(minutes=50)))
        assert not new4


def test_low_confidence_waits_for_an_officer_who_approves_and_a_challan_follows(
    ctx: Context, client: TestClient
) -> None:
    load_registry(ctx)
    calibration = court_ready(ctx, "cam-1", at=T0)
    publish(ctx, ready_candidate(ctx, "low", at=T0, confidence=0.7, calibration_id=calibration))
    (violation,) = violations(ctx)
    assert violation.status == "pending" and challan_count(ctx) == 0
    officer = auth_headers(ctx, "traffic_officer")
    queue = client.get("/api/violations", params={"status": "pending"}, headers=officer).json()
    assert [v["id"] for v in queue] == [violation.id]
    assert queue[0]["evidence"]["clock_source"]
    bad = client.post(f"/api/violations/{violation.id}/review", json={"decision": "reject"}, headers=officer)
    assert bad.status_code == 422 and "reason" in bad.json()["detail"]
    ok = client.post(f"/api/violations/{violation.id}/review", json={"decision": "approve"}, headers=officer)
    assert ok.status_code == 200 and ok.json()["reviewed_by"].startswith("traffic_officer")
    # The officer reads what the server did, not what it hoped to do.
    assert ok.json()["status"] == "issued" and ok.json()["outcome"].startswith("Approved: challan KHI-")
    publish(ctx)
    assert challan_count(ctx) == 1
    again = client.post(
        f"/api/violations/{violation.id}/review", json={"decision": "approve"}, headers=officer
    )
    assert again.status_code == 409


def test_a_rejected_violation_never_becomes_a_challan(ctx: Context, client: TestClient) -> None:
    load_registry(ctx)
    publish(ctx, candidate("doubt", confidence=0.5))
    (violation,) = violations(ctx)
    officer = auth_headers(ctx, "traffic_officer")
    body = {"decision": "reject", "reason": "plate obscured by a bus"}
    assert (
        client.post(f"/api/violations/{violation.id}/review", json=body, headers=officer).status_code == 200
    )
    with ctx.db.session() as session:
        assert challans.issue_pending(session).issued == 0


def test_the_review_queue_is_for_traffic_officers_only(ctx: Context, client: TestClient) -> None:
    assert client.get("/api/violations", headers=auth_headers(ctx, "operator")).status_code == 403
    assert client.get("/api/violations").status_code == 401


def section(ctx: Context) -> None:
    with ctx.db.session() as session:
        service.create_speed_section(
            session,
            SpeedSectionIn(
                id="shahrah-e-faisal-nb",
                name="Shahrah-e-Faisal northbound",
                entry_camera_id="anpr-a",
                exit_camera_id="anpr-b",
                distance_m=2000,
                limit=SpeedLimit(default_kmh=60, by_class={"bus": 50}, tolerance_kmh=5),
            ),
            actor="test",
        )


def read(key: str, camera: str, at: datetime, plate: str = "ABC123", vehicle_class: str = "car") -> PlateRead:
    return PlateRead(
        key=key, camera_id=camera, at=at, plate=plate, confidence=0.97, vehicle_class=vehicle_class
    )


def test_section_speed_between_two_anpr_cameras_is_a_violation_whatever_order_reads_arrive(
    ctx: Context, client: TestClient
) -> None:
    section(ctx)
    load_registry(ctx)
    # 2 km in 80 s is 90 km/h over a 60 km/h limit; the exit read arrives first.
    publish(ctx, read("r2", "anpr-b", T0 + timedelta(seconds=80)), read("r1", "anpr-a", T0))
    # 2 km in 150 s is 48 km/h: no offence.
    publish(
        ctx, read("r3", "anpr-a", T0, "KHB777"), read("r4", "anpr-b", T0 + timedelta(seconds=150), "KHB777")
    )
    (violation,) = violations(ctx)
    assert violation.offence == "section_speeding" and violation.plate == "ABC123"
    assert violation.measured == 90.0 and violation.limit == 60
    assert violation.evidence["section"]["distance_m"] == 2000
    assert violation.evidence["clock_source"]


def test_a_plate_missing_from_the_registry_is_an_unregistered_violation(
    ctx: Context, client: TestClient
) -> None:
    publish(ctx, read("before-registry", "anpr-x", T0, plate="ZZZ999"))
    assert violations(ctx) == []  # no registry imported yet: nothing can be judged unregistered
    load_registry(ctx)
    publish(ctx, read("known", "anpr-x", T0, plate="ABC123"))
    publish(ctx, PlateRead(key="unsure", camera_id="anpr-x", at=T0, plate="QQQ111", confidence=0.5))
    publish(ctx, read("unknown", "anpr-x", T0, plate="ZZZ999"))
    (violation,) = violations(ctx)
    assert (
        violation.offence == "unregistered" and violation.plate == "ZZZ999" and violation.status == "pending"
    )


def test_a_red_light_candidate_the_controller_contradicts_is_held_for_review(
    ctx: Context, client: TestClient
) -> None:
    admin = auth_headers(ctx, "admin")
    posted = client.post(
        "/api/signals/J1/phase", json={"phase": "green", "at": T0.isoformat()}, headers=admin
    )
    assert posted.status_code == 201
    assert client.post("/api/signals/J1/phase", json={"phase": "blue"}, headers=admin).status_code == 422
    event = ViolationCandidate(
        key="rl-1",
        camera_id="cam-j1",
        at=T0 + timedelta(seconds=5),
        offence="red_light",
        plate="ABC123",
        confidence=0.99,
        detail={"junction": "J1", "phase": "red"},
    )
    publish(ctx, event)
    (violation,) = violations(ctx)
    assert violation.status == "pending" and "controller reported green" in violation.hold_reason
    assert violation.evidence["signal"]["controller_phase"] == "green"


def test_sections_refuse_bad_input_with_a_clear_answer(ctx: Context, client: TestClient) -> None:
    admin = auth_headers(ctx, "admin")
    body = {
        "id": "s1",
        "name": "x",
        "entry_camera_id": "a",
        "exit_camera_id": "a",
        "distance_m": 500,
        "limit": {"default_kmh": 60},
    }
    same = client.post("/api/enforcement/sections", json=body, headers=admin)
    assert same.status_code == 422 and "differ" in same.json()["detail"]
    ok = client.post("/api/enforcement/sections", json={**body, "exit_camera_id": "b"}, headers=admin)
    assert ok.status_code == 201
    assert (
        client.post(
            "/api/enforcement/sections", json={**body, "exit_camera_id": "b"}, headers=admin
        ).status_code
        == 409
    )


def test_a_batch_folds_its_own_repeats_of_one_offence_as_one_at_a_time_would(ctx: Context) -> None:
    batch = [
        candidate("a", at=T0),
        candidate("b", at=T0 + timedelta(seconds=20)),  # the same car, speeding in front of the same camera
        candidate("c", plate="KHB777", at=T0),
        candidate("a", at=T0),  # the first again: the same fact
    ]
    with ctx.db.session() as session:
        results = service.record_candidates(session, batch)
    assert [new for _, new in results] == [True, False, True, False]
    assert results[0][0] is results[1][0] is results[3][0]
    assert results[0][0].occurrences == 2 and results[0][0].detail["folded"] == ["b"]
    assert len(violations(ctx)) == 2
