"""Plate reads arriving on the bus: stored once, checked against hot lists, areas and cloned plates."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from safecity.alerts import service as alerts
from safecity.anpr import areas, consumer, service
from safecity.anpr.models import AreaIn, AreaVisit, PlateReadRow
from safecity.audit import service as audit
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.bus.memory import MemoryBus
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import AlertChanged, Event, PlateRead

# Clifton and Saddar, Karachi: about 5.5 km apart.
CLIFTON = (24.8138, 67.0300)
SADDAR = (24.8607, 67.0011)
CLIFTON_NEAR = (24.8140, 67.0302)


def add_camera(ctx: Context, camera_id: str, where: tuple[float, float]) -> None:
    with ctx.db.session() as session:
        cameras.create(
            session,
            CameraIn(
                id=camera_id,
                name=f"ANPR {camera_id}",
                kind="anpr",
                district="South",
                latitude=where[0],
                longitude=where[1],
            ),
            actor="test",
        )


def read(
    plate: str,
    camera_id: str,
    *,
    key: str | None = None,
    at: datetime | None = None,
    confidence: float = 0.95,
    direction: str | None = None,
) -> PlateRead:
    moment = at or utcnow()
    return PlateRead(
        key=key or f"{camera_id}:{plate}:{moment.timestamp()}",
        camera_id=camera_id,
        at=moment,
        plate=plate,
        confidence=confidence,
        crop_ref="sha256:" + "a" * 64 + ".jpg",
        frame_ref="sha256:" + "b" * 64 + ".jpg",
        box=[10, 20, 120, 40],
        direction=direction,
    )


def publish(client: TestClient, ctx: Context, *events: Event) -> None:
    assert client.portal is not None
    for event in events:
        client.portal.call(ctx.bus.publish, event)
    assert isinstance(ctx.bus, MemoryBus)
    client.portal.call(ctx.settle)  # handled, and what the handlers announced published too


def stored(ctx: Context) -> list[PlateReadRow]:
    with ctx.db.session() as session:
        return list(session.scalars(select(PlateReadRow).order_by(PlateReadRow.at)))


def test_every_read_is_stored_with_camera_time_crop_confidence_and_position(
    client: TestClient, ctx: Context
) -> None:
    add_camera(ctx, "cam-clifton", CLIFTON)
    event = read("lea-4521", "cam-clifton", confidence=0.91)
    publish(client, ctx, event)
    [row] = stored(ctx)
    assert (row.plate, row.camera_id, row.confidence, row.crop_ref) == (
        "LEA4521",
        "cam-clifton",
        0.91,
        event.crop_ref,
    )
    assert (row.latitude, row.longitude, row.at) == (*CLIFTON, event.at)
    assert ctx.counters["plate_reads"] == 1


def test_a_redelivered_read_is_stored_once_and_alerts_once(client: TestClient, ctx: Context) -> None:
    add_camera(ctx, "cam-clifton", CLIFTON)
    with ctx.db.session() as session:
        service.add_hotlist_entry(
            session, plate="LEA4521", list_name="stolen", reason="FIR 1/24", actor="sgt"
        )
    event = read("LEA4521", "cam-clifton", key="cam-clifton:track-7")
    publish(client, ctx, event, event, event)
    assert len(stored(ctx)) == 1
    with ctx.db.session() as session:
        [alert] = alerts.list_alerts(session, kind="hotlist")
        assert alert.occurrences == 1
    assert ctx.counters["hotlist_hits"] == 1


def test_a_stolen_vehicle_raises_a_priority_one_alert_with_crop_entry_and_camera(
    client: TestClient, ctx: Context
) -> None:
    add_camera(ctx, "cam-clifton", CLIFTON)
    with ctx.db.session() as session:
        entry = service.add_hotlist_entry(
            session,
            plate="LEA4521",
            list_name="stolen",
            reason="FIR 1/24",
            actor="sgt",
            vehicle="white Corolla",
        )
    seen: list[AlertChanged] = []

    async def watch(event: Event) -> None:
        assert isinstance(event, AlertChanged)
        seen.append(event)

    assert client.portal is not None
    client.portal.call(ctx.bus.subscribe, ["alert"], watch)
    event = read("LEA452I", "cam-clifton")  # misread: I for 1
    publish(client, ctx, event)
    with ctx.db.session() as session:
        [alert] = alerts.list_alerts(session, kind="hotlist")
    assert (alert.priority, alert.camera_id) == (1, "cam-clifton")
    assert alert.evidence["crop_ref"] == event.crop_ref
    assert alert.evidence["entry"]["id"] == entry.id
    assert alert.evidence["entry"]["vehicle"] == "white Corolla"
    assert (alert.evidence["lat"], alert.evidence["lon"]) == CLIFTON
    assert alert.detail["match"] == "confusion"
    assert [e.alert_id for e in seen] == [alert.id]


def test_a_bolo_vehicle_alerts_at_priority_two_and_an_unlisted_one_not_at_all(
    client: TestClient, ctx: Context
) -> None:
    add_camera(ctx, "cam-clifton", CLIFTON)
    with ctx.db.session() as session:
        service.add_hotlist_entry(
            session, plate="KHI777", list_name="bolo", reason="seen near port", actor="sgt"
        )
    publish(client, ctx, read("KHI777", "cam-clifton"), read("ABC123", "cam-clifton"))
    with ctx.db.session() as session:
        [alert] = alerts.list_alerts(session)
    assert (alert.kind, alert.priority) == ("hotlist", 2)


def test_a_listed_vehicle_staying_in_view_folds_into_one_alert(client: TestClient, ctx: Context) -> None:
    add_camera(ctx, "cam-clifton", CLIFTON)
    add_camera(ctx, "cam-saddar", SADDAR)
    with ctx.db.session() as session:
        service.add_hotlist_entry(session, plate="LEA4521", list_name="wanted", reason="suspect", actor="sgt")
    now = utcnow()
    publish(
        client,
        ctx,
        read("LEA4521", "cam-clifton", at=now),
        read("LEA4521", "cam-clifton", at=now + timedelta(seconds=20)),
        read("LEA4521", "cam-saddar", at=now + timedelta(minutes=30)),
    )
    with ctx.db.session() as session:
        rows = alerts.list_alerts(session, kind="hotlist")
    assert sorted((a.camera_id, a.occurrences) for a in rows) == [("cam-clifton", 2), ("cam-saddar", 1)]


def test_a_low_confidence_read_is_stored_but_raises_no_hotlist_alert(
    client: TestClient, ctx: Context
) -> None:
    add_camera(ctx, "cam-clifton", CLIFTON)
    with ctx.db.session() as session:
        service.add_hotlist_entry(
            session, plate="LEA4521", list_name="stolen", reason="FIR 1/24", actor="sgt"
        )
    publish(client, ctx, read("LEA4521", "cam-clifton", confidence=0.2))
    assert len(stored(ctx)) == 1
    with ctx.db.session() as session:
        assert alerts.list_alerts(session) == []


def test_one_plate_too_far_apart_for_the_time_between_is_a_cloned_plate(
    client: TestClient, ctx: Context
) -> None:
    add_camera(ctx, "cam-clifton", CLIFTON)
    add_camera(ctx, "cam-saddar", SADDAR)
    now = utcnow()
    first = read("BKR8090", "cam-clifton", at=now)
    second = read("BKR8090", "cam-saddar", at=now + timedelta(minutes=1))  # 5.5 km in a minute: 330 km/h
    publish(client, ctx, first, second)
    with ctx.db.session() as session:
        [alert] = alerts.list_alerts(session, kind="cloned_plate")
    assert alert.priority == 2
    assert [r["camera_id"] for r in alert.evidence["reads"]] == ["cam-clifton", "cam-saddar"]
    assert alert.detail["speed_kmh"] > 150
    assert 5000 < alert.detail["distance_m"] < 6500


def test_a_plausible_journey_or_nearby_cameras_raise_no_cloned_plate_alert(
    client: TestClient, ctx: Context
) -> None:
    add_camera(ctx, "cam-clifton", CLIFTON)
    add_camera(ctx, "cam-clifton-2", CLIFTON_NEAR)
    add_camera(ctx, "cam-saddar", SADDAR)
    now = utcnow()
    publish(
        client,
        ctx,
        read("BKR8090", "cam-clifton", at=now),
        read("BKR8090", "cam-saddar", at=now + timedelta(minutes=10)),  # 33 km/h
        read("BKR8090", "cam-clifton-2", at=now + timedelta(seconds=1)),  # 30 m away: GPS noise
    )
    with ctx.db.session() as session:
        assert alerts.list_alerts(session, kind="cloned_plate") == []


def test_reads_arriving_out_of_order_still_reveal_a_cloned_plate(client: TestClient, ctx: Context) -> None:
    add_camera(ctx, "cam-clifton", CLIFTON)
    add_camera(ctx, "cam-saddar", SADDAR)
    now = utcnow()
    publish(
        client,
        ctx,
        read("BKR8090", "cam-saddar", at=now),
        read("BKR8090", "cam-clifton", at=now - timedelta(seconds=30)),
    )
    with ctx.db.session() as session:
        assert len(alerts.list_alerts(session, kind="cloned_plate")) == 1


def make_area(ctx: Context, **rules: object) -> str:
    data = AreaIn.model_validate(
        {"name": "Red Zone", "camera_ids": ["cam-gate-in"], "exit_camera_ids": ["cam-gate-out"], **rules}
    )
    with ctx.db.session() as session:
        return areas.create_area(session, data, actor="sup").id


def visits(ctx: Context) -> list[AreaVisit]:
    with ctx.db.session() as session:
        return list(session.scalars(select(AreaVisit).order_by(AreaVisit.last_seen_at)))


def test_a_listed_vehicle_entering_and_leaving_a_sensitive_area_is_logged_and_alerted(
    client: TestClient, ctx: Context
) -> None:
    add_camera(ctx, "cam-gate-in", CLIFTON)
    add_camera(ctx, "cam-gate-out", CLIFTON_NEAR)
    make_area(ctx, alert_on_exit=True, plates=["VIP001"])
    with ctx.db.session() as session:
        service.add_hotlist_entry(session, plate="LEA4521", list_name="wanted", reason="suspect", actor="sgt")
    now = utcnow()
    publish(
        client,
        ctx,
        read("LEA4521", "cam-gate-in", at=now),
        read("ABC123", "cam-gate-in", at=now),  # not listed: not logged in 'listed' mode
        read("LEA4521", "cam-gate-out", at=now + timedelta(minutes=5)),
        read("VIP001", "cam-gate-in", at=now + timedelta(minutes=6)),
    )
    logged = visits(ctx)
    assert [(v.plate, v.exit_reason) for v in logged] == [("LEA4521", "exit_camera"), ("VIP001", None)]
    assert logged[0].entered_at == now and logged[0].exited_at == now + timedelta(minutes=5)
    assert logged[0].lists == ["wanted"] and logged[1].lists == ["area"]
    with ctx.db.session() as session:
        titles = sorted(a.title for a in alerts.list_alerts(session, kind="sensitive_area"))
    assert titles == [
        "LEA4521 (wanted) entered Red Zone",
        "LEA4521 (wanted) left Red Zone",
        "VIP001 (area) entered Red Zone",
    ]


def test_an_area_in_all_mode_logs_every_vehicle_and_closes_visits_gone_quiet(
    client: TestClient, ctx: Context
) -> None:
    add_camera(ctx, "cam-gate-in", CLIFTON)
    add_camera(ctx, "cam-gate-out", CLIFTON_NEAR)
    make_area(ctx, mode="all", exit_after_minutes=10)
    long_ago = utcnow() - timedelta(minutes=30)
    publish(client, ctx, read("ABC123", "cam-gate-in", at=long_ago), read("XYZ789", "cam-gate-in"))
    assert {v.plate for v in visits(ctx)} == {"ABC123", "XYZ789"}
    assert consumer.sweep_once(ctx) == 0  # exits are logged; unlisted vehicles raise no alert
    closed = {v.plate: v for v in visits(ctx)}
    assert closed["ABC123"].exit_reason == "not_seen" and closed["ABC123"].exited_at == long_ago
    assert closed["XYZ789"].exited_at is None
    with ctx.db.session() as session:
        assert alerts.list_alerts(session) == []


def test_a_vehicle_back_after_its_exit_time_opens_a_new_visit(client: TestClient, ctx: Context) -> None:
    add_camera(ctx, "cam-gate-in", CLIFTON)
    add_camera(ctx, "cam-gate-out", CLIFTON_NEAR)
    make_area(ctx, mode="all", exit_after_minutes=10)
    now = utcnow()
    publish(
        client,
        ctx,
        read("ABC123", "cam-gate-in", at=now - timedelta(hours=1)),
        read("ABC123", "cam-gate-in", at=now),
    )
    assert [(v.exit_reason, v.entered_at) for v in visits(ctx)] == [
        ("not_seen", now - timedelta(hours=1)),
        (None, now),
    ]


def test_reads_past_the_retention_period_are_purged_counted_and_audited(
    client: TestClient, ctx: Context
) -> None:
    add_camera(ctx, "cam-clifton", CLIFTON)
    now = utcnow()
    publish(
        client,
        ctx,
        read("OLD111", "cam-clifton", at=now - timedelta(days=91)),
        read("NEW222", "cam-clifton", at=now),
    )
    assert consumer.purge_once(ctx) == 1
    assert [r.plate for r in stored(ctx)] == ["NEW222"]
    assert ctx.counters["plate_reads_purged"] == 1
    with ctx.db.session() as session:
        [entry] = audit.entries(session, action="anpr.purge")
        assert entry.detail["reads"] == 1
    assert consumer.purge_once(ctx) == 0


def test_a_read_without_a_plate_is_dropped_and_the_next_one_still_stored(
    client: TestClient, ctx: Context
) -> None:
    add_camera(ctx, "cam-clifton", CLIFTON)
    publish(
        client,
        ctx,
        read(" - ", "cam-clifton"),
        read("", "cam-clifton", key="empty"),
        read("ab c-12", "cam-clifton"),
    )
    assert [r.plate for r in stored(ctx)] == ["ABC12"]
    assert ctx.counters["plate_reads"] == 1


def test_a_read_from_an_unregistered_camera_is_stored_without_a_position(
    client: TestClient, ctx: Context
) -> None:
    publish(client, ctx, read("LEA4521", "cam-unknown"))
    [row] = stored(ctx)
    assert (row.camera_id, row.latitude) == ("cam-unknown", None)
