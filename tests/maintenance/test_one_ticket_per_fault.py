"""One open ticket per fault: the database holds the rule, and the refusal names the ticket that is open."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from safecity.accounts.models import Role
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.context import Context
from safecity.core.db import Database, alembic_config
from safecity.maintenance import service
from safecity.maintenance.models import Ticket, TicketAction, TicketIn
from tests.conftest import auth_headers
from tests.maintenance.maintenance_support import T0, add_camera, health, publish

API = "/api/maintenance/tickets"


def test_a_second_ticket_for_a_fault_is_refused_naming_and_linking_the_open_one(
    client: TestClient, ctx: Context
) -> None:
    add_camera(ctx, "cam-1")
    publish(client, ctx, health("cam-1", "covered", T0, detail="lens covered"))
    supervisor = auth_headers(ctx, Role.supervisor, "sup.khan")
    [fault] = client.get("/api/maintenance/faults?open=true", headers=supervisor).json()
    assert fault["open_ticket_id"] is None

    first = client.post(
        API, json={"fault_id": fault["id"], "description": "clear the lens"}, headers=supervisor
    )
    assert first.status_code == 201, first.text
    ticket_id = first.json()["id"]
    again = client.post(
        API, json={"fault_id": fault["id"], "description": "clear it again"}, headers=supervisor
    )

    assert again.status_code == 409
    body = again.json()
    assert body["detail"] == f"already open: ticket {ticket_id} for fault {fault['id']}"
    assert (body["ticket_id"], body["ticket_url"]) == (ticket_id, f"/maintenance?ticket={ticket_id}")
    assert "instead of opening another" in body["hint"]
    assert [t["id"] for t in client.get(f"{API}?open=true", headers=supervisor).json()] == [ticket_id]
    [listed] = client.get("/api/maintenance/faults?open=true", headers=supervisor).json()
    assert listed["open_ticket_id"] == ticket_id

    # Assigned is still open; closed frees the fault for a new ticket.
    client.post(f"{API}/{ticket_id}/assign", json={"assignee": "sup.khan"}, headers=supervisor)
    assert (
        client.post(API, json={"fault_id": fault["id"], "description": "x"}, headers=supervisor).status_code
        == 409
    )
    client.post(f"{API}/{ticket_id}/close", json={"note": "cloth removed"}, headers=supervisor)
    reopened = client.post(
        API, json={"fault_id": fault["id"], "description": "covered again"}, headers=supervisor
    )
    assert reopened.status_code == 201, reopened.text


@pytest.fixture
def db(any_db_url: str) -> Iterator[Database]:
    database = Database(any_db_url)
    database.migrate()
    yield database
    database.dispose()


def fault_on(db: Database, camera_id: str = "cam-1") -> str:
    with db.session() as session:
        camera = CameraIn(
            id=camera_id, name="Gate", kind="fixed", district="East", latitude=24.9, longitude=67.1
        )
        cameras.create(session, camera, actor="test")
        outcome = service.record_health(
            session, camera_id=camera_id, state="offline", detail="", since=T0, event_key=f"k-{camera_id}"
        )
        assert outcome.opened is not None
        return outcome.opened.id


def test_the_database_refuses_a_second_open_ticket_for_a_fault_whoever_writes_it(db: Database) -> None:
    fault_id = fault_on(db)
    row = {"camera_id": "cam-1", "fault_id": fault_id, "description": "x", "opened_by": "sql", "version": 1}
    with db.session() as session:
        session.add(Ticket(id="t-closed", status="closed", **row))
        session.add(Ticket(id="t-open", status="open", **row))
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(Ticket(id="t-second", status="assigned", **row))
        session.flush()
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 2


def test_two_people_pressing_open_ticket_at_once_open_one(db: Database) -> None:
    fault_id = fault_on(db)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def press(who: str) -> None:
        start.wait()
        try:
            with db.session() as session:
                service.open_ticket(session, TicketIn(fault_id=fault_id, description=f"by {who}"), actor=who)
            outcomes.append("opened")
        except service.TicketAlreadyOpen as exc:
            outcomes.append(f"refused:{exc.ticket_id}")

    threads = [threading.Thread(target=press, args=(who,)) for who in ("sup.khan", "sup.ali")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with db.session() as session:
        [ticket] = session.scalars(select(Ticket)).all()
    assert sorted(outcomes) == ["opened", f"refused:{ticket.id}"]


def test_the_migration_closes_duplicates_opened_before_the_rule_keeping_the_oldest(db: Database) -> None:
    fault_id = fault_on(db)
    config = alembic_config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001_maintenance")
    with db.session() as session:
        for n, opened in enumerate((3, 1, 2)):
            session.add(
                Ticket(
                    id=f"t-{n}",
                    camera_id="cam-1",
                    fault_id=fault_id,
                    description="the button pressed again",
                    status="open",
                    opened_by="sup.khan",
                    opened_at=datetime(2025, 3, 10, opened, tzinfo=UTC),
                    version=1,
                )
            )
    db.migrate()
    with db.session() as session:
        tickets = {t.id: t for t in session.scalars(select(Ticket))}
        assert {i: t.status for i, t in tickets.items()} == {"t-0": "closed", "t-1": "open", "t-2": "closed"}
        assert tickets["t-0"].close_note == "closed as a duplicate of ticket t-1: one open ticket per fault"
        steps = session.scalars(select(TicketAction).where(TicketAction.ticket_id == "t-2")).all()
        assert [(s.actor, s.action, s.detail) for s in steps] == [
            ("system", "close", {"duplicate_of": "t-1"})
        ]
        index = "uq_maintenance_tickets_open_fault"
        if db.is_sqlite:
            assert session.scalar(text(f"SELECT count(*) FROM sqlite_master WHERE name = '{index}'")) == 1
        else:
            assert session.scalar(text(f"SELECT count(*) FROM pg_indexes WHERE indexname = '{index}'")) == 1
