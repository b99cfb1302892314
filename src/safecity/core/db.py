"""The database: SQLAlchemy 2 on SQLite (WAL, embedded) or PostgreSQL (city scale), Alembic migrations.

Nothing outside this module knows which database it runs on. Domains declare tables on `Base`, open
sessions with `Database.session()`, and make bus handlers idempotent with `claim_event`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, MetaData, String, Table, create_engine, delete, event, insert, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from safecity.core.clock import as_utc, utcnow
from safecity.core.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

# A fixed 64-bit key: "scmigrat" as bytes. Only schema migrations take it.
MIGRATION_LOCK = int.from_bytes(b"scmigrat", "big") - 2**63

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

#: The largest value a 64-bit integer column holds (and SQLite accepts as a parameter at all).
MAX_BIGINT = 2**63 - 1
#: The largest value a plain integer column (and so every numeric id) holds on PostgreSQL.
MAX_INT = 2**31 - 1

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


class Base(DeclarativeBase):
    """Declarative base of every SafeCity table."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime}


class HandledEvent(Base):
    """Which consumer has acted on which event key: the record that makes handlers idempotent."""

    __tablename__ = "handled_events"

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    handled_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


ModelT = TypeVar("ModelT", bound=Base)


def _refuse_nul(
    connection: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    """Refuses text holding a NUL (0x00) before it is sent: PostgreSQL cannot store one, and SQLite
    must not store what PostgreSQL would refuse (the same request answers alike on both)."""
    for row in parameters if executemany else (parameters or (),):
        # SQLite's "insert many values" sends one flat parameter tuple under executemany.
        values = row.values() if isinstance(row, dict) else row if isinstance(row, list | tuple) else (row,)
        for value in values:
            if type(value) is str and "\x00" in value:
                raise InvalidInput(
                    "a text value holds a NUL character (0x00), which cannot be stored",
                    hint="remove control characters from the text",
                )


class Database:
    """An engine, a session factory and the migrations, for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=10, max_overflow=20
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            self.engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        event.listen(self.engine, "before_cursor_execute", _refuse_nul)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Set by the running outbox relay: called after a transaction that staged events commits.
        self.outbox_wakeup: Callable[[], None] | None = None
        self._migrate_lock = threading.Lock()
        from safecity.core.memo import Memo  # memo hooks into sessions made here

        # Rarely changed tables kept in memory while `memo.start()` hears their changes (serve).
        self.memo = Memo(url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Yields a session that commits on success and rolls back on any error.

        Callbacks registered with `after_commit(session, fn)` run once the commit has succeeded.
        """
        session = self._sessions()
        session.info["db"] = self
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            callbacks = session.info.pop(_AFTER_COMMIT, []) if session.info.get(_COMMITTED) else []
            session.close()
        for callback in callbacks:
            try:
                callback()
            except Exception:  # the transaction is committed; a failed follow-up must not undo the caller
                log.exception("after-commit callback %r failed", callback)

    def migrate(self) -> None:
        """Brings the schema to the newest revision of every domain's migration branch.

        Any number of processes may start at once: on PostgreSQL they take turns under an advisory
        lock held for the migration's transaction, and each after the first finds nothing to do.
        """
        with self._migrate_lock, self.engine.begin() as connection:
            if not self.is_sqlite:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "heads")

    def dispose(self) -> None:
        """Stops listening for changes and closes every pooled connection."""
        self.memo.stop()
        self.engine.dispose()


