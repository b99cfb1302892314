"""Sensitive areas: groups of cameras that log every entry and exit of the vehicles they must watch.

A vehicle *enters* with its first read at any of the area's cameras and *leaves* when an exit camera
(or a read moving in the exit direction) sees it, or when no camera of the area has read it for the
area's `exit_after_minutes`. Mode `listed` logs hot-listed vehicles and the area's own list; mode
`all` logs every vehicle. Each area says which entries and exits raise an alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from safecity.alerts import service as alerts
from safecity.alerts.models import Alert
from safecity.anpr.models import AreaIn, AreaVisit, PlateReadRow, SensitiveArea
from safecity.audit import service as audit
from safecity.cameras import service as cameras
from safecity.core.clock import utcnow
from safecity.core.db import get_or_raise
from safecity.core.errors import Conflict, InvalidInput, NotFound
from safecity.core.ids import new_id

Raised = tuple[Alert, bool]


def _check_cameras(session: Session, data: AreaIn) -> None:
    unknown = []
    for camera_id in dict.fromkeys([*data.camera_ids, *data.exit_camera_ids]):
        try:
            cameras.get(session, camera_id)
        except NotFound:
            unknown.append(camera_id)
    if unknown:
        raise InvalidInput(
            f"unknown camera(s): {', '.join(unknown)}", hint="register the cameras first or fix the ids"
        )


def _apply(area: SensitiveArea, data: AreaIn) -> None:
    for name, value in data.model_dump().items():
        setattr(area, name, value)
    area.updated_at = utcnow()


def create_area(session: Session, data: AreaIn, *, actor: str) -> SensitiveArea:
    """Defines a sensitive area; a name already in use is a Conflict."""
    if session.scalar(select(SensitiveArea.id).where(SensitiveArea.name == data.name)) is not None:
        raise Conflict(f"an area named {data.name!r} exists", hint="choose another name or edit that area")
    _check_cameras(session, data)
    area = SensitiveArea(id=new_id(), created_by=actor, created_at=utcnow())
    _apply(area, data)
    session.add(area)
    session.flush()
    audit.record(session, actor=actor, action="anpr.area_create", target=area.id, detail=data.model_dump())
    return area


def get_area(session: Session, area_id: str) -> SensitiveArea:
    """Returns a sensitive area or raises NotFound."""
    return get_or_raise(session, SensitiveArea, area_id, what="sensitive area")


def update_area(session: Session, area_id: str, data: AreaIn, *, actor: str) -> SensitiveArea:
    """Replaces an area's cameras, list and rules."""
    area = get_area(session, area_id)
    clash = session.scalar(
        select(SensitiveArea.id).where(SensitiveArea.name == data.name, SensitiveArea.id != area_id)
    )
    if clash is not None:
        raise Conflict(f"an area named {data.name!r} exists", hint="choose another name")
    _check_cameras(session, data)
    _apply(area, data)
    audit.record(session, actor=actor, action="anpr.area_update", target=area_id, detail=data.model_dump())
    return area


def delete_area(session: Session, area_id: str, *, actor: str) -> None:
    """Removes an area; its visit log stays until the retention period purges it."""
    area = get_area(session, area_id)
    session.delete(area)
    audit.record(session, actor=actor, action="anpr.area_delete", target=area_id, detail={"name": area.name})


def list_areas(session: Session) -> Sequence[SensitiveArea]:
    """Returns every sensitive area by name."""
    return session.scalars(select(SensitiveArea).order_by(SensitiveArea.name)).all()


def list_visits(
    session: Session,
    *,
    actor: str,
    area_id: str | None = None,
    plate: str | None = None,
    open_only: bool = False,
    limit: int = 500,
) -> Sequence[AreaVisit]:
    """Returns area visits, newest first (audited: it shows vehicles' movements)."""
    stmt = select(AreaVisit).order_by(AreaVisit.last_seen_at.desc()).limit(limit)
    if area_id:
        get_area(session, area_id)
        stmt = stmt.where(AreaVisit.area_id == area_id)
    if plate:
        stmt = stmt.where(AreaVisit.plate == plate)
    if open_only:
        stmt = stmt.where(AreaVisit.exited_at.is_(None))
    rows = session.scalars(stmt).all()
    audit.record(
        session,
        actor=actor,
        action="anpr.area_visits",
        target=area_id or "",
        detail={"plate": plate, "open_only": open_only, "results": len(rows)},
    )
    return rows


