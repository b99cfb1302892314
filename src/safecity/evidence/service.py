"""Claims of rows on stored media, the look-up `/media/{ref}` makes before it shows anything, and holds.

Every domain that stores a ref in a row claims it here in the same transaction (`own`), naming what
the object is; the permission map (`accounts.permissions.MEDIA`) says which permissions see each kind,
and the retention classes (`evidence.retention`) how long each kind of claim keeps its object. A hold
(a legal hold, an open appeal, a case) claims what it keeps until it is released, so nothing under one
is ever swept:

    hold = place_hold(session, kind="case", reference="FIR 112/2026", reason="hit and run",
                      owners=["violation:01HX…"], actor="inspector.rana", store=ctx.media)
    release_hold(session, hold.id, reason="case closed by court order 7/2026", actor="inspector.rana")
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from safecity.accounts.permissions import MEDIA
from safecity.audit import service as audit
from safecity.core.clock import utcnow
from safecity.core.db import insert_many
from safecity.core.errors import Conflict, InvalidInput, NotFound
from safecity.core.ids import new_id
from safecity.core.media import MediaStore
from safecity.evidence.models import HOLD_KINDS, MediaHold, MediaOwner

HOLD = "hold"


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
    session: Session,
    kind: str,
    *,
    owners: Collection[str] | None = None,
    before: datetime | None = None,
    keep: Collection[str] = (),
) -> int:
    """Drops the claims of `kind` by `owners`, or made before `before` (their rows were purged).

    The claims of the rows in `keep` stay (rows a purge kept because a hold names them).
    """
    stmt = delete(MediaOwner).where(MediaOwner.kind == kind)
    if owners is not None:
        stmt = stmt.where(MediaOwner.owner.in_(list(owners)))
    if before is not None:
        stmt = stmt.where(MediaOwner.at < before)
    if keep:
        stmt = stmt.where(MediaOwner.owner.not_in(list(keep)))
    return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]


def held_rows(session: Session, kind: str) -> set[str]:
    """The ids of the rows of `kind` that a live hold names ("kind:id" targets): purges keep them."""
    prefix = f"{kind}:"
    held: set[str] = set()
    for targets in session.scalars(select(MediaHold.targets).where(MediaHold.released_at.is_(None))):
        held.update(t[len(prefix) :] for t in targets or [] if t.startswith(prefix))
    return held


def claimed(session: Session, refs: Collection[str]) -> dict[str, set[str]]:
    """Returns the kinds that claim each of `refs` (refs nothing claims are left out)."""
    found: dict[str, set[str]] = {}
    if refs:
        rows = session.execute(
            select(MediaOwner.ref, MediaOwner.kind).where(MediaOwner.ref.in_(list(refs))).distinct()
        )
        for ref, kind in rows:
            found.setdefault(ref, set()).add(kind)
    return found


# --- holds -----------------------------------------------------------------------------------------


def _owner_name(target: str) -> tuple[str, str]:
    kind, sep, owner = target.partition(":")
    if not sep or not owner or kind == HOLD:
        raise InvalidInput(
            f"{target!r} does not name a row", hint='name a row as "kind:id", e.g. "violation:01HX…"'
        )
    if kind not in MEDIA:
        raise InvalidInput(
            f"{kind!r} is not a kind of stored evidence", hint=f"use one of {sorted(set(MEDIA) - {HOLD})}"
        )
    return kind, owner


def resolve_targets(
    session: Session, *, refs: Sequence[str] = (), owners: Sequence[str] = (), store: MediaStore | None = None
) -> list[str]:
    """Returns the refs that `refs` and the rows `owners` ("kind:id") name; raises on any unknown one.

    A ref must be well formed and stored (or claimed); a row must own at least one stored object.
    Nothing is returned unless every target is known, so a hold is placed whole or not at all.
    """
    found: dict[str, None] = {}
    for ref in refs:
        MediaStore.check_ref(ref)
        if not (store is not None and store.path(ref).exists()) and not claimed(session, [ref]):
            raise NotFound(
                f"no stored object {ref}", hint="it was never stored, or it has passed its retention"
            )
        found[ref] = None
    for target in owners:
        kind, owner = _owner_name(target)
        owned = session.scalars(
            select(MediaOwner.ref).where(MediaOwner.kind == kind, MediaOwner.owner == owner)
        ).all()
        if not owned:
            raise NotFound(
                f"nothing stored belongs to {kind} {owner}",
                hint="check the id; its evidence may have passed its retention",
            )
        found.update(dict.fromkeys(owned))
    return list(found)


def place_hold(
    session: Session,
    *,
    kind: str,
    reference: str,
    reason: str,
    actor: str,
    refs: Sequence[str] = (),
    owners: Sequence[str] = (),
    store: MediaStore | None = None,
) -> MediaHold:
    """Holds the named objects until released; an open hold of the same kind and reference grows instead."""
    if kind not in HOLD_KINDS:
        raise InvalidInput(f"{kind!r} is not a kind of hold", hint=f"use one of {list(HOLD_KINDS)}")
    if not refs and not owners:
        raise InvalidInput("a hold names what it keeps", hint="give refs, or rows as kind:id")
    held = resolve_targets(session, refs=refs, owners=owners, store=store)
    hold = session.scalars(
        select(MediaHold).where(
            MediaHold.kind == kind, MediaHold.reference == reference, MediaHold.released_at.is_(None)
        )
    ).first()
    if hold is None:
        hold = MediaHold(
            id=new_id(), kind=kind, reference=reference, reason=reason, placed_by=actor, targets=[]
        )
        session.add(hold)
        session.flush()
    hold.targets = list(dict.fromkeys([*hold.targets, *refs, *owners]))
    own(session, HOLD, hold.id, held, at=hold.placed_at)
    session.flush()
    hold.objects = len(
        session.scalars(
            select(MediaOwner.ref).where(MediaOwner.kind == HOLD, MediaOwner.owner == hold.id)
        ).all()
    )
    audit.record(
        session,
        actor=actor,
        action="media.hold",
        target=hold.id,
        detail={
            "kind": kind,
            "reference": reference,
            "reason": reason,
            "targets": [*refs, *owners],
            "refs": held[:1000],
        },
    )
    return hold


def hold_evidence_of(
    session: Session, *, kind: str, reference: str, reason: str, actor: str, owners: Sequence[tuple[str, str]]
) -> MediaHold | None:
    """Holds whatever the rows `owners` (kind, id) own, if anything (an appeal: its challan's evidence)."""
    reason = reason[:500]
    names = [
        f"{k}:{o}"
        for k, o in owners
        if session.scalar(select(MediaOwner.ref).where(MediaOwner.kind == k, MediaOwner.owner == o).limit(1))
    ]
    if not names:
        return None
    return place_hold(session, kind=kind, reference=reference, reason=reason, actor=actor, owners=names)


def get_hold(session: Session, hold_id: str) -> MediaHold:
    """Returns a hold, or raises NotFound."""
    hold = session.get(MediaHold, hold_id)
    if hold is None:
        raise NotFound(f"no hold {hold_id}", hint="list them: safecity media holds")
    return hold


def release_hold(
    session: Session, hold_id: str, *, reason: str, actor: str, appeal_decided: bool = False
) -> MediaHold:
    """Ends a hold: its objects fall back to their rows' retention (audited).

    An appeal's hold ends with the committee's decision (`appeal_decided`), never by hand.
    """
    hold = get_hold(session, hold_id)
    if hold.kind == "appeal" and not appeal_decided:
        raise Conflict(
            f"hold {hold_id} keeps the evidence of the appeal against challan {hold.reference}",
            hint="it ends when the appeal committee decides",
        )
    if hold.released_at is not None:
        raise Conflict(
            f"hold {hold_id} was already released on {hold.released_at:%Y-%m-%d} by {hold.released_by}"
        )
    hold.released_at, hold.released_by, hold.release_reason = utcnow(), actor, reason
    forget(session, HOLD, owners=[hold.id])
    audit.record(
        session,
        actor=actor,
        action="media.hold_release",
        target=hold.id,
        detail={"kind": hold.kind, "reference": hold.reference, "reason": reason, "objects": hold.objects},
    )
    return hold


def release_holds_of(session: Session, *, kind: str, reference: str, reason: str, actor: str) -> int:
    """Ends the open holds of a kind and reference (an appeal decided); returns how many."""
    open_holds = session.scalars(
        select(MediaHold.id).where(
            MediaHold.kind == kind, MediaHold.reference == reference, MediaHold.released_at.is_(None)
        )
    ).all()
    for hold_id in open_holds:
        release_hold(session, hold_id, reason=reason, actor=actor, appeal_decided=kind == "appeal")
    return len(open_holds)


def list_holds(session: Session, *, include_released: bool = False, limit: int = 500) -> Sequence[MediaHold]:
    """Returns holds, newest first (open ones only unless asked)."""
    stmt = select(MediaHold).order_by(MediaHold.placed_at.desc()).limit(limit)
    if not include_released:
        stmt = stmt.where(MediaHold.released_at.is_(None))
    return session.scalars(stmt).all()


def open_hold(session: Session, *, kind: str, reference: str) -> MediaHold | None:
    """Returns the open hold of a kind and reference (a case's), if there is one."""
    return session.scalars(
        select(MediaHold).where(
            MediaHold.kind == kind, MediaHold.reference == reference, MediaHold.released_at.is_(None)
        )
    ).first()


def holds_keeping(session: Session, ref: str) -> Sequence[MediaHold]:
    """Returns the open holds that keep the object `ref`."""
    held_by = select(MediaOwner.owner).where(MediaOwner.ref == ref, MediaOwner.kind == HOLD)
    return session.scalars(
        select(MediaHold).where(MediaHold.id.in_(held_by), MediaHold.released_at.is_(None))
    ).all()


def owns_any(session: Session, kind: str, owner: str) -> bool:
    """Returns whether row `owner` of `kind` claims any stored object."""
    found = select(MediaOwner.ref).where(MediaOwner.kind == kind, MediaOwner.owner == owner).limit(1)
    return session.scalar(found) is not None
