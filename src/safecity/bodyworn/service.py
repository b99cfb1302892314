"""Body-worn items: finding them, who may open them, and changing what they are (all in the custody log).

Access has three classes: `normal` (anyone with `bodycam:read`), `restricted` (also `bodycam:manage`:
supervisors and investigators) and `confidential` (only the users named on the item). "Do not
disclose" keeps an item out of every share and court bundle. A refused look is in the custody log too.

    item = get_for(session, item_id, principal, action="view", reason="review of FIR 112/2026")
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from safecity.accounts.service import Principal
from safecity.bodyworn import custody
from safecity.bodyworn.models import (
    BodyWornItem,
    BodyWornShare,
    CaseItem,
    ClassifyIn,
    EvidenceCase,
    ItemDetail,
    ItemOut,
    ShareOut,
)
from safecity.core.clock import as_utc, utcnow
from safecity.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from safecity.evidence import service as media_owners
from safecity.evidence.models import MediaHold
from safecity.settings import Settings

UNCATEGORISED = "uncategorised"
KIND = "bodyworn"


def by_digest(session: Session, sha256: str) -> BodyWornItem | None:
    """Returns the item with these bytes, if any."""
    return session.scalars(select(BodyWornItem).where(BodyWornItem.sha256 == sha256)).first()


def get(session: Session, item_id: str) -> BodyWornItem:
    """Returns an item (whatever its state), or raises NotFound."""
    item = session.get(BodyWornItem, item_id)
    if item is None:
        raise NotFound(f"no body-worn item {item_id}", hint="list them: safecity evidence list")
    return item


def check_categories(settings: Settings, categories: Sequence[str]) -> None:
    """Refuses categories that have no retention period configured."""
    known = set(settings.bodyworn_retention_days) | {UNCATEGORISED}
    unknown = sorted(set(categories) - known)
    if unknown:
        raise InvalidInput(
            f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}",
            hint=f"use some of {', '.join(sorted(known))} (setting bodyworn_retention_days)",
        )


def may_open(item: BodyWornItem, principal: Principal) -> str | None:
    """Returns why `principal` may not open the item's footage, or None when they may."""
    if not principal.can("bodycam:read"):
        return f"your role ({principal.role}) may not watch body-worn footage"
    if item.access_class == "restricted" and not principal.can("bodycam:manage"):
        return "this recording is restricted"
    if item.access_class == "confidential" and principal.username not in item.allowed_users:
        return "this recording is confidential to the people named on it"
    return None


def may_list(item: BodyWornItem, principal: Principal) -> bool:
    """Returns whether the item appears in `principal`'s lists (an uploader sees what they brought)."""
    if may_open(item, principal) is None:
        return True
    return principal.can("bodycam:upload") and item.uploaded_by == principal.username


def get_for(
    session: Session, item_id: str, principal: Principal, *, action: str, reason: str = "", **detail: Any
) -> BodyWornItem:
    """Returns an item `principal` may open, recording `action` in its custody log (refusals too)."""
    item = get(session, item_id)
    if item.status == "purged":
        raise NotFound(f"item {item_id} was deleted and its file released", hint="its custody log remains")
    why_not = may_open(item, principal)
    if why_not is None and item.status == "deleted" and not principal.can("bodycam:manage"):
        why_not = "this recording is deleted (in its recovery window)"
    if why_not is not None:
        custody.record_refusal(
            session, item.id, actor=principal.username, action="refused", reason=why_not, wanted=action
        )
        raise Forbidden(why_not, hint="ask a supervisor for access")
    if action:
        custody.record(session, item.id, actor=principal.username, action=action, reason=reason, **detail)
    return item


def list_items(
    session: Session,
    principal: Principal,
    *,
    officer: str | None = None,
    device: str | None = None,
    category: str | None = None,
    case: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    status: str = "active",
    limit: int = 200,
) -> list[BodyWornItem]:
    """Returns items newest first by recording time, filtered, that `principal` may list."""
    stmt = select(BodyWornItem).order_by(
        func.coalesce(BodyWornItem.recorded_at, BodyWornItem.ingested_at).desc()
    )
    if status != "any":
        stmt = stmt.where(BodyWornItem.status == status)
    if officer:
        stmt = stmt.where(BodyWornItem.officer == officer)
    if device:
        stmt = stmt.where(BodyWornItem.device == device)
    if since:
        stmt = stmt.where(func.coalesce(BodyWornItem.recorded_at, BodyWornItem.ingested_at) >= since)
    if until:
        stmt = stmt.where(func.coalesce(BodyWornItem.recorded_at, BodyWornItem.ingested_at) < until)
    if case:
        stmt = (
            stmt.join(CaseItem, (CaseItem.ref_id == BodyWornItem.id) & (CaseItem.kind == KIND))
            .join(EvidenceCase, EvidenceCase.id == CaseItem.case_id)
            .where(EvidenceCase.number == case)
        )
    if not principal.can("bodycam:read"):
        stmt = stmt.where(BodyWornItem.uploaded_by == principal.username)
    found: list[BodyWornItem] = []
    for item in session.scalars(stmt.limit(limit * 4)):
        if category and category not in (item.categories or [UNCATEGORISED]):
            continue
        if may_list(item, principal):
            found.append(item)
        if len(found) >= limit:
            break
    return found


