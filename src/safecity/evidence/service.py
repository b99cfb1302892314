"""Claims of rows on stored media, and the look-up `/media/{ref}` makes before it shows anything.

Every domain that stores a ref in a row claims it here in the same transaction (`own`), naming what
the object is; the permission map (`accounts.permissions.MEDIA`) says which permissions see each kind.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from safecity.accounts.permissions import MEDIA
from safecity.core.clock import utcnow
from safecity.core.db import insert_many
from safecity.evidence.models import MediaOwner


def _media_ref(value: object) -> bool:
    return isinstance(value, str) and value.startswith("sha256:") and len(value) <= 120


def refs_in(value: Any) -> list[str]:
    """Returns every media ref found in a value, however deep in dicts and lists (evidence blobs)."""
    if _media_ref(value):
        return [value]
    if isinstance(value, dict):
        return [ref for item in value.values() for ref in refs_in(item)]
    if isinstance(value, list | tuple):
        return [ref for item in value for ref in refs_in(item)]
    return []


def own_many(session: Session, kind: str, claims: Iterable[tuple[str, str | None, datetime]]) -> int:
    """Records that each (owner, ref, since) holds the ref as `kind`; claims made before are left alone."""
    if kind not in MEDIA:
        raise ValueError(f"unknown media kind {kind!r}: add it to accounts.permissions.MEDIA")
    unique = {(str(owner)[:64], ref): at for owner, ref, at in claims if _media_ref(ref)}
    if not unique:
        return 0
    values = [{"ref": ref, "kind": kind, "owner": owner, "at": at} for (owner, ref), at in unique.items()]
    table = MediaOwner.__table__
    assert isinstance(table, Table)
    insert_many(session, table, values, skip_conflicts_on=_claim_key(table))
    return len(values)


def _claim_key(table: Table) -> list[str]:
    # The primary key says what one claim is; a claim made before stays as it was.
    return [column.name for column in table.primary_key.columns]


def own(
    session: Session, kind: str, owner: str, refs: Iterable[str | None], *, at: datetime | None = None
) -> int:
    """Records that row `owner` holds `refs` as objects of `kind` (`at`: when the row was made)."""
    when = at or utcnow()
    return own_many(session, kind, ((owner, ref, when) for ref in refs))


def owners_of(session: Session, ref: str) -> Sequence[MediaOwner]:
    """Returns every claim on `ref` (none: the ref belongs to nothing anyone may see)."""
    return session.scalars(select(MediaOwner).where(MediaOwner.ref == ref).limit(50)).all()


def forget(
    session: Session, kind: str, *, owners: Collection[str] | None = None, before: datetime | None = None
) -> int:
    """Drops the claims of `kind` by `owners`, or made before `before` (their rows were purged)."""
    stmt = delete(MediaOwner).where(MediaOwner.kind == kind)
    if owners is not None:
        stmt = stmt.where(MediaOwner.owner.in_(list(owners)))
    if before is not None:
        stmt = stmt.where(MediaOwner.at < before)
    return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]
