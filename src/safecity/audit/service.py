"""Writing and verifying the audit log: a chain of keyed hashes, anchored by signed checkpoints.

Each row's hash is an HMAC-SHA256, under a key kept outside the database, of its own fields and the
previous row's hash: someone who can write to the database can change or delete rows but cannot
compute the hashes that would hide it. Checkpoints, signed with the same key and appended to a file
away from the database, say how far the log reached, so deleting its newest rows, or all of them,
shows as well. `verify` walks the chain and names the first row, checkpoint or key that does not fit.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from safecity.audit.anchor import Anchor, for_session
from safecity.audit.checkpoints import Checkpoint
from safecity.audit.keys import AuditKey, Keyring
from safecity.audit.models import AuditEntry, AuditHead, VerifyReport
from safecity.core.clock import format_moment, utcnow
from safecity.core.db import Database, after_commit
from safecity.core.errors import SafeCityError

GENESIS = "0" * 64
ROW = b"safecity-audit-row"
# A fixed 64-bit advisory lock key: "scaudit1" as bytes. Every appender takes its turn under it.
APPEND_LOCK = 7243001
MAX_PROBLEMS = 50


class AuditTampered(SafeCityError):
    """The log does not verify, so no checkpoint may vouch for it."""

    status_code = 409


def _body(
    prev_hash: str, seq: int, at: datetime, actor: str, action: str, target: str, detail: Any, *extra: str
) -> bytes:
    return json.dumps(
        [prev_hash, seq, at.isoformat(timespec="microseconds"), actor, action, target, detail, *extra],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    ).encode()


def _legacy_digest(row: AuditEntry) -> str:
    """The plain SHA-256 of rows written before the chain was keyed (anyone could recompute it)."""
    body = _body(row.prev_hash, row.seq, row.at, row.actor, row.action, row.target, row.detail)
    return hashlib.sha256(body).hexdigest()


def _mac(
    key: AuditKey, prev_hash: str, seq: int, at: datetime, actor: str, action: str, target: str, detail: Any
) -> str:
    return key.sign(ROW, _body(prev_hash, seq, at, actor, action, target, detail, key.id))


def _take_turn(session: Session) -> AuditHead | None:
    """Waits for this transaction's turn to append and returns the head, locked."""
    if session.get_bind().dialect.name == "postgresql":
        # One writer at a time keeps the chain linear across every server process.
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK})
    return session.get(AuditHead, 1, with_for_update=True)


def record(
    session: Session, *, actor: str, action: str, target: str = "", detail: dict[str, Any] | None = None
) -> AuditEntry:
    """Appends an entry to the audit log in the caller's transaction."""
    anchor = for_session(session)
    head = _take_turn(session)
    # Only now, holding the turn: a rotation replaced the key file before it took its turn.
    anchor.keyring.refresh()
    key = anchor.keyring.current
    prev_seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS)
    at = utcnow()
    clean = json.loads(json.dumps(detail or {}, default=str))
    seq = prev_seq + 1
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        target=target,
        detail=clean,
        prev_hash=prev_hash,
        hash=_mac(key, prev_hash, seq, at, actor, action, target, clean),
        key_id=key.id,
    )
    session.add(entry)
    if head is None or head.key_id is None:
        # The first keyed row of this log (a new one, or one written before keys): once it is
        # committed, a checkpoint says so, and deleting every row after it can no longer pass.
        before = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.seq <= prev_seq)
        )
        rows, first_hash = int(before or 0) + 1, entry.hash

        def anchor_first_row() -> None:
            anchor.checkpoints.append(
                anchor.keyring,
                at=at,
                rows=rows,
                last_seq=seq,
                last_hash=first_hash,
                legacy_until=prev_seq,
                first=True,
            )

        after_commit(session, anchor_first_row)
    if head is None:
        session.add(AuditHead(id=1, seq=seq, hash=entry.hash, key_id=key.id))
    else:
        head.seq, head.hash, head.key_id = seq, entry.hash, key.id
    session.flush()
    return entry


VIEWING_EVERY_S = 600.0
_viewing: dict[tuple[str, str, str], float] = {}


