"""The database layer on SQLite and PostgreSQL alike: migrations, idempotency claims, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import inspect

from safecity.cameras.models import Camera
from safecity.core.db import Database, claim_event


def test_migrations_create_the_schema_and_rerun_harmlessly(any_db_url: str) -> None:
    db = Database(any_db_url)
    db.migrate()
    db.migrate()
    tables = set(inspect(db.engine).get_table_names())
    assert {"cameras", "users", "audit_log", "alerts", "handled_events", "alembic_version"} <= tables
    db.dispose()


def test_an_event_key_is_claimed_once_per_consumer(any_db_url: str) -> None:
    db = Database(any_db_url)
    db.migrate()
    with db.session() as session:
        assert claim_event(session, "anpr-store", "read-1") is True
        assert claim_event(session, "anpr-store", "read-1") is False
        assert claim_event(session, "alerts", "read-1") is True
    with db.session() as session:
        assert claim_event(session, "anpr-store", "read-1") is False
    db.dispose()


def test_a_rolled_back_claim_leaves_the_event_unhandled(any_db_url: str) -> None:
    db = Database(any_db_url)
    db.migrate()
    try:
        with db.session() as session:
            claim_event(session, "store", "k")
            raise RuntimeError("handler failed after claiming")
    except RuntimeError:
        pass
    with db.session() as session:
        assert claim_event(session, "store", "k") is True
    db.dispose()


def test_timestamps_come_back_aware_utc(any_db_url: str) -> None:
    db = Database(any_db_url)
    db.migrate()
    moment = datetime(2026, 3, 1, 21, 40, tzinfo=UTC)
    with db.session() as session:
        session.add(
            Camera(
                id="c1",
                name="n",
                kind="fixed",
                district="Saddar",
                latitude=24.86,
                longitude=67.01,
                health_since=moment,
                analysis={},
                zones=[],
                lines=[],
            )
        )
    with db.session() as session:
        cam = session.get(Camera, "c1")
        assert cam is not None and cam.health_since == moment
        assert cam.health_since.tzinfo is not None
    db.dispose()


def test_several_processes_starting_at_once_migrate_an_empty_database_without_failing(pg_url: str) -> None:
    import threading

    from sqlalchemy import inspect

    from safecity.core.db import Database

    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def start_up() -> None:
        db = Database(pg_url)
        try:
            start.wait()
            db.migrate()
        except BaseException as exc:  # what killed a serve at start-up before the lock
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=start_up) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    db = Database(pg_url)
    assert {"plate_reads", "outbox", "dead_letters", "challans"} <= set(inspect(db.engine).get_table_names())
    db.dispose()


def test_insert_many_writes_every_column_type_and_skips_clashes_on_both_databases(any_db_url: str) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import select

    from safecity.anpr.models import PlateReadRow
    from safecity.core.db import Database, insert_many

    db = Database(any_db_url)
    db.migrate()
    at = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    row = {
        "id": "r1", "event_key": "k1", "plate": "LEA4521", "region": "pk", "confidence": 0.91,
        "camera_id": "cam-1", "latitude": 24.86, "longitude": 67.0, "at": at, "crop_ref": None,
        "frame_ref": "f.jpg", "box": [10, 20, 30, 40], "direction": None, "track_id": 7,
        "speed_kmh": None, "vehicle_class": "car", "stored_at": at,
    }  # fmt: skip
    table = PlateReadRow.__table__
    try:
        with db.session() as session:
            first = insert_many(session, table, [row, {**row, "id": "r2", "event_key": "k2", "box": None}],
                                skip_conflicts_on=["event_key"], returning="event_key")  # fmt: skip
            again = insert_many(session, table, [{**row, "id": "r3"}], skip_conflicts_on=["event_key"],
                                returning="event_key")  # fmt: skip
        assert sorted(first) == ["k1", "k2"] and again == []
        with db.session() as session:
            stored = {r.event_key: r for r in session.scalars(select(PlateReadRow))}
        assert stored["k1"].box == [10, 20, 30, 40] and stored["k2"].box is None
        assert stored["k1"].at == at and stored["k1"].track_id == 7 and stored["k1"].confidence == 0.91
    finally:
        db.dispose()
