"""Settings kept in a process's memory are forgotten the moment any process changes them (PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from safecity.challans import service as challans
from safecity.challans.models import ChallanRules
from safecity.core import memo
from safecity.core.db import Database
from safecity.enforcement import service as enforcement
from safecity.enforcement.models import EnforcementPolicy


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.02)


@pytest.fixture
def serve_db(pg_url: str) -> Iterator[Database]:
    """The database as one serve sees it, listening for changes."""
    db = Database(pg_url)
    db.migrate()
    db.memo.start()
    eventually(lambda: db.memo.listening)
    yield db
    db.memo.stop()
    db.engine.dispose()


@pytest.fixture
def other_db(serve_db: Database, pg_url: str) -> Iterator[Database]:
    """The same database as another process sees it (its own engine, not listening)."""
    db = Database(pg_url)
    yield db
    db.engine.dispose()


def policy_in(db: Database) -> EnforcementPolicy:
    with db.session() as session:
        return enforcement.get_policy(session)


def set_confidence(db: Database, value: float) -> None:
    with db.session() as session:
        policy = enforcement.get_policy(session)
        policy.auto_issue_confidence = value
        enforcement.set_policy(session, policy, actor="test")


def test_a_setting_is_read_once_and_then_kept(serve_db: Database) -> None:
    before = serve_db.memo.loads
    first = policy_in(serve_db)
    for _ in range(5):
        assert policy_in(serve_db) == first
    assert serve_db.memo.loads == before + 1


def test_a_change_committed_by_another_process_is_seen_at_once(
    serve_db: Database, other_db: Database
) -> None:
    assert policy_in(serve_db).auto_issue_confidence != 0.77
    set_confidence(other_db, 0.77)
    eventually(lambda: policy_in(serve_db).auto_issue_confidence == 0.77)


def test_a_change_in_the_same_process_is_seen_by_the_next_transaction(serve_db: Database) -> None:
    policy_in(serve_db)
    set_confidence(serve_db, 0.66)
    assert policy_in(serve_db).auto_issue_confidence == 0.66  # no wait for the notice


def test_a_rolled_back_change_is_never_kept_nor_announced(serve_db: Database) -> None:
    kept = policy_in(serve_db).auto_issue_confidence
    with pytest.raises(RuntimeError), serve_db.session() as session:
        policy = enforcement.get_policy(session)
        policy.auto_issue_confidence = 0.55
        enforcement.set_policy(session, policy, actor="test")
        session.flush()
        # The transaction reads its own change, which must not become what everyone else reads.
        assert enforcement.get_policy(session).auto_issue_confidence == 0.55
        raise RuntimeError("roll back")
    assert policy_in(serve_db).auto_issue_confidence == kept


def test_changing_a_kept_value_in_the_caller_does_not_change_what_is_kept(serve_db: Database) -> None:
    with serve_db.session() as session:
        rules = challans.get_rules(session)
        rules.currency = "XX"
    with serve_db.session() as session:
        assert challans.get_rules(session).currency == ChallanRules().currency


def test_a_value_loaded_while_its_name_was_dropped_is_not_kept(serve_db: Database) -> None:
    keeper = serve_db.memo

    def load_during_a_change() -> int:
        keeper.drop("race")  # a change committed (and heard) while this load was reading
        return 1

    assert keeper.remember("race", load_during_a_change) == 1
    loads = keeper.loads
    assert keeper.remember("race", lambda: 2) == 2  # loaded again: the first was not kept
    assert keeper.loads == loads + 1


def test_nothing_is_kept_while_nobody_listens(pg_url: str) -> None:
    db = Database(pg_url)
    db.migrate()
    try:
        for _ in range(3):
            policy_in(db)
        with db.session() as session:
            assert not memo.active(session)
        loads = db.memo.loads
        policy_in(db)
        assert db.memo.loads == loads + 1
    finally:
        db.engine.dispose()


def test_a_lost_listening_connection_forgets_everything_and_keeps_nothing_until_back(
    serve_db: Database,
) -> None:
    from sqlalchemy import text

    policy_in(serve_db)
    loads = serve_db.memo.loads
    with serve_db.engine.connect() as connection:  # the listener's backend dies (as in a failover)
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = :name"
            ),
            {"name": memo.APPLICATION_NAME},
        )
    eventually(lambda: not serve_db.memo.listening, timeout=5)
    policy_in(serve_db)
    assert serve_db.memo.loads == loads + 1  # not from memory
    eventually(lambda: serve_db.memo.listening)