def record_viewing(
    session: Session, *, actor: str, action: str, target: str, every_s: float = VIEWING_EVERY_S
) -> AuditEntry | None:
    """Audits continuous viewing once per viewer, target and `every_s` in this process.

    A video-wall tile refreshes every second or two, a review queue every few seconds: one row per
    stretch of watching says who watched what and when, where one per refresh would drown the log.
    """
    key = (actor, action, target)
    now = time.monotonic()
    last = _viewing.get(key)
    if last is not None and now - last < every_s:
        return None
    if len(_viewing) > 10_000:  # forget viewers long gone
        for stale in [k for k, at in _viewing.items() if now - at >= every_s]:
            del _viewing[stale]

    def seen() -> None:
        _viewing[key] = now

    after_commit(session, seen)
    return record(session, actor=actor, action=action, target=target, detail={"every_s": every_s})


@dataclass
class _Walk:
    """What walking a stretch of the chain found."""

    checked: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS
    problems: list[str] = field(default_factory=list)
    first_bad: int | None = None
    legacy_last: int = 0
    gaps: bool = False
    keys: dict[str, tuple[int, int]] = field(default_factory=dict)  # key id -> first and last row
    hashes_at: dict[int, tuple[str, int]] = field(default_factory=dict)  # anchored seq -> hash, count

    def bad(self, seq: int, problem: str) -> None:
        self.first_bad = seq if self.first_bad is None else min(self.first_bad, seq)
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        elif len(self.problems) == MAX_PROBLEMS:
            self.problems.append(f"… stopped listing after {MAX_PROBLEMS} problems")


def _walk(
    session: Session,
    keyring: Keyring,
    *,
    after_seq: int = 0,
    after_hash: str = GENESIS,
    counted: int = 0,
    legacy_until: int | None = None,
    anchored: frozenset[int] = frozenset(),
    upto: int | None = None,
    batch: int = 5000,
) -> _Walk:
    """Checks every row after `after_seq` (up to `upto`): sequence, link, hash or HMAC, key order."""
    walk = _Walk(
        checked=counted,
        last_seq=after_seq,
        last_hash=after_hash,
        legacy_last=min(after_seq, legacy_until or 0),
    )
    expected_prev, expected_seq = after_hash, after_seq + 1
    keyed_from: int | None = None
    newest_age, newest_key = -1, ""
    unkeyed_run: tuple[int, int] | None = None  # rows whose MACs fail one after another
    last_seq = after_seq

    def close_run() -> None:
        nonlocal unkeyed_run
        if unkeyed_run is not None and unkeyed_run[1] > unkeyed_run[0]:
            walk.bad(
                unkeyed_run[0] + 1,
                f"rows {unkeyed_run[0] + 1}..{unkeyed_run[1]} do not verify either: their hashes were "
                "recomputed without the key",
            )
        unkeyed_run = None

    while True:
        query = select(AuditEntry).where(AuditEntry.seq > last_seq).order_by(AuditEntry.seq).limit(batch)
        if upto is not None:
            query = query.where(AuditEntry.seq <= upto)
        rows: Sequence[AuditEntry] = session.scalars(query).all()
        if not rows:
            break
        for row in rows:
            walk.checked += 1
            if row.seq != expected_seq:
                walk.gaps = True
                walk.bad(expected_seq, f"rows {expected_seq}..{row.seq - 1} are missing (deleted)")
            if row.prev_hash != expected_prev:
                walk.bad(row.seq, f"row {row.seq}: its link to the previous row is broken")
            altered = False
            if row.key_id is None:
                if keyed_from is not None:
                    walk.bad(
                        row.seq,
                        f"row {row.seq} carries no key although rows are keyed from row {keyed_from}: it "
                        "was rewritten",
                    )
                elif legacy_until is not None and row.seq > legacy_until:
                    walk.bad(
                        row.seq,
                        f"row {row.seq} claims to be a legacy (unkeyed) row, but the checkpoints say rows "
                        f"are keyed from row {legacy_until + 1}: it was rewritten",
                    )
                else:
                    walk.legacy_last = row.seq
                altered = _legacy_digest(row) != row.hash
            else:
                keyed_from = keyed_from or row.seq
                key = keyring.get(row.key_id)
                first, _ = walk.keys.get(row.key_id, (row.seq, row.seq))
                walk.keys[row.key_id] = (first, row.seq)
                if key is None:
                    walk.bad(
                        row.seq,
                        f"row {row.seq} is signed with key {row.key_id}, which the keyring "
                        f"({keyring.source}) does not hold: restore that key, or the row was forged",
                    )
                else:
                    age = keyring.age(key.id)
                    if age < newest_age:
                        walk.bad(
                            row.seq,
                            f"row {row.seq} is signed with key {key.id}, which key {newest_key} had replaced "
                            "before it",
                        )
                    elif age > newest_age:
                        newest_age, newest_key = age, key.id
                    mac = _mac(
                        key, row.prev_hash, row.seq, row.at, row.actor, row.action, row.target, row.detail
                    )
                    altered = mac != row.hash
            if altered:
                if unkeyed_run is None:
                    walk.bad(
                        row.seq,
                        f"row {row.seq} ({row.action} by {row.actor}) was altered after it was written",
                    )
                    unkeyed_run = (row.seq, row.seq)
                else:
                    unkeyed_run = (unkeyed_run[0], row.seq)
            else:
                close_run()
            if row.seq in anchored:
                walk.hashes_at[row.seq] = (row.hash, walk.checked)
            expected_prev, expected_seq, last_seq = row.hash, row.seq + 1, row.seq
            walk.last_seq, walk.last_hash = row.seq, row.hash
    close_run()
    return walk


