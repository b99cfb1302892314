"""Uptime arithmetic: spans clipped to days in UTC and in local time, per camera and city-wide."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from safecity.core.context import Context
from safecity.core.db import Database
from safecity.core.errors import InvalidInput
from safecity.maintenance import service
from tests.maintenance.maintenance_support import add_camera, health, publish

DAY0 = datetime(2025, 3, 9, 0, 0, tzinfo=UTC)
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(any_db_url: str) -> Iterator[Database]:
    database = Database(any_db_url)
    database.migrate()
    yield database
    database.dispose()


def report(db: Database, camera_id: str, state: str, since: datetime) -> None:
    key = f"camera_health:{camera_id}:{state}:{since.isoformat()}"
    with db.session() as session:
        service.record_health(
            session, camera_id=camera_id, state=state, detail="", since=since, event_key=key
        )


def outage_across_midnight(db: Database, camera_id: str = "cam-1") -> None:
    """Online from 00:00 UTC on 9 March, offline 23:00 to 01:00 UTC, then online again."""
    report(db, camera_id, "online", DAY0)
    report(db, camera_id, "offline", DAY0 + timedelta(hours=23))
    report(db, camera_id, "online", DAY0 + timedelta(hours=25))


def register(db: Database, *camera_ids: str) -> None:
    from safecity.cameras import service as cameras
    from safecity.cameras.models import CameraIn

    with db.session() as session:
        for camera_id in camera_ids:
            data = CameraIn(
                id=camera_id, name=camera_id, kind="fixed", district="South", latitude=24.8, longitude=67.0
            )
            cameras.create(session, data, actor="test")


def test_uptime_per_utc_day_splits_an_outage_at_midnight(db: Database) -> None:
    register(db, "cam-1")
    outage_across_midnight(db)
    with db.session() as session:
        result = service.uptime_report(session, days=2, tz="UTC", now=NOW)
    [camera] = result.cameras
    first, second = camera.days
    assert (first.day, first.online_s, first.known_s) == (date(2025, 3, 9), 23 * 3600, 24 * 3600)
    assert (second.day, second.online_s, second.known_s) == (date(2025, 3, 10), 11 * 3600, 12 * 3600)
    assert first.uptime == pytest.approx(23 / 24, abs=1e-4)
    assert camera.uptime == pytest.approx(34 / 36, abs=1e-4)


def test_uptime_per_karachi_day_counts_from_local_midnight(db: Database) -> None:
    register(db, "cam-1")
    outage_across_midnight(db)
    with db.session() as session:
        result = service.uptime_report(session, days=3, tz="Asia/Karachi", now=NOW)
    # Karachi is UTC+5: its 10 March began at 19:00 UTC on the 9th, so the whole outage falls in it.
    before, first, second = result.cameras[0].days
    assert (before.day, before.known_s, before.uptime) == (date(2025, 3, 8), 0, None)
    assert (first.day, first.online_s, first.known_s) == (date(2025, 3, 9), 19 * 3600, 19 * 3600)
    assert (second.day, second.online_s, second.known_s) == (date(2025, 3, 10), 15 * 3600, 17 * 3600)
    assert result.start == datetime(2025, 3, 7, 19, 0, tzinfo=UTC)


def test_city_uptime_weighs_every_camera_by_its_watched_time(db: Database) -> None:
    register(db, "cam-1", "cam-2", "cam-3")
    outage_across_midnight(db, "cam-1")
    report(db, "cam-2", "online", DAY0 + timedelta(hours=24))
    report(db, "cam-2", "frozen", DAY0 + timedelta(hours=30))  # frozen for the last 6 of 12 hours
    with db.session() as session:
        result = service.uptime_report(session, days=1, tz="UTC", now=NOW)
    [today] = result.city
    assert today.online_s == 11 * 3600 + 6 * 3600
    assert today.known_s == 24 * 3600  # cam-3 never reported: it is not counted as down
    assert result.uptime == pytest.approx(17 / 24, abs=1e-4)
    never = next(c for c in result.cameras if c.camera_id == "cam-3")
    assert never.uptime is None


def test_an_unknown_time_zone_or_period_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown time zone"):
        service.resolve_timezone("Mars/Olympus")
    with pytest.raises(InvalidInput, match="at least 1"):
        service.day_windows(days=0, tz=service.resolve_timezone("UTC"), now=NOW)


def test_history_and_uptime_api_answer_the_chart_and_refuse_bad_input(
    client: TestClient, ctx: Context, admin: dict[str, str]
) -> None:
    add_camera(ctx, "cam-1")
    now = datetime.now(UTC)
    publish(
        client,
        ctx,
        health("cam-1", "online", now - timedelta(days=2)),
        health("cam-1", "moved", now - timedelta(hours=3), detail="the view shifted 9% to the left"),
    )
    history = client.get("/api/maintenance/cameras/cam-1/history?days=7&tz=UTC", headers=admin)
    assert history.status_code == 200, history.text
    body = history.json()
    assert [s["state"] for s in body["spans"]] == ["online", "moved"]
    assert len(body["days"]) == 7 and body["tz"] == "UTC"
    assert [f["state"] for f in body["faults"]] == ["moved"]
    uptime = client.get("/api/maintenance/uptime?days=3", headers=admin).json()
    assert uptime["tz"] == "Asia/Karachi" and len(uptime["city"]) == 3
    assert 0 < uptime["uptime"] < 1

    for url, status, words in (
        ("/api/maintenance/cameras/nope/history", 404, "camera 'nope' does not exist"),
        ("/api/maintenance/cameras/cam-1/history?days=0", 422, "days"),
        ("/api/maintenance/cameras/cam-1/history?days=400", 422, "days"),
        ("/api/maintenance/uptime?tz=Mars/Olympus", 422, "unknown time zone"),
        ("/api/maintenance/cameras?tz=nowhere", 422, "unknown time zone"),
    ):
        answer = client.get(url, headers=admin)
        assert answer.status_code == status, url
        assert words in answer.json()["detail"], answer.text
    assert client.get("/api/maintenance/uptime").status_code == 401
