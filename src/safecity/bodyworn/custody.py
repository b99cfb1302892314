"""The chain of custody of a body-worn item: every act on it is an entry of the audit chain.

`record` appends the entry (who, what, why) to the project's hash-chained audit log in the caller's
transaction and indexes it by item, so the custody log of one item is read without walking the whole
log, and tampering with it shows when the chain is verified (`safecity audit verify`). `report_pdf`
prints an item's custody for a court.

    custody.record(session, item.id, actor="inspector.rana", action="download", reason="FIR 112/2026")
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy import select
from sqlalchemy.orm import Session

from safecity import __version__
from safecity.audit import service as audit
from safecity.audit.models import AuditEntry
from safecity.bodyworn.models import BodyWornCustody, BodyWornItem, CustodyEntry
from safecity.core.clock import format_moment, utcnow
from safecity.core.db import after_commit

PREFIX = "bodyworn."
STREAM_EVERY_S = 600.0
_streams: dict[tuple[str, str], float] = {}


def target(item_id: str) -> str:
    """Returns how the audit log names an item."""
    return f"bodyworn:{item_id}"


def _iso(value: Any) -> Any:
    """Returns `value` with its moments as ISO 8601 text (the audit row's JSON would write them otherwise)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_iso(v) for v in value]
    return value


def record(
    session: Session, item_id: str, *, actor: str, action: str, reason: str = "", **detail: Any
) -> AuditEntry:
    """Appends `action` on item `item_id` to the audit chain (who, why) in the caller's transaction."""
    entry = audit.record(
        session,
        actor=actor,
        action=PREFIX + action,
        target=target(item_id),
        detail=_iso({"reason": reason, **detail}),
    )
    session.add(BodyWornCustody(item_id=item_id, seq=entry.seq))
    session.flush()
    return entry


def record_refusal(
    session: Session, item_id: str, *, actor: str, action: str, reason: str, **detail: Any
) -> None:
    """Records a refused act and commits at once: the refusal that follows rolls the request back, and the
    record of it must stay. Callers refuse before they change anything, so only the record is committed."""
    record(session, item_id, actor=actor, action=action, reason=reason, **detail)
    session.commit()


def record_stream(session: Session, item_id: str, *, actor: str, reason: str = "") -> AuditEntry | None:
    """Records that `actor` streams the item, once per viewer and item every ten minutes in this process.

    A player asks for the file in many ranges while it plays; one entry per stretch of watching says
    who watched it and when, where one per range would drown the log.
    """
    key = (actor, item_id)
    now = time.monotonic()
    last = _streams.get(key)
    if last is not None and now - last < STREAM_EVERY_S:
        return None
    if len(_streams) > 10_000:
        for stale in [k for k, at in _streams.items() if now - at >= STREAM_EVERY_S]:
            del _streams[stale]

    def seen() -> None:
        _streams[key] = now

    after_commit(session, seen)
    return record(session, item_id, actor=actor, action="stream", reason=reason, every_s=STREAM_EVERY_S)


def entries_of(session: Session, item_id: str) -> list[CustodyEntry]:
    """Returns the custody log of an item, oldest first, read from the audit chain."""
    seqs = session.scalars(
        select(BodyWornCustody.seq).where(BodyWornCustody.item_id == item_id).order_by(BodyWornCustody.seq)
    ).all()
    found = []
    for entry in audit.by_seqs(session, seqs):
        detail = dict(entry.detail or {})
        reason = str(detail.pop("reason", "") or "")
        found.append(
            CustodyEntry(
                seq=entry.seq,
                at=entry.at,
                actor=entry.actor,
                action=entry.action.removeprefix(PREFIX),
                reason=reason,
                detail=detail,
                hash=entry.hash,
            )
        )
    return found


def _describe(entry: CustodyEntry) -> str:
    parts = [
        f"{k}: {v}" for k, v in entry.detail.items() if k not in ("every_s",) and v not in (None, "", [])
    ]
    return "; ".join(parts)[:300]


def report_pdf(
    item: BodyWornItem,
    entries: Sequence[CustodyEntry],
    *,
    holds: Sequence[dict[str, Any]] = (),
    cases: Sequence[str] = (),
    generated_by: str,
    generated_at: datetime | None = None,
) -> bytes:
    """Returns the custody report of an item as a PDF: what it is, its digest, and every act on it."""
    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7.5, leading=9)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=14 * mm,
        rightMargin=14 * mm,
        topMargin=14 * mm,
        bottomMargin=14 * mm,
        title=f"Custody report {item.id}",
        author=f"SafeCity {__version__}",
    )
    when = generated_at or utcnow()
    facts = [
        ["Item", item.id],
        ["File", item.filename],
        ["SHA-256", item.sha256],
        ["Size", f"{item.bytes:,} bytes"],
        ["Officer / device", f"{item.officer} / {item.device}"],
        ["Recorded", format_moment(item.recorded_at) if item.recorded_at else "unknown"],
        ["Duration", f"{item.duration_s:.1f} s" if item.duration_s else "unknown"],
        ["Received", f"{format_moment(item.ingested_at)} from {item.source} by {item.uploaded_by}"],
        ["Categories", ", ".join(item.categories) or "uncategorised"],
        ["Access", item.access_class + (", do not disclose" if item.do_not_disclose else "")],
        ["Status", item.status],
        [
            "Last verified",
            (format_moment(item.verified_at) + (" — matches" if item.verified_ok else " — MISMATCH"))
            if item.verified_at
            else "not yet",
        ],
        ["Cases", ", ".join(cases) or "none"],
        ["Holds", "; ".join(f"{h['kind']} {h['reference']} ({h['id']})" for h in holds) or "none"],
    ]
    if item.derived_from:
        facts.append(["Derived from", f"{item.derived_from}: {item.operations}"])
    story: list[Any] = [
        Paragraph("Chain of custody — body-worn camera recording", styles["Title"]),
        Paragraph(
            f"Generated {format_moment(when)} by {generated_by} (SafeCity {__version__}). Each entry below "
            "is a row of SafeCity's hash-chained audit log; its hash can be checked with "
            "<font face='Courier'>safecity audit verify</font>.",
            small,
        ),
        Spacer(1, 4 * mm),
    ]
    table = Table(
        [[Paragraph(k, small), Paragraph(str(v), small)] for k, v in facts], colWidths=[35 * mm, 147 * mm]
    )
    table.setStyle(
        TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")])
    )
    story += [
        table,
        Spacer(1, 5 * mm),
        Paragraph(f"Custody log ({len(entries)} entries)", styles["Heading3"]),
    ]
    rows = [["#", "when (UTC)", "who", "what", "why / detail", "entry hash"]]
    for entry in entries:
        why = entry.reason + (" — " if entry.reason and entry.detail else "") + _describe(entry)
        rows.append(
            [
                str(entry.seq),
                entry.at.strftime("%Y-%m-%d %H:%M:%S"),
                Paragraph(entry.actor, small),
                entry.action,
                Paragraph(why or "", small),
                Paragraph(entry.hash[:16] + "…", small),
            ]
        )
    log = Table(rows, colWidths=[12 * mm, 30 * mm, 26 * mm, 22 * mm, 66 * mm, 26 * mm], repeatRows=1)
    log.setStyle(
        TableStyle(
            [
                ("FONTSIZE", (0, 0), (-1, -1), 7.5),
                ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story.append(log)
    doc.build(story)
    return out.getvalue()