def verify(session: Session, *, anchor: Anchor | None = None, batch: int = 5000) -> VerifyReport:
    """Walks the chain against its keys and checkpoints; names tampered, missing or forged rows."""
    anchor = anchor or for_session(session)
    keyring = anchor.keyring
    keyring.refresh()
    read = anchor.checkpoints.read(keyring)
    checkpoints = read.checkpoints
    problems = list(read.problems)
    notes: list[str] = []
    legacy_until = checkpoints[0].legacy_until if checkpoints else None
    for cp in checkpoints[1:]:
        if cp.legacy_until != legacy_until:
            problems.append(
                f"checkpoint #{cp.n} says legacy rows end at row {cp.legacy_until}, checkpoint "
                f"#{checkpoints[0].n} at row {legacy_until}: the checkpoint file was edited"
            )
    walk = _walk(
        session,
        keyring,
        legacy_until=legacy_until,
        anchored=frozenset(cp.last_seq for cp in checkpoints),
        batch=batch,
    )
    problems += walk.problems
    first_bad = walk.first_bad
    last_seq = walk.last_seq
    for cp in checkpoints:
        if cp.last_seq == 0:
            continue
        found = walk.hashes_at.get(cp.last_seq)
        if cp.last_seq > last_seq:
            continue  # the truncation below names it
        if found is None:
            problems.append(
                f"checkpoint #{cp.n} ({format_moment(cp.at)}) anchors row {cp.last_seq}, which is missing"
            )
        elif found[0] != cp.last_hash:
            problems.append(
                f"checkpoint #{cp.n} ({format_moment(cp.at)}) anchors row {cp.last_seq} with another hash: "
                "the rows up to it were rewritten"
            )
            first_bad = cp.last_seq if first_bad is None else min(first_bad, cp.last_seq)
        elif found[1] != cp.rows and not walk.gaps:
            problems.append(
                f"checkpoint #{cp.n} counted {cp.rows} rows up to row {cp.last_seq}; the log holds {found[1]}"
            )
    newest = checkpoints[-1] if checkpoints else None
    if newest is not None and newest.last_seq > last_seq:
        at = f"checkpoint #{newest.n} ({format_moment(newest.at)})"
        if last_seq == 0:
            problems.append(f"the log is empty but {at} covers {newest.rows} rows: every row was deleted")
        else:
            problems.append(
                f"the log ends at row {last_seq} but {at} covers rows up to {newest.last_seq}: rows "
                f"{last_seq + 1}..{newest.last_seq} were deleted (the tail was truncated)"
            )
        first_bad = last_seq + 1 if first_bad is None else min(first_bad, last_seq + 1)
    keyed = bool(walk.keys)
    if newest is None and (keyed or read.problems):
        where = anchor.checkpoints.path
        problems.append(
            f"no valid checkpoint in {where}{'' if read.exists else ' (the file is missing)'} although the "
            "log has keyed rows: the anchor outside the database was removed or replaced"
        )
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != last_seq or head.hash != walk.last_hash):
        problems.append(f"the log ends at row {last_seq} but its head says row {head.seq}: rows were deleted")
    elif head is None and last_seq:
        problems.append(f"the log's head row is missing though the log reaches row {last_seq}")
    if walk.legacy_last:
        notes.append(
            f"rows 1..{walk.legacy_last} are legacy: written before the chain was keyed, they carry plain "
            "SHA-256 hashes and are vouched for by the keyed rows and the checkpoint after them"
        )
        if newest is None:
            notes.append("no checkpoint anchors the legacy rows yet: run `safecity audit checkpoint`")
    for kid, (first, last) in walk.keys.items():
        notes.append(f"rows {first}..{last} are signed with key {kid}")
    if newest is not None and last_seq > newest.last_seq:
        notes.append(
            f"rows {newest.last_seq + 1}..{last_seq} are newer than the last checkpoint (#{newest.n}, "
            f"{format_moment(newest.at, 'seconds')}); the next checkpoint anchors them"
        )
    return VerifyReport(
        ok=not problems,
        checked=walk.checked,
        problems=problems,
        notes=notes,
        first_bad_seq=first_bad,
        legacy_until=walk.legacy_last or None,
        checkpoints=len(checkpoints),
        anchored_seq=newest.last_seq if newest else None,
        keys=list(walk.keys),
    )


