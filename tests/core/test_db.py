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