def alembic_config() -> Config:
    """Returns the Alembic configuration for SafeCity's migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    return config


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, issue BEGIN, so savepoints and rollbacks behave.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets the live pages read while consumers write; NORMAL sync is safe under WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock up front: two writers never deadlock upgrading a read lock.
    # The price: one open transaction at a time, so code never nests a second session inside one.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


_AFTER_COMMIT = "safecity.after_commit"
_COMMITTED = "safecity.committed"


@event.listens_for(Session, "after_commit")
def _mark_committed(session: Session) -> None:
    session.info[_COMMITTED] = True


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Runs `callback` after the session opened by `Database.session()` commits (never on rollback)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def database_of(session: Session) -> Database | None:
    """Returns the `Database` whose `session()` opened this session, if any."""
    db = session.info.get("db")
    return db if isinstance(db, Database) else None


def insert_many(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    skip_conflicts_on: Sequence[str] = (),
    returning: str | None = None,
) -> list[Any]:
    """Inserts many rows in one statement, skipping those that clash on `skip_conflicts_on`.

    Returns the `returning` column of the rows inserted. On PostgreSQL the rows travel as one array
    per column (`INSERT … SELECT * FROM unnest(…)`): a short statement, prepared once, whatever the
    batch size, where a multi-row VALUES list costs the driver a new query string every batch. On
    SQLite, one cached INSERT with many parameter sets. Every column's own bind processing applies
    (UTC timestamps, JSON).
    """
    if not rows:
        return []
    columns = list(rows[0])
    if session.get_bind().dialect.name != "postgresql":
        stmt: Any = sqlite_insert(table)
        if skip_conflicts_on:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(skip_conflicts_on))
        if returning is None:
            session.execute(stmt, list(rows))
            return []
        return list(session.execute(stmt.returning(table.c[returning]), list(rows)).scalars())
    dialect = session.get_bind().dialect
    params: dict[str, list[Any]] = {}
    casts = []
    for name in columns:
        column = table.c[name]
        process = column.type.bind_processor(dialect)
        values = [row[name] for row in rows]
        params[name] = [process(v) for v in values] if process else values
        sql_type = column.type.compile(dialect=dialect)
        # JSON goes as its text: the driver's JSON wrapper has no array form.
        if sql_type in ("JSON", "JSONB"):
            params[name] = [None if v is None else _json_text(v) for v in params[name]]
        casts.append(f"CAST(:{name} AS {sql_type}[])")
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({', '.join(casts)})"
    if skip_conflicts_on:
        sql += f" ON CONFLICT ({', '.join(skip_conflicts_on)}) DO NOTHING"
    if returning is None:
        session.execute(text(sql), params)
        return []
    return list(session.execute(text(sql + f" RETURNING {returning}"), params).scalars())


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    wrapped = getattr(value, "obj", value)  # psycopg's Json wrapper keeps the object as .obj
    return json.dumps(wrapped)


def claim_events(session: Session, consumer: str, keys: Sequence[str]) -> set[str]:
    """Records that `consumer` handles the events `keys`; returns the keys it had not handled before.

    One statement for the whole batch (INSERT … ON CONFLICT DO NOTHING RETURNING), in the caller's
    transaction: the claims commit or roll back with the effects, so a redelivered event changes
    nothing, and two processes racing for one key are decided by the primary key, not by a read.
    """
    unique = list(dict.fromkeys(keys))
    if not unique:
        return set()
    now = utcnow()
    rows = [{"consumer": consumer, "key": key, "handled_at": now} for key in unique]
    table = HandledEvent.__table__
    assert isinstance(table, Table)
    return set(insert_many(session, table, rows, skip_conflicts_on=["consumer", "key"], returning="key"))


def purge_handled(session: Session, *, older_than: timedelta) -> int:
    """Forgets handled event keys older than `older_than`; returns how many."""
    result = session.execute(delete(HandledEvent).where(HandledEvent.handled_at < utcnow() - older_than))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def claim_event(session: Session, consumer: str, key: str) -> bool:
    """Records that `consumer` handles the event `key`; returns False if it already did.

    Call it in the same transaction as the handler's changes, so the claim and the effect commit or
    roll back together: a redelivered event then changes nothing.
    """
    try:
        with session.begin_nested():
            session.execute(insert(HandledEvent).values(consumer=consumer, key=key, handled_at=utcnow()))
    except IntegrityError:
        return False
    return True


def get_or_raise(session: Session, model: type[ModelT], ident: Any, *, what: str | None = None) -> ModelT:
    """Returns the row of `model` with primary key `ident`, or raises NotFound naming it."""
    row = session.get(model, ident)
    if row is None:
        name = what or model.__name__.lower()
        raise NotFound(f"{name} {ident!r} does not exist", hint=f"check the {name} id")
    return row


def get_by(session: Session, model: type[ModelT], **criteria: Any) -> ModelT | None:
    """Returns the one row of `model` matching `criteria`, or None."""
    return session.scalars(select(model).filter_by(**criteria).limit(1)).first()