def checkpoint(db: Database) -> Checkpoint | None:
    """Verifies the rows since the newest checkpoint and signs one for them; None when nothing is new.

    Raises AuditTampered instead of vouching for a log that does not verify.
    """
    with db.session() as session:
        anchor = for_session(session)
        anchor.keyring.refresh()
        head = session.get(AuditHead, 1)
        end_seq = head.seq if head is not None else 0
        last = anchor.checkpoints.last()
        if last is None:
            walk = _walk(session, anchor.keyring, upto=end_seq)
            legacy_until = walk.legacy_last
        else:
            if not last.signed_by(anchor.keyring):
                raise AuditTampered(
                    f"the newest checkpoint in {anchor.checkpoints.path} does not verify",
                    hint="run `safecity audit verify` to see what was changed",
                )
            if end_seq == last.last_seq:
                return None
            anchored = session.get(AuditEntry, last.last_seq) if last.last_seq else None
            if end_seq < last.last_seq or (
                last.last_seq and (anchored is None or anchored.hash != last.last_hash)
            ):
                raise AuditTampered(
                    f"row {last.last_seq}, which checkpoint #{last.n} anchors, was changed or deleted",
                    hint="run `safecity audit verify` to see what was changed",
                )
            walk = _walk(
                session,
                anchor.keyring,
                after_seq=last.last_seq,
                after_hash=last.last_hash,
                counted=last.rows,
                legacy_until=last.legacy_until,
                upto=end_seq,
            )
            legacy_until = last.legacy_until
        if walk.problems:
            raise AuditTampered(
                "the audit log does not verify: " + "; ".join(walk.problems[:3]),
                hint="run `safecity audit verify` for every problem",
            )
        if last is None and end_seq == 0:
            return None
    return anchor.checkpoints.append(
        anchor.keyring,
        at=utcnow(),
        rows=walk.checked,
        last_seq=walk.last_seq,
        last_hash=walk.last_hash,
        legacy_until=legacy_until,
    )


def rotate_key(db: Database, *, actor: str) -> tuple[AuditKey, AuditKey]:
    """Puts a new key in charge from a marked row on; the old keys stay to verify the rows before it."""
    with db.session() as session:
        anchor = for_session(session)
        _take_turn(session)  # nobody appends between the new key file and its marker row
        anchor.keyring.refresh()
        old = anchor.keyring.current
        new = anchor.keyring.add()
        record(session, actor=actor, action="audit.key_rotated", detail={"from": old.id, "to": new.id})
    checkpoint(db)
    return old, new


def entries(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> Sequence[AuditEntry]:
    """Returns the newest entries, optionally filtered by actor, action prefix and time."""
    query = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action.startswith(action))
    if since:
        query = query.where(AuditEntry.at >= since)
    return session.scalars(query).all()


def by_seqs(session: Session, seqs: Sequence[int]) -> Sequence[AuditEntry]:
    """Returns the entries with these sequence numbers, oldest first (a domain's index into the chain)."""
    if not seqs:
        return []
    return session.scalars(
        select(AuditEntry).where(AuditEntry.seq.in_(list(seqs))).order_by(AuditEntry.seq)
    ).all()
