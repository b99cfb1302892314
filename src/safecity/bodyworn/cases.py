"""Cases: the evidence of one matter, its officers, FIR number and status; an open case protects its evidence.

A case groups body-worn items, recording clips, plate reads, face matches, challans and violations,
each by the id of its row in its own domain. While the case is open its evidence is held: one media
hold of kind "case" under the case number keeps every stored object of it from any sweep, and
body-worn retention never deletes an item in an open case. Closing the case releases the hold.

    body = CaseIn(number="CASE-2026-0112", title="Robbery, Saddar", fir_number="112/2026")
    case = cases.create(session, body, actor="inspector.rana")
    cases.add_item(session, "CASE-2026-0112", kind="bodyworn", ref_id=item.id, actor="inspector.rana")
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from safecity.audit import service as audit
from safecity.bodyworn import custody
from safecity.bodyworn.models import CaseIn, CaseItem, CaseItemOut, CaseOut, EvidenceCase
from safecity.core.errors import Conflict, NotFound
from safecity.core.ids import new_id
from safecity.evidence import service as media_owners

HOLD_KIND = "case"


def create(session: Session, body: CaseIn, *, actor: str) -> EvidenceCase:
    """Opens a case (its number is unique)."""
    number = body.number.strip()
    if session.scalars(select(EvidenceCase.id).where(EvidenceCase.number == number)).first():
        raise Conflict(f"case {number} exists already", hint="open it, or choose another number")
    case = EvidenceCase(
        id=new_id(),
        number=number,
        title=body.title,
        fir_number=body.fir_number,
        status="open",
        officers=list(dict.fromkeys(body.officers)),
        created_by=actor,
    )
    session.add(case)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="case.open",
        target=f"case:{number}",
        detail={"title": body.title, "fir": body.fir_number, "officers": case.officers},
    )
    return case


def get(session: Session, number: str) -> EvidenceCase:
    """Returns a case by number, or raises NotFound."""
    case = session.scalars(select(EvidenceCase).where(EvidenceCase.number == number.strip())).first()
    if case is None:
        raise NotFound(f"no case {number}", hint="list them: safecity evidence cases")
    return case


def open_case(session: Session, number: str) -> EvidenceCase:
    """Returns an open case by number; raises when it is closed."""
    case = get(session, number)
    if case.status != "open":
        raise Conflict(f"case {number} is closed", hint="evidence is added to open cases only")
    return case


def _media_owner(session: Session, kind: str, ref_id: str, *, actor: str) -> tuple[str, str]:
    """Checks the row exists in its own domain; returns the (media kind, owner) its stored objects go by."""
    if kind == "bodyworn":
        from safecity.bodyworn import service as items

        item = items.get(session, ref_id)
        if item.status == "purged":
            raise Conflict(f"item {ref_id} was purged", hint="its file is gone")
        return "bodyworn", item.id
    if kind == "plate_read":
        from safecity.anpr import service as anpr

        return "plate_read", anpr.get_read(session, ref_id, actor=actor).id
    if kind == "face_match":
        from safecity.faces import service as faces

        return "face_match", faces.get_match(session, ref_id).id
    if kind == "violation":
        from safecity.enforcement import service as enforcement

        return "violation", enforcement.get_violation(session, ref_id).id
    if kind == "challan":
        from safecity.challans import service as challans

        return "challan_notice", challans.get_challan(session, ref_id).id
    # A recording clip: known by the objects it stored.
    if not media_owners.owns_any(session, "clip", ref_id):
        raise NotFound(f"no stored clip {ref_id}", hint="clips are listed with their alert or incident")
    return "clip", ref_id


def add_item(
    session: Session, number: str, *, kind: str, ref_id: str, actor: str, note: str = ""
) -> CaseItem:
    """Adds evidence to an open case and holds what it stored; adding it twice changes nothing."""
    case = open_case(session, number)
    media_kind, owner = _media_owner(session, kind, ref_id, actor=actor)
    existing = session.get(CaseItem, (case.id, kind, owner))
    if existing is not None:
        return existing
    row = CaseItem(case_id=case.id, kind=kind, ref_id=owner, added_by=actor, note=note[:500])
    session.add(row)
    session.flush()
    media_owners.hold_evidence_of(
        session,
        kind=HOLD_KIND,
        reference=case.number,
        reason=f"evidence of open case {case.number}: {case.title}",
        actor=actor,
        owners=[(media_kind, owner)],
    )
    audit.record(
        session,
        actor=actor,
        action="case.add",
        target=f"case:{case.number}",
        detail={"kind": kind, "id": owner},
    )
    if kind == "bodyworn":
        custody.record(session, owner, actor=actor, action="case_add", reason=note, case=case.number)
    return row


def remove_item(session: Session, number: str, *, kind: str, ref_id: str, reason: str, actor: str) -> None:
    """Takes evidence out of a case; the case's hold is placed again over what remains."""
    case = get(session, number)
    row = session.get(CaseItem, (case.id, kind, ref_id))
    if row is None:
        raise NotFound(f"{kind} {ref_id} is not in case {number}")
    session.delete(row)
    session.flush()
    if case.status == "open":
        media_owners.release_holds_of(
            session, kind=HOLD_KIND, reference=case.number, reason=reason, actor=actor
        )
        _hold_all(session, case, actor=actor)
    audit.record(
        session,
        actor=actor,
        action="case.remove",
        target=f"case:{case.number}",
        detail={"kind": kind, "id": ref_id, "reason": reason},
    )
    if kind == "bodyworn":
        custody.record(session, ref_id, actor=actor, action="case_remove", reason=reason, case=case.number)


