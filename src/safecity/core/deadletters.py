"""Dead letters: the events a consumer gave up on, with the reason, counted and replayable.

The bus hands a poison event here (one that failed on its own several times, could not be decoded
or came in an unknown version) and acknowledges it only once this row is committed, so the stream
is never blocked and nothing is lost. The table is the same on both buses, so `safecity bus
dead-letters list|replay` works the same embedded and at city scale. A replay publishes the
original message again through the outbox, with a new message id, to the subject it came on; the
consumers that had already handled it ignore it by its key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from safecity.core.bus import DeadLetter, DeadLetterSink
from safecity.core.clock import utcnow
from safecity.core.db import Base, Database
from safecity.core.errors import InvalidInput
from safecity.core.outbox import stage_raw


class DeadLetterRow(Base):
    """One event one consumer gave up on; the same event failing again counts up its row."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    consumer: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(100))
    event_type: Mapped[str | None] = mapped_column(String(64))
    # The event's key, or a digest of the raw message when it has none: one row per failing thing.
    fingerprint: Mapped[str] = mapped_column(String(200))
    key: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    deliveries: Mapped[int] = mapped_column(default=1)
    times: Mapped[int] = mapped_column(default=1)
    first_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    replayed_at: Mapped[datetime | None]
    replayed_by: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (
        # One waiting row per consumer and event: a replayed row no longer counts, so the event may fail anew.
        Index(
            "uq_dead_letters_waiting",
            "consumer",
            "fingerprint",
            unique=True,
            sqlite_where=text("replayed_at IS NULL"),
            postgresql_where=text("replayed_at IS NULL"),
        ),
    )


def _fingerprint(letter: DeadLetter) -> str:
    if letter.key:
        return f"{letter.event_type}:{letter.key}"[:200]
    return "raw:" + hashlib.sha256(letter.data.encode()).hexdigest()


def sink(db: Database) -> DeadLetterSink:
    """Returns the bus's dead-letter sink writing to `db` (one row per consumer and event)."""

    def store(letter: DeadLetter) -> None:
        with db.session() as session:
            record(session, letter)

    return store


def record(session: Session, letter: DeadLetter) -> None:
    """Stores a dead letter; the same event dead-lettered again by the same consumer counts up its row."""
    postgres = session.get_bind().dialect.name == "postgresql"
    now = utcnow()
    values = {
        "consumer": letter.consumer[:64],
        "subject": letter.subject[:100],
        "event_type": (letter.event_type or None) and letter.event_type[:64],
        "fingerprint": _fingerprint(letter),
        "key": letter.key[:200] if letter.key else None,
        "data": letter.data,
        "error": letter.error,
        "deliveries": letter.deliveries,
        "times": 1,
        "first_at": now,
        "last_at": now,
    }
    stmt = (pg_insert if postgres else sqlite_insert)(DeadLetterRow).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[DeadLetterRow.consumer, DeadLetterRow.fingerprint],
        index_where=text("replayed_at IS NULL"),
        set_={
            "times": DeadLetterRow.times + 1,
            "last_at": now,
            "error": stmt.excluded.error,
            "deliveries": stmt.excluded.deliveries,
        },
    )
    session.execute(stmt)


def list_letters(
    session: Session, *, consumer: str | None = None, include_replayed: bool = False, limit: int = 100
) -> Sequence[DeadLetterRow]:
    """Returns dead letters, newest first."""
    stmt = select(DeadLetterRow).order_by(DeadLetterRow.last_at.desc(), DeadLetterRow.id.desc()).limit(limit)
    if consumer:
        stmt = stmt.where(DeadLetterRow.consumer == consumer)
    if not include_replayed:
        stmt = stmt.where(DeadLetterRow.replayed_at.is_(None))
    return session.scalars(stmt).all()


def counts(session: Session) -> dict[str, int]:
    """Returns how many dead letters wait for a decision, per consumer."""
    rows = session.execute(
        select(DeadLetterRow.consumer, func.count())
        .where(DeadLetterRow.replayed_at.is_(None))
        .group_by(DeadLetterRow.consumer)
    )
    return {consumer: n for consumer, n in rows}


def replay(
    session: Session, *, actor: str, ids: Sequence[int] = (), consumer: str | None = None, every: bool = False
) -> list[int]:
    """Publishes dead letters again (after the cause is fixed); returns the ids replayed.

    Name the letters by id, by consumer, or all of them; each is replayed once (a second replay
    needs it to fail again first).
    """
    if not ids and not consumer and not every:
        raise InvalidInput("say which dead letters to replay", hint="give ids, --consumer NAME or --all")
    stmt = select(DeadLetterRow).where(DeadLetterRow.replayed_at.is_(None)).with_for_update()
    if ids:
        stmt = stmt.where(DeadLetterRow.id.in_(list(ids)))
    if consumer:
        stmt = stmt.where(DeadLetterRow.consumer == consumer)
    rows = list(session.scalars(stmt.order_by(DeadLetterRow.id)))
    if ids:
        missing = sorted(set(ids) - {r.id for r in rows})
        if missing:
            raise InvalidInput(
                f"no dead letter waiting with id {', '.join(map(str, missing))}",
                hint="see `safecity bus dead-letters list` (replayed letters are listed with --all)",
            )
    now = utcnow()
    for row in rows:
        # A new message id: the original one may still be inside the stream's duplicate window.
        stage_raw(session, subject=row.subject, data=row.data, msg_id=f"replay:{row.id}:{now.timestamp()}")
    if rows:
        session.execute(
            update(DeadLetterRow)
            .where(DeadLetterRow.id.in_([r.id for r in rows]))
            .values(replayed_at=now, replayed_by=actor[:100])
        )
    return [r.id for r in rows]