def cases_of(session: Session, item_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """Returns, per item, the (number, status) of the cases it is in."""
    found: dict[str, list[tuple[str, str]]] = {}
    if item_ids:
        rows = session.execute(
            select(CaseItem.ref_id, EvidenceCase.number, EvidenceCase.status)
            .join(EvidenceCase, EvidenceCase.id == CaseItem.case_id)
            .where(CaseItem.kind == KIND, CaseItem.ref_id.in_(list(item_ids)))
        )
        for item_id, number, status in rows:
            found.setdefault(item_id, []).append((number, status))
    return found


def derived_of(session: Session, item_id: str) -> list[dict[str, Any]]:
    """Returns the items made from an item: id, digest, when and by whom."""
    rows = session.scalars(
        select(BodyWornItem).where(BodyWornItem.derived_from == item_id).order_by(BodyWornItem.ingested_at)
    )
    return [
        {"id": r.id, "sha256": r.sha256, "at": r.ingested_at, "by": r.uploaded_by, "status": r.status}
        for r in rows
    ]


def holds_of(session: Session, item: BodyWornItem) -> list[dict[str, Any]]:
    """Returns the open holds that keep the item's original (legal holds, cases)."""
    return [
        {
            "id": h.id,
            "kind": h.kind,
            "reference": h.reference,
            "reason": h.reason,
            "placed_by": h.placed_by,
            "placed_at": h.placed_at,
        }
        for h in media_owners.holds_keeping(session, item.ref)
    ]


def retention_days(settings: Settings, categories: Sequence[str]) -> int:
    """Returns the days an item of these categories is kept: the longest of them."""
    days = dict(settings.bodyworn_retention_days)
    days.setdefault(UNCATEGORISED, 365)
    return max(days.get(c, days[UNCATEGORISED]) for c in (list(categories) or [UNCATEGORISED]))


def delete_due(settings: Settings, item: BodyWornItem) -> datetime:
    """Returns when retention deletes the item (unless a case or a hold keeps it)."""
    start = item.recorded_at or item.ingested_at
    due = as_utc(start) + timedelta(days=retention_days(settings, item.categories))
    if item.retain_until is not None:
        due = max(due, as_utc(item.retain_until))
    return due


def out(session: Session, settings: Settings, rows: Sequence[BodyWornItem]) -> list[ItemOut]:
    """Returns items as lists show them, with their cases and when retention would delete them."""
    in_cases = cases_of(session, [r.id for r in rows])
    result = []
    for row in rows:
        shown = ItemOut.model_validate(row)
        shown.track_points = len(row.track or [])
        shown.cases = [number for number, _ in in_cases.get(row.id, [])]
        open_case = any(status == "open" for _, status in in_cases.get(row.id, []))
        shown.delete_due = None if open_case or row.status != "active" else delete_due(settings, row)
        result.append(shown)
    return result


def detail(session: Session, settings: Settings, item: BodyWornItem) -> ItemDetail:
    """Returns one item with its track, holds and shares."""
    shown = ItemDetail.model_validate({**out(session, settings, [item])[0].model_dump(), "track": item.track})
    shown.allowed_users = list(item.allowed_users or [])
    shown.operations = list(item.operations or [])
    shown.derived = derived_of(session, item.id)
    holds = holds_of(session, item)
    shown.holds = holds
    if holds:
        shown.delete_due = None
    shares = session.scalars(
        select(BodyWornShare)
        .where(BodyWornShare.item_id == item.id)
        .order_by(BodyWornShare.created_at.desc())
    ).all()
    shown.shares = [
        ShareOut.model_validate(s).model_copy(update={"bound": s.bound_to is not None}) for s in shares
    ]
    return shown


def classify(
    session: Session, settings: Settings, item_id: str, change: ClassifyIn, *, actor: str
) -> BodyWornItem:
    """Changes an item's categories, access class, disclosure or minimum retention (before/after audited)."""
    item = get(session, item_id)
    if item.status != "active":
        raise Conflict(f"item {item_id} is {item.status}", hint="restore it first")
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}

    def change_field(name: str, value: Any) -> None:
        if value is not None and value != getattr(item, name):
            before[name], after[name] = getattr(item, name), value
            setattr(item, name, value)

    if change.categories is not None:
        check_categories(settings, change.categories)
        change_field("categories", list(dict.fromkeys(change.categories)))
    if change.access_class is not None:
        if change.access_class == "confidential" and not (change.allowed_users or item.allowed_users):
            raise InvalidInput(
                "a confidential item names who may open it", hint="give allowed_users (user names)"
            )
        change_field("access_class", change.access_class)
        if change.access_class != "confidential" and change.allowed_users is None:
            change_field("allowed_users", [])
    if change.allowed_users is not None:
        change_field("allowed_users", list(dict.fromkeys(change.allowed_users)))
    change_field("do_not_disclose", change.do_not_disclose)
    if change.retain_until is not None:
        change_field("retain_until", as_utc(change.retain_until))
    if not after:
        raise InvalidInput(
            "nothing to change", hint="give categories, access_class, do_not_disclose or retain_until"
        )
    retention = {"categories", "retain_until"} & set(after)
    action = "retention" if retention and set(after) <= {"categories", "retain_until"} else "classify"
    custody.record(
        session, item.id, actor=actor, action=action, reason=change.reason, before=before, after=after
    )
    return item


