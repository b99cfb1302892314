"""Moving sealed data onto the newest data key: every sealed column and every media file, in batches.

The columns are found by their type (`core.crypto.encrypted_columns`), so a new sealed column joins the
rotation by being declared. Each batch commits on its own and what the newest key already sealed is
skipped, so a pass that stops (a crash, Ctrl-C) continues where it was when run again. A key is retired
only once nothing it sealed is left: `usage` counts, table by table and across the media store.

    moved = reencrypt(ctx.db, ctx.media, cipher, metadata, progress=print)
    retire_unused(cipher, usage(ctx.db, ctx.media, metadata))
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import MetaData, Table

from safecity.core.crypto import TEXT_PREFIX, CannotDecrypt, Cipher, encrypted_columns
from safecity.core.db import Database
from safecity.core.media import MediaStore

PLAIN = "plain"  # media stored before encryption (counted under this name, never a key id)

#: Called with what a step is about ("users.totp_secret", "media") and how many items it finished.
Progress = Callable[[str, int], None]


@dataclass
class KeyUse:
    """What each data key seals: per sealed column, and in the media store (plain files apart)."""

    columns: dict[str, Counter[str]] = field(default_factory=dict)
    media: Counter[str] = field(default_factory=Counter)

    def total(self) -> Counter[str]:
        """Returns how many sealed values and files each key id holds, everywhere."""
        found: Counter[str] = Counter(self.media)
        for counts in self.columns.values():
            found.update(counts)
        return found


@dataclass
class Moved:
    """What one pass did."""

    values: int = 0  # column values sealed again under the newest key
    files: int = 0  # media files sealed (again) under the newest key
    failed: list[str] = field(default_factory=list)  # what could not be opened, named


def _raw(table: Table, column: str) -> tuple[sa.TableClause, sa.ColumnClause[str], sa.ColumnClause[object]]:
    """Returns the table with its primary key and the sealed column as plain text (no decrypting)."""
    (pk,) = table.primary_key.columns  # every sealed column lives in a table with a one-column key
    raw = sa.table(table.name, sa.column(pk.name, pk.type), sa.column(column, sa.Text))
    return raw, raw.c[column], raw.c[pk.name]


def usage(db: Database, media: MediaStore | None, metadata: MetaData) -> KeyUse:
    """Counts the sealed values per key id in every sealed column, and the media files per key id."""
    found = KeyUse()
    with db.session() as session:
        for table, column, _ in encrypted_columns(metadata):
            _, value, _ = _raw(table, column)
            kid = sa.func.substr(value, len(TEXT_PREFIX) + 1, 16)
            rows = session.execute(sa.select(kid, sa.func.count()).where(value.is_not(None)).group_by(kid))
            found.columns[f"{table.name}.{column}"] = Counter({str(k): int(n) for k, n in rows})
    if media is not None:
        for ref in media.refs():
            found.media[media.key_of(ref) or PLAIN] += 1
    return found


def pending(db: Database, cipher: Cipher, metadata: MetaData) -> int:
    """Returns how many sealed column values are not under the newest key."""
    current = cipher.current.id
    total = 0
    with db.session() as session:
        for table, column, _ in encrypted_columns(metadata):
            _, value, _ = _raw(table, column)
            stale = sa.and_(value.is_not(None), ~value.like(f"{TEXT_PREFIX}{current}:%"))
            total += int(session.scalar(sa.select(sa.func.count()).where(stale)) or 0)
    return total


def reencrypt(
    db: Database,
    media: MediaStore | None,
    cipher: Cipher,
    metadata: MetaData,
    *,
    progress: Progress | None = None,
    batch: int = 500,
) -> Moved:
    """Seals every value and file that an older key sealed (or, media, nobody) under the newest key."""
    moved = Moved()
    current = cipher.current.id
    for table, column, purpose in encrypted_columns(metadata):
        raw, value, pk = _raw(table, column)
        stale = sa.and_(value.is_not(None), ~value.like(f"{TEXT_PREFIX}{current}:%"))
        last: object = None
        while True:
            with db.session() as session:
                query = sa.select(pk, value).where(stale).order_by(pk).limit(batch)
                if last is not None:
                    query = query.where(pk > last)
                rows = session.execute(query).all()
                if not rows:
                    break
                changes = []
                for key, sealed in rows:
                    try:
                        plain = cipher.unseal_text(str(sealed), purpose=purpose.encode())
                    except CannotDecrypt as exc:
                        moved.failed.append(f"{table.name}.{column} {key}: {exc.message}")
                        continue
                    changes.append(
                        {"key": key, "old": sealed, "new": cipher.seal_text(plain, purpose=purpose.encode())}
                    )
                if changes:
                    # Compare-and-set: a value changed meanwhile was sealed by its writer, under the new key.
                    session.execute(
                        sa.update(raw)
                        .where(pk == sa.bindparam("key"), value == sa.bindparam("old"))
                        .values({column: sa.bindparam("new")}),
                        changes,
                    )
                last = rows[-1][0]
            moved.values += len(changes)
            if progress is not None:
                progress(f"{table.name}.{column}", len(rows))
    if media is not None:
        for ref in media.refs():
            try:
                moved.files += media.reseal(ref)
            except CannotDecrypt as exc:
                moved.failed.append(f"media {ref}: {exc.message}")
            if progress is not None:
                progress("media", 1)
    return moved


def retire_unused(cipher: Cipher, found: KeyUse) -> tuple[list[str], dict[str, int]]:
    """Retires every older key that seals nothing; returns (retired ids, older ids still in use and how
    much). Keys given in the environment cannot be removed here: they are returned as retirable."""
    current = cipher.current.id
    counts = found.total()
    older = [k.id for k in cipher.keyring.keys if k.id != current]
    unused = {kid for kid in older if counts.get(kid, 0) == 0}
    still = {kid: counts[kid] for kid in older if counts.get(kid, 0) > 0}
    if unused and cipher.keyring.path is not None:
        cipher.keyring.retire(unused)
    return sorted(unused), still