def _alert(
    session: Session, area: SensitiveArea, visit: AreaVisit, *, what: str, source_key: str, at: datetime
) -> Raised:
    verb = "entered" if what == "entry" else "left"
    listed = f" ({', '.join(visit.lists)})" if visit.lists else ""
    camera = visit.entry_camera_id if what == "entry" else visit.last_camera_id
    return alerts.raise_alert(
        session,
        kind="sensitive_area",
        priority=area.alert_priority,
        title=f"{visit.plate}{listed} {verb} {area.name}"[:300],
        source_key=source_key,
        dedup_key=f"area:{area.id}:{visit.plate}:{what}",
        camera_id=camera,
        evidence={"plate": visit.plate, "area": area.name, "visit_id": visit.id, "at": at.isoformat()},
        detail={"area_id": area.id, "what": what, "lists": visit.lists, "visit_id": visit.id},
        dedup_window=timedelta(minutes=area.exit_after_minutes),
    )


def _wants_alert(area: SensitiveArea, visit: AreaVisit, what: str) -> bool:
    rule = area.alert_on_entry if what == "entry" else area.alert_on_exit
    return rule and (visit.listed or area.alert_unlisted)


def log_read(
    session: Session,
    read: PlateReadRow,
    *,
    lists: Sequence[str],
    areas: Sequence[SensitiveArea] | None = None,
) -> list[Raised]:
    """Logs a read's entry into, stay in or exit from each area its camera is in; returns alerts raised.

    `areas` is the list of areas when the caller already has it (a batch of reads reads it once).
    """
    if not read.camera_id:
        return []
    raised: list[Raised] = []
    for area in list_areas(session) if areas is None else areas:
        if read.camera_id not in area.camera_ids and read.camera_id not in area.exit_camera_ids:
            continue
        area_listed = read.plate in area.plates
        listed = bool(lists) or area_listed
        if area.mode == "listed" and not listed:
            continue
        is_exit = read.camera_id in area.exit_camera_ids or (
            area.exit_direction is not None and read.direction == area.exit_direction
        )
        visit = session.scalars(
            select(AreaVisit)
            .where(AreaVisit.area_id == area.id, AreaVisit.plate == read.plate, AreaVisit.exited_at.is_(None))
            .order_by(AreaVisit.last_seen_at.desc())
            .limit(1)
        ).first()
        if visit is not None and read.at - visit.last_seen_at > timedelta(minutes=area.exit_after_minutes):
            raised.extend(
                _close(session, area, visit, at=visit.last_seen_at, reason="not_seen", read_id=None)
            )
            visit = None
        if visit is None:
            visit = AreaVisit(
                id=new_id(),
                area_id=area.id,
                plate=read.plate,
                listed=listed,
                lists=[*lists, *(["area"] if area_listed else [])],
                entered_at=None if is_exit else read.at,
                entry_camera_id=None if is_exit else read.camera_id,
                entry_read_id=None if is_exit else read.id,
                last_seen_at=read.at,
                last_camera_id=read.camera_id,
            )
            session.add(visit)
            session.flush()
            if not is_exit and _wants_alert(area, visit, "entry"):
                raised.append(
                    _alert(
                        session,
                        area,
                        visit,
                        what="entry",
                        source_key=f"area:{area.id}:{read.event_key}",
                        at=read.at,
                    )
                )
        elif read.at >= visit.last_seen_at:
            visit.last_seen_at, visit.last_camera_id = read.at, read.camera_id
        if is_exit:
            raised.extend(_close(session, area, visit, at=read.at, reason="exit_camera", read_id=read.id))
    return raised


def _close(
    session: Session, area: SensitiveArea, visit: AreaVisit, *, at: datetime, reason: str, read_id: str | None
) -> list[Raised]:
    visit.exited_at, visit.exit_reason, visit.exit_read_id = at, reason, read_id
    session.flush()
    if not _wants_alert(area, visit, "exit"):
        return []
    return [_alert(session, area, visit, what="exit", source_key=f"area-exit:{visit.id}", at=at)]


def close_stale_visits(session: Session, *, now: datetime | None = None) -> list[Raised]:
    """Closes visits of vehicles no camera of the area has read for its exit time; returns alerts raised."""
    moment = now or utcnow()
    raised: list[Raised] = []
    for area in list_areas(session):
        cutoff = moment - timedelta(minutes=area.exit_after_minutes)
        stale = session.scalars(
            select(AreaVisit).where(
                AreaVisit.area_id == area.id, AreaVisit.exited_at.is_(None), AreaVisit.last_seen_at < cutoff
            )
        ).all()
        for visit in stale:
            raised.extend(
                _close(session, area, visit, at=visit.last_seen_at, reason="not_seen", read_id=None)
            )
    return raised
