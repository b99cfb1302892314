"""Rarely changed tables kept in a process's memory, forgotten the moment any process changes them.

Every batch of plate reads and violations reads the enforcement policy, the challan rules, the ANPR
settings and the court-readiness gate's calibrations and road surveys: a round trip and a validation
each, for rows that change a few times a year. A domain names what it keeps:

    memo.watch(EnforcementPolicySetting, "enforcement.policy")
    policy = memo.remember(session, "enforcement.policy", lambda: load_policy(session))

How it stays right across processes (PostgreSQL, city mode):
- A flush that adds, changes or deletes a row of a watched model, or an ORM `update`/`delete` of
  one, sends `NOTIFY safecity_memo, '<name>'` in the same transaction. PostgreSQL delivers it to every
  listening connection when, and only if, the transaction commits.
- Each `serve` listens on a connection of its own (`Memo.start`). A notice drops the name; the
  writer's own process drops it as soon as its commit returns, before the notice comes back.
- Every name has a generation, moved on by each drop. A value loaded while its name was dropped is
  not kept: a reader that began before a change committed cannot store what it read after the drop.
- While the listening connection is down nothing is kept (every read goes to the database), and
  when it is back everything is dropped: a notice missed meanwhile cannot leave a stale value.

SQLite (the embedded default) keeps nothing: another process on the same file (a CLI command beside
`safecity serve`) would have no way to say it changed something, and one process reads fast anyway.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

import psycopg
from sqlalchemy import event, text
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from safecity.core.db import after_commit, database_of

log = logging.getLogger(__name__)

T = TypeVar("T")

CHANNEL = "safecity_memo"
APPLICATION_NAME = "safecity-memo"  # the listening connection, as pg_stat_activity shows it
_WATCHED: dict[type[Any], str] = {}
_SENT = "memo.sent"  # session.info: names this transaction has announced


def watch(model: type[Any], name: str) -> None:
    """Declares that changes to rows of `model` change what is remembered under `name`."""
    _WATCHED[model] = name


class Memo:
    """One database's remembered values, their generations and the connection that hears changes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._values: dict[str, tuple[tuple[int, int], Any]] = {}
        self._generations: dict[str, int] = {}
        self._epoch = 0  # moved on when everything is dropped at once
        self.listening = False
        self.loads = 0  # values loaded from the database (for tests and metrics)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- reading ---------------------------------------------------------------------------------

    def remember(self, name: str, load: Callable[[], T]) -> T:
        """Returns the value kept under `name`, loading (and keeping) it when there is none."""
        with self._lock:
            kept = None if not self.listening else self._values.get(name)
            generation = (self._epoch, self._generations.get(name, 0))
        if kept is not None and kept[0] == generation:
            return cast(T, kept[1])
        value = load()
        with self._lock:
            self.loads += 1
            # Kept only if nothing was dropped (or lost) while it was loading.
            if self.listening and (self._epoch, self._generations.get(name, 0)) == generation:
                self._values[name] = (generation, value)
        return value

    def holds(self, name: str) -> bool:
        """Whether a value is kept under `name` now."""
        with self._lock:
            return name in self._values

    def drop(self, name: str) -> None:
        """Forgets `name` (it changed)."""
        with self._lock:
            self._generations[name] = self._generations.get(name, 0) + 1
            self._values.pop(name, None)

    def drop_all(self) -> None:
        """Forgets everything."""
        with self._lock:
            self._epoch += 1
            self._values.clear()

    # --- hearing changes -------------------------------------------------------------------------

    def start(self) -> None:
        """Listens for changes on a connection of its own (PostgreSQL); from then on values are kept."""
        if self._thread is not None or not self.url.startswith("postgresql"):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._listen, name="memo-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops listening; nothing is kept any more."""
        self._stop.set()
        with self._lock:
            self.listening = False
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)
        self.drop_all()

    def _conninfo(self) -> str:
        from sqlalchemy.engine import make_url

        url = make_url(self.url).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._conninfo(), autocommit=True, connect_timeout=5, application_name=APPLICATION_NAME
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    # Heard from now on: whatever changed before is dropped once, then kept afresh.
                    with self._lock:
                        self._epoch += 1
                        self._values.clear()
                        self.listening = True
                    while not self._stop.is_set():
                        for notice in conn.notifies(timeout=1.0):
                            self.drop(notice.payload)
                        conn.execute("SELECT 1")  # a dead connection raises here, not silently
            except Exception as exc:  # the database is away: keep nothing until heard again
                log.debug("memo listener on %s lost: %s", self.url, exc)
            with self._lock:
                self.listening = False
                self._epoch += 1
                self._values.clear()
            self._stop.wait(1.0)


def memo_of(session: Session) -> Memo | None:
    """Returns the memo of the database this session came from, if it keeps anything."""
    db = database_of(session)
    return db.memo if db is not None else None


def active(session: Session) -> bool:
    """Whether values are kept for this session's database now (worth loading a whole table once)."""
    memo = memo_of(session)
    return memo is not None and memo.listening


def remember(session: Session, name: str, load: Callable[[], T]) -> T:
    """Returns `load()`, from this process's memory when nothing under `name` changed since.

    A transaction that changed `name` itself reads its own, uncommitted, state: never kept.
    """
    memo = memo_of(session)
    if memo is None or name in session.info.get(_SENT, ()):
        return load()
    return memo.remember(name, load)


# --- announcing changes --------------------------------------------------------------------------


def _announce(session: Session, names: set[str]) -> None:
    sent: set[str] = session.info.setdefault(_SENT, set())
    fresh = names - sent
    if not fresh:
        return
    sent |= fresh
    db = database_of(session)
    if db is not None and not db.is_sqlite:
        for name in sorted(fresh):
            session.connection().execute(
                text("SELECT pg_notify(:channel, :name)"), {"channel": CHANNEL, "name": name}
            )
    memo = memo_of(session)
    if memo is not None:

        def dropped() -> None:
            for name in fresh:
                memo.drop(name)

        after_commit(session, dropped)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _: UOWTransaction) -> None:
    if not _WATCHED:
        return
    names = {
        name
        for instance in (*session.new, *session.dirty, *session.deleted)
        if (name := _WATCHED.get(type(instance))) is not None
    }
    if names:
        _announce(session, names)


@event.listens_for(Session, "do_orm_execute")
def _bulk_change(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete) or state.bind_mapper is None:
        return
    name = _WATCHED.get(state.bind_mapper.class_)
    if name is not None:
        _announce(state.session, {name})


__all__ = ["Memo", "active", "memo_of", "remember", "watch"]