def hold(session: Session, item_id: str, *, reference: str, reason: str, actor: str) -> MediaHold:
    """Places a legal hold on an item (the media hold of `evidence`; recorded in its custody log)."""
    item = get(session, item_id)
    if item.status == "purged":
        raise Conflict(f"item {item_id} was purged", hint="nothing is left to hold")
    placed = media_owners.place_hold(
        session, kind="legal", reference=reference, reason=reason, actor=actor, owners=[f"{KIND}:{item.id}"]
    )
    custody.record(
        session, item.id, actor=actor, action="hold", reason=reason, hold=placed.id, reference=reference
    )
    return placed


def release_hold(session: Session, item_id: str, hold_id: str, *, reason: str, actor: str) -> MediaHold:
    """Releases a legal hold that keeps an item (recorded in its custody log)."""
    item = get(session, item_id)
    if hold_id not in {h["id"] for h in holds_of(session, item)}:
        raise NotFound(f"hold {hold_id} does not keep item {item_id}", hint="see the item's holds")
    released = media_owners.release_hold(session, hold_id, reason=reason, actor=actor)
    custody.record(session, item.id, actor=actor, action="hold_release", reason=reason, hold=hold_id)
    return released


def protected(session: Session, item: BodyWornItem) -> str | None:
    """Returns why the item may not be deleted now (an open case, a hold), or None."""
    open_cases = [
        number for number, status in cases_of(session, [item.id]).get(item.id, []) if status == "open"
    ]
    if open_cases:
        return f"it is evidence in open case {', '.join(open_cases)}"
    holds = holds_of(session, item)
    if holds:
        return f"it is under hold {', '.join(h['reference'] for h in holds)}"
    return None


def delete(session: Session, settings: Settings, item_id: str, *, reason: str, actor: str) -> BodyWornItem:
    """Deletes an item into its recovery window (restorable until `purge_after`); refused if protected."""
    item = get(session, item_id)
    if item.status != "active":
        raise Conflict(f"item {item_id} is {item.status} already")
    why = protected(session, item)
    if why is not None:
        raise Conflict(
            f"item {item_id} cannot be deleted: {why}", hint="close the case or release the hold first"
        )
    now = utcnow()
    item.status, item.deleted_at, item.deleted_by, item.delete_reason = "deleted", now, actor, reason[:500]
    item.purge_after = now + timedelta(days=settings.bodyworn_recovery_days)
    custody.record(
        session, item.id, actor=actor, action="delete", reason=reason, purge_after=item.purge_after
    )
    return item


def restore(session: Session, item_id: str, *, reason: str, actor: str) -> BodyWornItem:
    """Brings a deleted item back within its recovery window."""
    item = get(session, item_id)
    if item.status != "deleted":
        raise Conflict(
            f"item {item_id} is {item.status}",
            hint="only a deleted item within its recovery window can be restored",
        )
    item.status, item.deleted_at, item.deleted_by, item.delete_reason, item.purge_after = (
        "active",
        None,
        None,
        None,
        None,
    )
    custody.record(session, item.id, actor=actor, action="restore", reason=reason)
    return item


def purge(session: Session, item: BodyWornItem, *, actor: str) -> None:
    """Releases a deleted item's files to the media sweep after its window; the row stays as a record."""
    media_owners.forget(session, KIND, owners=[item.id])
    item.status = "purged"
    custody.record(
        session, item.id, actor=actor, action="purge", reason="recovery window ended", ref=item.ref
    )


def counts(session: Session) -> dict[str, int]:
    """Returns how many items are in each state."""
    rows = session.execute(select(BodyWornItem.status, func.count()).group_by(BodyWornItem.status))
    return {status: int(n) for status, n in rows}
