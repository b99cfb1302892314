"""Retention: footage leaves when its camera's policy says so, or oldest-first when a volume nears full.

Continuous footage is kept `continuous_days`, footage around events (alerts, violations, faults)
`event_days`, per camera, district (camera group) or camera type. Protected footage (an open alert,
challan, incident or case) is never deleted. Every deletion is written to the audit log.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from safecity.audit import service as audit
from safecity.cameras.models import Camera
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.recordings import service
from safecity.recordings.models import RecordingHold, RecordingSegment, RetentionReport
from safecity.settings import Settings

log = logging.getLogger(__name__)

_BATCH = 2000


@dataclass
class _Holds:
    """A camera's holds, to ask whether a segment is protected or event footage."""

    protections: list[tuple[datetime, datetime]] = field(default_factory=list)
    events: list[tuple[datetime, datetime]] = field(default_factory=list)

    def protected(self, seg: RecordingSegment) -> bool:
        return any(s < seg.end and e > seg.start for s, e in self.protections)

    def event(self, seg: RecordingSegment) -> bool:
        return any(s < seg.end and e > seg.start for s, e in self.events)


def _holds(session: Session, camera_id: str, *, before: datetime) -> _Holds:
    rows = session.scalars(
        select(RecordingHold).where(
            RecordingHold.camera_id == camera_id,
            RecordingHold.start < before,
            RecordingHold.released_at.is_(None),
        )
    ).all()
    holds = _Holds()
    for row in rows:
        (holds.protections if row.kind == "protect" else holds.events).append((row.start, row.end))
    return holds


def apply_retention(session: Session, *, settings: Settings, now: datetime | None = None) -> RetentionReport:
    """Deletes footage past its retention, then oldest unprotected footage on volumes over budget."""
    now = now or utcnow()
    report = RetentionReport()
    camera_ids = session.scalars(select(RecordingSegment.camera_id).distinct()).all()
    for camera_id in camera_ids:
        _age_pass(session, settings, camera_id, now, report)
    volumes = session.scalars(select(RecordingSegment.volume).distinct()).all()
    for volume in volumes:
        _budget_pass(session, settings, volume, report)
    return report


def make_room(ctx: Context, *, volume: str) -> RetentionReport:
    """Frees space on one volume (a recorder found it full): oldest unprotected footage goes first."""
    report = RetentionReport()
    try:
        with ctx.db.session() as session:
            _budget_pass(session, ctx.settings, volume, report)
    except Exception as exc:  # the recorder keeps its disk_full state and asks again later
        log.warning("could not make room on volume %s: %s", volume, exc)
    return report


def _age_pass(
    session: Session, settings: Settings, camera_id: str, now: datetime, report: RetentionReport
) -> None:
    continuous_days, event_days = service.policy_for(session, session.get(Camera, camera_id))
    continuous_cut = now - timedelta(days=continuous_days)
    event_cut = now - timedelta(days=event_days)
    cutoff = max(continuous_cut, event_cut)
    holds = _holds(session, camera_id, before=cutoff)
    last_start: datetime | None = None
    while True:
        query = (
            select(RecordingSegment)
            .where(RecordingSegment.camera_id == camera_id, RecordingSegment.end < cutoff)
            .order_by(RecordingSegment.start)
            .limit(_BATCH)
        )
        if last_start is not None:
            query = query.where(RecordingSegment.start > last_start)
        batch = session.scalars(query).all()
        if not batch:
            break
        last_start = batch[-1].start
        doomed: dict[str, list[RecordingSegment]] = {}
        for seg in batch:
            if holds.protected(seg):
                report.protected_kept += 1
            elif holds.event(seg):
                if seg.end < event_cut:
                    doomed.setdefault("event_retention", []).append(seg)
            elif seg.end < continuous_cut:
                doomed.setdefault("continuous_retention", []).append(seg)
        for reason, segs in doomed.items():
            _delete(
                session,
                settings,
                segs,
                reason=reason,
                report=report,
                policy={"continuous_days": continuous_days, "event_days": event_days},
            )
        if len(batch) < _BATCH:
            break
    # Event marks whose footage is past the event retention have nothing left to keep.
    session.execute(
        delete(RecordingHold).where(
            RecordingHold.camera_id == camera_id, RecordingHold.kind == "event", RecordingHold.end < event_cut
        )
    )


def _budget_pass(session: Session, settings: Settings, volume: str, report: RetentionReport) -> None:
    try:
        root, reserve = service.volume_root(session, volume, settings)
    except Exception as exc:
        report.volumes[volume] = f"not configured: {exc}"
        return
    if not root.is_dir():
        report.volumes[volume] = "missing"
        return
    budget, _ = service.volume_budget(session, volume)
    used = service.used_bytes(session, volume)
    free = shutil.disk_usage(root).free
    over = max(used - budget if budget is not None else 0, reserve - free, 0)
    if over <= 0:
        report.volumes[volume] = "ok"
        return
    freed = 0
    holds_by_camera: dict[str, _Holds] = {}
    last_start: datetime | None = None
    now = utcnow()
    # Two rounds: continuous footage first, then event footage; protected footage never.
    for round_ in ("continuous", "event"):
        last_start = None
        while freed < over:
            query = (
                select(RecordingSegment)
                .where(RecordingSegment.volume == volume)
                .order_by(RecordingSegment.start)
                .limit(_BATCH)
            )
            if last_start is not None:
                query = query.where(RecordingSegment.start > last_start)
            batch = session.scalars(query).all()
            if not batch:
                break
            last_start = batch[-1].start
            doomed: list[RecordingSegment] = []
            for seg in batch:
                holds = holds_by_camera.get(seg.camera_id)
                if holds is None:
                    holds = holds_by_camera[seg.camera_id] = _holds(session, seg.camera_id, before=now)
                if holds.protected(seg) or (round_ == "continuous" and holds.event(seg)):
                    continue
                doomed.append(seg)
                freed += seg.bytes
                if freed >= over:
                    break
            _delete(
                session,
                settings,
                doomed,
                reason="storage_budget",
                report=report,
                policy={"volume": volume, "budget_bytes": budget, "reserve_bytes": reserve},
            )
        if freed >= over:
            break
    report.volumes[volume] = "ok" if freed >= over else "full: only protected footage is left"


def _delete(
    session: Session,
    settings: Settings,
    segments: Sequence[RecordingSegment],
    *,
    reason: str,
    report: RetentionReport,
    policy: dict[str, object],
) -> None:
    """Removes segment files and their index rows, and logs one audit entry per camera."""
    by_camera: dict[str, list[RecordingSegment]] = {}
    for seg in segments:
        by_camera.setdefault(seg.camera_id, []).append(seg)
    for camera_id, segs in by_camera.items():
        missing = 0
        for seg in segs:
            path: Path = service.segment_file(session, seg, settings)
            try:
                path.unlink()
            except FileNotFoundError:
                missing += 1
        service.delete_segments(session, segs)
        size = sum(s.bytes for s in segs)
        audit.record(
            session,
            actor="retention",
            action="recordings.delete",
            target=camera_id,
            detail={
                "reason": reason,
                "segments": len(segs),
                "bytes": size,
                "from": min(s.start for s in segs),
                "to": max(s.end for s in segs),
                "files_already_gone": missing,
                "policy": policy,
                "ids": [s.id for s in segs[:200]],
            },
        )
        report.deleted_segments += len(segs)
        report.deleted_bytes += size
        report.by_reason[reason] = report.by_reason.get(reason, 0) + len(segs)
