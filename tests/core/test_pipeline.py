"""The pipeline's own machinery: claims, the outbox, dead letters and their replay, the job lease."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from safecity.core import deadletters, outbox
from safecity.core.bus import DeadLetter
from safecity.core.bus.memory import MemoryBus
from safecity.core.clock import utcnow
from safecity.core.consumers import consume_each
from safecity.core.context import Context
from safecity.core.db import Database, HandledEvent, after_commit, claim_events, purge_handled
from safecity.core.events import Event, PlateRead
from safecity.core.jobs import Jobs
from safecity.core.outbox import OutboxRow
from safecity.settings import Settings


def plate(key: str) -> PlateRead:
    return PlateRead(key=key, camera_id="cam-1", plate="LEA4521", confidence=0.9)


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


@pytest.fixture
def db(any_db_url: str) -> Database:
    database = Database(any_db_url)
    database.migrate()
    yield database  # type: ignore[misc]
    database.dispose()


def test_a_batch_claims_each_key_once_even_when_it_repeats(db: Database) -> None:
    with db.session() as session:
        assert claim_events(session, "anpr", ["a", "b", "a"]) == {"a", "b"}
    with db.session() as session:
        assert claim_events(session, "anpr", ["a", "c"]) == {"c"}
        assert claim_events(session, "enforcement", ["a"]) == {"a"}


def test_two_processes_claiming_the_same_keys_at_once_split_them(db: Database) -> None:
    keys = [f"k{i}" for i in range(300)]
    won: list[set[str]] = []
    start = threading.Barrier(2)

    def claim() -> None:
        start.wait()
        for _ in range(20):
            try:
                with db.session() as session:
                    won.append(claim_events(session, "anpr", keys))
                return
            except Exception:  # SQLite: the other writer holds the lock; try again like the bus would
                time.sleep(0.05)

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 2
    assert won[0] | won[1] == set(keys) and not won[0] & won[1]


def test_handled_keys_are_forgotten_by_age(db: Database) -> None:
    with db.session() as session:
        claim_events(session, "anpr", ["old", "new"])
        session.query(HandledEvent).filter_by(key="old").update({"handled_at": utcnow() - timedelta(days=9)})
    with db.session() as session:
        assert purge_handled(session, older_than=timedelta(days=8)) == 1
        assert claim_events(session, "anpr", ["old", "new"]) == {"old"}


async def test_a_staged_event_is_published_after_commit_and_never_after_rollback(ctx: Context) -> None:
    seen: list[str] = []
    await ctx.bus.start()
    await ctx.outbox.start()
    await ctx.bus.subscribe(["plate_read"], lambda e: seen.append(e.key))

    def rolled_back() -> None:
        with ctx.db.session() as session:
            outbox.stage(session, plate("never"))
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await asyncio.to_thread(rolled_back)

    def committed() -> None:
        with ctx.db.session() as session:
            outbox.stage(session, plate("once"))

    await asyncio.to_thread(committed)
    await until(lambda: seen == ["once"], timeout=5)

    def pending() -> int:
        with ctx.db.session() as session:
            return outbox.pending(session)

    async with asyncio.timeout(5):  # published, then deleted from the outbox in its own transaction
        while await asyncio.to_thread(pending):
            await asyncio.sleep(0.02)
    await ctx.outbox.stop()
    await ctx.bus.close()
    assert seen == ["once"]


class FlakyBus(MemoryBus):
    """The in-process bus, with an outage switch: while down, publishing fails as on a dead NATS."""

    down = True

    async def publish_raw(self, subject: str, data: bytes, *, msg_id: str | None = None) -> None:
        if self.down:
            raise ConnectionRefusedError("nats: no servers available for connection")
        await super().publish_raw(subject, data, msg_id=msg_id)


async def test_staged_events_wait_in_the_outbox_while_the_bus_is_down(settings: Settings) -> None:
    bus = FlakyBus()
    ctx = Context(settings=settings, db=Database(settings.resolved_database_url), bus=bus, media=None)  # type: ignore[arg-type]
    ctx.db.migrate()
    seen: list[str] = []
    await bus.start()
    await bus.subscribe(["plate_read"], lambda e: seen.append(e.key))
    await ctx.outbox.start()

    def commit(key: str) -> None:
        with ctx.db.session() as session:
            outbox.stage(session, plate(key))

    for key in ("a", "b", "c"):
        await asyncio.to_thread(commit, key)
    await asyncio.sleep(0.5)

    def pending() -> int:
        with ctx.db.session() as session:
            return outbox.pending(session)

    assert await asyncio.to_thread(pending) == 3 and seen == []
    bus.down = False
    await until(lambda: sorted(seen) == ["a", "b", "c"], timeout=20)
    await ctx.outbox.stop()
    await bus.close()
    ctx.db.dispose()


def letter(key: str | None, error: str = "ValueError: no such camera") -> DeadLetter:
    return DeadLetter(
        consumer="anpr-reads",
        subject="safecity.plate_read",
        event_type="plate_read",
        key=key,
        data=plate(key or "x").model_dump_json(),
        error=error,
        deliveries=1,
    )


def test_a_dead_letter_is_stored_once_per_event_and_counted(db: Database) -> None:
    store = deadletters.sink(db)
    store(letter("k1"))
    store(letter("k1", "ValueError: still no such camera"))
    store(letter("k2"))
    with db.session() as session:
        rows = deadletters.list_letters(session)
        assert deadletters.counts(session) == {"anpr-reads": 2}
    by_key = {r.key: r for r in rows}
    assert by_key["k1"].times == 2 and "still" in by_key["k1"].error


def test_replaying_a_dead_letter_publishes_it_again_with_a_new_message_id(db: Database) -> None:
    deadletters.sink(db)(letter("k1"))
    with db.session() as session:
        [row] = deadletters.list_letters(session)
        assert deadletters.replay(session, actor="ops", ids=[row.id]) == [row.id]
    with db.session() as session:
        [staged] = session.scalars(select(OutboxRow)).all()
        assert staged.subject == "safecity.plate_read" and staged.msg_id.startswith(f"replay:{row.id}:")
        assert deadletters.list_letters(session) == []
        assert deadletters.replay(session, actor="ops", every=True) == []
        # Once replayed, the same event may fail again and gets a fresh row.
    deadletters.sink(db)(letter("k1"))
    with db.session() as session:
        assert deadletters.counts(session) == {"anpr-reads": 1}


async def test_a_poison_event_reaches_the_dead_letters_table_and_its_replay_is_handled(
    ctx: Context, tmp_path: Path
) -> None:
    fixed = threading.Event()
    handled: list[str] = []

    def handler(session: Session, event: Event) -> None:
        if event.key == "poison" and not fixed.is_set():
            raise ValueError("camera cam-9 is not registered")
        key = event.key
        after_commit(session, lambda: handled.append(key))  # what a rolled-back batch did never counts

    ctx.bus.retry_base = 0.01
    await ctx.bus.start()
    await ctx.outbox.start()
    await consume_each(ctx, "test-reads", ["plate_read"], handler)
    await ctx.bus.publish_many([plate("ok-1"), plate("poison"), plate("ok-2")])
    await ctx.settle()
    assert sorted(handled) == ["ok-1", "ok-2"]
    with ctx.db.session() as session:
        [row] = deadletters.list_letters(session)
    assert row.consumer == "test-reads" and "cam-9 is not registered" in row.error

    fixed.set()
    with ctx.db.session() as session:
        deadletters.replay(session, actor="ops", consumer="test-reads")
    await ctx.settle()
    assert sorted(handled) == ["ok-1", "ok-2", "poison"]
    await ctx.outbox.stop()
    await ctx.bus.close()


def test_the_cli_lists_and_replays_dead_letters(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from safecity.cli import app

    monkeypatch.setenv("SAFECITY_DATA_DIR", str(settings.data_dir))
    ctx = Context.create(settings)
    deadletters.sink(ctx.db)(letter("k1"))
    runner = CliRunner()
    listed = runner.invoke(app, ["bus", "dead-letters", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert '"key": "k1"' in listed.output
    refused = runner.invoke(app, ["bus", "dead-letters", "replay", "--reason", "camera registered"])
    assert refused.exit_code == 1 and "say which dead letters" in refused.output
    replayed = runner.invoke(app, ["bus", "dead-letters", "replay", "--all", "--reason", "camera registered"])
    assert replayed.exit_code == 0 and "replaying 1 event" in replayed.output
    status = runner.invoke(app, ["bus", "status", "--json"])
    assert status.exit_code == 0 and '"outbox_pending": 1' in status.output
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxRow)) == 1
    ctx.db.dispose()


async def test_one_process_runs_the_leased_jobs_and_another_takes_over_when_it_dies(db: Database) -> None:
    runs: dict[str, list[str]] = {"leased": [], "everywhere": []}
    processes = [Jobs(db, lease_s=1.5, tick_s=0.05) for _ in range(2)]
    for jobs in processes:
        holder = jobs.holder
        jobs.every("purge", 0.1, lambda h=holder: runs["leased"].append(h))
        jobs.every("send", 0.1, lambda h=holder: runs["everywhere"].append(h), leased=False)
        await jobs.start()
    await until(lambda: len(runs["leased"]) >= 5)
    assert len(set(runs["leased"])) == 1
    assert {p.holder for p in processes} == set(runs["everywhere"])
    leader = next(p for p in processes if p.leader)
    other = next(p for p in processes if p is not leader)
    # The leader dies without handing the lease back: the other takes over once the lease expires.
    assert leader._task is not None
    leader._task.cancel()
    died = time.monotonic()
    await until(lambda: runs["leased"][-1] == other.holder, timeout=10)
    assert time.monotonic() - died < 3 * leader.lease_s
    await other.stop()
    leader.leader = False
    await leader.stop()


async def test_a_failing_job_is_tried_again_and_never_stops_the_schedule(db: Database) -> None:
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise RuntimeError("disk full")

    jobs = Jobs(db, lease_s=2, tick_s=0.05)
    jobs.every("broken", 0.05, broken, at_start=True)
    await jobs.start()
    await until(lambda: len(calls) >= 3)
    assert jobs.jobs["broken"].failures >= 3
    await jobs.stop()


def test_the_pipeline_page_data_is_for_those_who_watch_the_system(client, ctx: Context) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import auth_headers

    deadletters.sink(ctx.db)(letter("k1"))
    assert client.get("/api/system/pipeline", headers=auth_headers(ctx, "auditor")).status_code == 403
    answer = client.get("/api/system/pipeline", headers=auth_headers(ctx, "supervisor"))
    assert answer.status_code == 200
    state = answer.json()
    assert {"anpr-reads", "enforcement-plates", "challans-issue"} <= set(state["consumers"])
    assert state["dead_letters"] == {"anpr-reads": 1} and state["dead_letters_total"] == 1
    assert state["cluster"]["unassigned"] == [] and "lease_moves" in state["cluster"]