def _hold_all(session: Session, case: EvidenceCase, *, actor: str) -> None:
    owners = [
        ("challan_notice" if i.kind == "challan" else i.kind, i.ref_id) for i in items_of(session, case.id)
    ]
    if owners:
        media_owners.hold_evidence_of(
            session,
            kind=HOLD_KIND,
            reference=case.number,
            reason=f"evidence of open case {case.number}: {case.title}",
            actor=actor,
            owners=owners,
        )


def items_of(session: Session, case_id: str) -> Sequence[CaseItem]:
    """Returns the evidence of a case in the order it was added."""
    return session.scalars(
        select(CaseItem).where(CaseItem.case_id == case_id).order_by(CaseItem.added_at)
    ).all()


def close(session: Session, number: str, *, reason: str, actor: str) -> EvidenceCase:
    """Closes a case: its hold is released and its evidence falls back to its own retention."""
    from safecity.core.clock import utcnow

    case = open_case(session, number)
    case.status, case.closed_at, case.closed_by, case.close_reason = "closed", utcnow(), actor, reason[:500]
    media_owners.release_holds_of(session, kind=HOLD_KIND, reference=case.number, reason=reason, actor=actor)
    audit.record(
        session, actor=actor, action="case.close", target=f"case:{case.number}", detail={"reason": reason}
    )
    for row in items_of(session, case.id):
        if row.kind == "bodyworn":
            custody.record(
                session, row.ref_id, actor=actor, action="case_closed", reason=reason, case=case.number
            )
    return case


def reopen(session: Session, number: str, *, reason: str, actor: str) -> EvidenceCase:
    """Opens a closed case again and holds its evidence again."""
    case = get(session, number)
    if case.status == "open":
        raise Conflict(f"case {number} is open already")
    case.status, case.closed_at, case.closed_by, case.close_reason = "open", None, None, None
    _hold_all(session, case, actor=actor)
    audit.record(
        session, actor=actor, action="case.reopen", target=f"case:{case.number}", detail={"reason": reason}
    )
    return case


def list_cases(session: Session, *, status: str | None = None, limit: int = 200) -> Sequence[EvidenceCase]:
    """Returns cases, newest first."""
    stmt = select(EvidenceCase).order_by(EvidenceCase.created_at.desc()).limit(limit)
    if status:
        stmt = stmt.where(EvidenceCase.status == status)
    return session.scalars(stmt).all()


def out(session: Session, case: EvidenceCase) -> CaseOut:
    """Returns a case with its evidence and the hold that protects it."""
    shown = CaseOut.model_validate(case)
    shown.items = [CaseItemOut.model_validate(i) for i in items_of(session, case.id)]
    hold = media_owners.open_hold(session, kind=HOLD_KIND, reference=case.number)
    shown.hold_id = hold.id if hold is not None else None
    return shown
