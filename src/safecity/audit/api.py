"""The audit log over HTTP, for auditors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from safecity.accounts.api import require
from safecity.accounts.service import Principal
from safecity.audit import service
from safecity.audit.models import AuditOut, VerifyReport
from safecity.core.http import DbSession

router = APIRouter(prefix="/api/audit", tags=["audit"])
Auditor = Annotated[Principal, Depends(require("audit:read"))]


@router.get("", response_model=list[AuditOut], summary="Newest audit entries")
def list_entries(
    session: DbSession,
    principal: Auditor,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> list[AuditOut]:
    rows = service.entries(session, actor=actor, action=action, since=since, limit=limit)
    out = [AuditOut.model_validate(r) for r in rows]
    # Reading the log is itself a sensitive read.
    service.record(
        session, actor=principal.username, action="audit.read", detail={"actor": actor, "action": action}
    )
    return out


@router.get("/verify", response_model=VerifyReport, summary="Check the hash chain for tampering")
def verify(session: DbSession, principal: Auditor) -> VerifyReport:
    report = service.verify(session)
    service.record(session, actor=principal.username, action="audit.verify", detail={"ok": report.ok})
    return report
