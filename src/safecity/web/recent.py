"""The live event list's recent past, so a reload does not start it empty: `GET /api/live/recent`.

The live socket only carries what happens while a page is open. This answers with the newest rows the
domains keep (plate reads, camera health changes, unit changes, violations), shaped like the socket's
messages and filtered by the same rule (`live.types_for`): a page shows them as if it had been open.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from safecity.accounts.api import current_principal
from safecity.accounts.service import Principal
from safecity.anpr.models import PlateReadRow
from safecity.audit import service as audit
from safecity.cameras.models import Camera
from safecity.core.clock import as_utc
from safecity.core.http import DbSession
from safecity.dispatch.models import Unit
from safecity.enforcement.models import Violation
from safecity.web.live import types_for

router = APIRouter(prefix="/api/live", tags=["live"])


def _plate_reads(session: Session, limit: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(PlateReadRow).order_by(PlateReadRow.at.desc()).limit(limit))
    return [
        {
            "type": "plate_read",
            "at": r.at,
            "camera_id": r.camera_id,
            "plate": r.plate,
            "confidence": r.confidence,
        }
        for r in rows
    ]


def _health(session: Session, limit: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Camera)
        .where(Camera.health_since.is_not(None))
        .order_by(Camera.health_since.desc())
        .limit(limit)
    )
    return [
        {"type": "camera_health", "at": c.health_since, "camera_id": c.id, "state": c.health_state}
        for c in rows
    ]


def _units(session: Session, limit: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(Unit).order_by(Unit.updated_at.desc()).limit(limit))
    return [
        {
            "type": "unit",
            "at": u.updated_at,
            "unit_id": u.id,
            "callsign": u.callsign,
            "status": u.status,
            "latitude": u.latitude,
            "longitude": u.longitude,
        }
        for u in rows
    ]


def _violations(session: Session, limit: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(Violation).order_by(Violation.at.desc()).limit(limit))
    return [
        {
            "type": "violation_candidate",
            "at": v.at,
            "camera_id": v.camera_id,
            "offence": v.offence,
            "plate": v.plate,
        }
        for v in rows
    ]


SOURCES = {
    "plate_read": _plate_reads,
    "camera_health": _health,
    "unit": _units,
    "violation_candidate": _violations,
}


def recent(session: Session, principal: Principal, limit: int) -> list[dict[str, Any]]:
    """The newest events `principal` may see, newest first, shaped like the live socket's messages."""
    allowed = types_for(principal)
    found: list[dict[str, Any]] = []
    for kind, source in SOURCES.items():
        if kind in allowed:
            found.extend(source(session, limit))
    for message in found:
        message["channel"] = "event"
        message["at"] = as_utc(message["at"])
    found.sort(key=lambda m: m["at"], reverse=True)
    return found[:limit]


@router.get("/recent", summary="The newest events this user may see, shaped like the live socket's messages")
def recent_events(
    session: DbSession,
    principal: Annotated[Principal, Depends(current_principal)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:
    messages = recent(session, principal, limit)
    if any(m["type"] == "plate_read" for m in messages):
        # Plates in the list are a look at who drove where: on record like a search.
        audit.record(
            session, actor=principal.username, action="live.recent", detail={"events": len(messages)}
        )
    return [{**m, "at": m["at"].isoformat()} for m in messages]
