"""Camera maintenance: health history, uptime, faults that close themselves, and maintenance tickets."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from safecity.accounts import service as accounts
from safecity.accounts.permissions import allows
from safecity.alerts import service as alerts
from safecity.alerts.models import OPEN_STATES, Alert
from safecity.audit import service as audit
from safecity.cameras import service as cameras
from safecity.core.clock import as_utc, display_zone, format_moment, utcnow, zone_named
from safecity.core.db import get_or_raise
from safecity.core.errors import Conflict, InvalidInput, NotFound
from safecity.core.ids import new_id
from safecity.evidence import service as media_owners
from safecity.maintenance.models import (
    OPEN_TICKET_STATES,
    TICKET_STATES,
    Assignee,
    CameraFault,
    CameraHistory,
    CameraStatus,
    CameraUptime,
    DayUptime,
    FaultOut,
    HealthSpan,
    SpanOut,
    Ticket,
    TicketAction,
    TicketIn,
    UptimeReport,
)

ONLINE = "online"
TEAM_PERMISSION = "maintenance:write"
# Alerts about a camera's faults are raised by the cameras domain under this de-duplication key.
ALERT_KIND = "camera_fault"


def alert_dedup_prefix(camera_id: str) -> str:
    """Returns the start of the de-duplication key of every fault alert of `camera_id`."""
    return f"{ALERT_KIND}:{camera_id}:"


@dataclass
class HealthOutcome:
    """What one health report changed: the fault it opened and the faults it closed."""

    opened: CameraFault | None = None
    closed: list[CameraFault] = field(default_factory=list)

    @property
    def recovered(self) -> bool:
        """Returns whether the camera came back online with this report."""
        return any(f.closed_by == "recovered" for f in self.closed)


# --- health history and faults ----------------------------------------------------------------------


def record_health(
    session: Session,
    *,
    camera_id: str,
    state: str,
    detail: str,
    since: datetime,
    event_key: str,
    frame_ref: str | None = None,
    fps: float | None = None,
) -> HealthOutcome:
    """Adds a health report to the camera's history; opens, supersedes or closes its fault.

    A report of the state the camera is already in only refreshes the detail. A report older than the
    newest one (a late delivery) is slotted into the history, but faults follow only the newest state.
    """
    since = as_utc(since)
    detail = detail[:500]
    # The frame a camera sent with its report is that camera's health evidence to show.
    media_owners.own(session, "camera_fault", camera_id, [frame_ref], at=since)
    # Locking the span before this moment serialises two servers handling the same camera at once.
    prev = session.scalars(
        select(HealthSpan)
        .where(HealthSpan.camera_id == camera_id, HealthSpan.since <= since)
        .order_by(HealthSpan.since.desc())
        .limit(1)
        .with_for_update()
    ).first()
    nxt = session.scalars(
        select(HealthSpan)
        .where(HealthSpan.camera_id == camera_id, HealthSpan.since > since)
        .order_by(HealthSpan.since)
        .limit(1)
    ).first()
    if prev is not None and prev.state == state:
        if nxt is None:
            _refresh(session, prev, detail=detail, frame_ref=frame_ref, fps=fps)
        return HealthOutcome()
    if nxt is not None and nxt.state == state:
        # A late report of the state that followed: that state simply began earlier.
        nxt.since = since
        if prev is not None:
            prev.until = since
        return HealthOutcome()
    if prev is not None:
        prev.until = since
    session.add(
        HealthSpan(
            id=new_id(),
            camera_id=camera_id,
            state=state,
            detail=detail,
            since=since,
            until=nxt.since if nxt is not None else None,
            frame_ref=frame_ref,
            fps=fps,
            event_key=event_key,
        )
    )
    if nxt is not None:
        return HealthOutcome()
    return _follow_fault(
        session,
        camera_id=camera_id,
        state=state,
        detail=detail,
        since=since,
        event_key=event_key,
        frame_ref=frame_ref,
    )


def _refresh(
    session: Session, span: HealthSpan, *, detail: str, frame_ref: str | None, fps: float | None
) -> None:
    if detail:
        span.detail = detail
    span.frame_ref = span.frame_ref or frame_ref
    span.fps = fps if fps is not None else span.fps
    fault = open_fault(session, span.camera_id)
    if fault is not None and fault.state == span.state:
        fault.detail = span.detail
        fault.frame_ref = fault.frame_ref or frame_ref


def _follow_fault(
    session: Session,
    *,
    camera_id: str,
    state: str,
    detail: str,
    since: datetime,
    event_key: str,
    frame_ref: str | None,
) -> HealthOutcome:
    outcome = HealthOutcome()
    fault = open_fault(session, camera_id)
    outage_since = fault.outage_since if fault is not None else since
    if fault is not None:
        if state == ONLINE:
            lasted = _duration(since - fault.outage_since)
            _close_fault(fault, at=since, by="recovered", resolution=f"camera online again after {lasted}")
            _note_open_tickets(session, camera_id, note=f"camera online again after {lasted}")
        else:
            _close_fault(fault, at=since, by="superseded", resolution=f"became {state.replace('_', ' ')}")
        outcome.closed.append(fault)
    if state != ONLINE:
        outcome.opened = CameraFault(
            id=new_id(),
            camera_id=camera_id,
            state=state,
            detail=detail,
            started_at=since,
            outage_since=outage_since,
            frame_ref=frame_ref,
            event_key=event_key,
        )
        session.add(outcome.opened)
    session.flush()
    return outcome


def _close_fault(fault: CameraFault, *, at: datetime, by: str, resolution: str) -> None:
    # A report stamped before the fault began (a worker's clock behind) must not end it in the past.
    fault.ended_at = max(at, fault.started_at)
    fault.closed_by, fault.resolution = by, resolution


def _note_open_tickets(session: Session, camera_id: str, *, note: str) -> None:
    for ticket in session.scalars(
        select(Ticket).where(Ticket.camera_id == camera_id, Ticket.status.in_(OPEN_TICKET_STATES))
    ):
        session.add(TicketAction(ticket_id=ticket.id, actor="system", action="note", note=note))


def _duration(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def open_fault(session: Session, camera_id: str) -> CameraFault | None:
    """Returns the fault open now on `camera_id`, if any."""
    return session.scalars(
        select(CameraFault)
        .where(CameraFault.camera_id == camera_id, CameraFault.ended_at.is_(None))
        .order_by(CameraFault.started_at.desc())
        .limit(1)
    ).first()


def list_faults(
    session: Session,
    *,
    open_only: bool | None = None,
    camera_id: str | None = None,
    since: datetime | None = None,
    limit: int = 500,
) -> Sequence[CameraFault]:
    """Returns faults, newest first: open ones only, closed ones only (open_only=False), or both."""
    query = select(CameraFault).order_by(CameraFault.started_at.desc()).limit(limit)
    if open_only is True:
        query = query.where(CameraFault.ended_at.is_(None))
    elif open_only is False:
        query = query.where(CameraFault.ended_at.is_not(None))
    if camera_id:
        query = query.where(CameraFault.camera_id == camera_id)
    if since is not None:
        query = query.where(or_(CameraFault.ended_at.is_(None), CameraFault.ended_at >= since))
    return session.scalars(query).all()


def close_fault_alerts(session: Session, camera_id: str, *, reason: str = "camera recovered") -> list[Alert]:
    """Closes every open camera-fault alert of a camera that is online again; returns those closed.

    An alert an operator changes at the same moment is left to the operator.
    """
    prefix = alert_dedup_prefix(camera_id)
    closed = []
    # The alerts service filters by kind, not camera; open fault alerts are few (one per camera and fault).
    for alert in alerts.list_alerts(session, kind=ALERT_KIND, open_only=True, limit=100_000):
        if alert.camera_id != camera_id or not alert.dedup_key.startswith(prefix):
            continue
        try:
            with session.begin_nested():
                closed.append(alerts.act(session, alert.id, action="close", actor="system", reason=reason))
        except Conflict:
            continue
    return closed


def reconcile_fault_alert(session: Session, alert_id: str) -> Alert | None:
    """Closes a camera-fault alert raised for a fault the camera has already recovered from.

    The cameras domain raises the alert while this domain may have seen the recovery first (each reads
    the bus at its own pace); returns the alert if it was closed.
    """
    try:
        alert = alerts.get(session, alert_id)
    except NotFound:
        return None
    if alert.kind != ALERT_KIND or alert.camera_id is None or alert.status not in OPEN_STATES:
        return None
    try:
        began = as_utc(datetime.fromisoformat(str(alert.detail.get("since"))))
    except ValueError:
        return None
    current = current_span(session, alert.camera_id)
    if current is None or current.state != ONLINE or current.since < began:
        return None
    try:
        with session.begin_nested():
            return alerts.act(session, alert.id, action="close", actor="system", reason="camera recovered")
    except Conflict:
        return None


def current_span(session: Session, camera_id: str) -> HealthSpan | None:
    """Returns the health span a camera is in now, if it ever reported."""
    return session.scalars(
        select(HealthSpan)
        .where(HealthSpan.camera_id == camera_id, HealthSpan.until.is_(None))
        .order_by(HealthSpan.since.desc())
        .limit(1)
    ).first()


def spans_between(
    session: Session, *, start: datetime, end: datetime, camera_ids: Iterable[str] | None = None
) -> Sequence[HealthSpan]:
    """Returns the health spans that overlap [start, end), by camera and time."""
    query = (
        select(HealthSpan)
        .where(HealthSpan.since < end, or_(HealthSpan.until.is_(None), HealthSpan.until > start))
        .order_by(HealthSpan.camera_id, HealthSpan.since)
    )
    if camera_ids is not None:
        query = query.where(HealthSpan.camera_id.in_(list(camera_ids)))
    return session.scalars(query).all()


# --- uptime -------------------------------------------------------------------------------------------


def resolve_timezone(name: str | None) -> ZoneInfo:
    """Returns the time zone called `name` (None: the display zone), or raises InvalidInput."""
    if not name:
        return display_zone()
    try:
        return zone_named(name)
    except ValueError as exc:
        raise InvalidInput(str(exc), hint="leave it out for the display time zone") from None


Day = tuple[date, datetime, datetime]


def day_windows(*, days: int, tz: ZoneInfo, now: datetime) -> list[Day]:
    """Returns the last `days` local days (today last) as (day, start, end) with UTC bounds."""
    if days < 1:
        raise InvalidInput(f"days must be at least 1, not {days}", hint="ask for 1 to 90 days")
    today = as_utc(now).astimezone(tz).date()
    windows = []
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        # Local midnights converted to UTC: a day is 24 h here, but 23 or 25 h where clocks change.
        start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
        after = day + timedelta(days=1)
        end = datetime(after.year, after.month, after.day, tzinfo=tz).astimezone(UTC)
        windows.append((day, start, end))
    return windows


class Stretch(Protocol):
    """Anything with a health state and the moments it began and ended (a span, or a lighter row)."""

    @property
    def state(self) -> str: ...
    @property
    def since(self) -> datetime: ...
    @property
    def until(self) -> datetime | None: ...


class _Row(NamedTuple):
    camera_id: str
    state: str
    detail: str
    since: datetime
    until: datetime | None


def daily_uptime(spans: Iterable[Stretch], windows: Sequence[Day], *, now: datetime) -> list[DayUptime]:
    """Returns, per day window, the seconds online and with a known state, clipped to that day and now."""
    # Plain seconds rather than datetimes: a city's week is tens of thousands of spans.
    cut = as_utc(now).timestamp()
    bounds = [(start.timestamp(), end.timestamp()) for _, start, end in windows]
    online = [0.0] * len(windows)
    known = [0.0] * len(windows)
    for span in spans:
        begin = span.since.timestamp()
        finish = min(span.until.timestamp(), cut) if span.until is not None else cut
        is_online = span.state == ONLINE
        for i, (start, end) in enumerate(bounds):
            overlap = min(finish, end) - max(begin, start)
            if overlap > 0:
                known[i] += overlap
                if is_online:
                    online[i] += overlap
    return [
        DayUptime(
            day=day,
            start=start,
            end=end,
            online_s=round(online[i], 1),
            known_s=round(known[i], 1),
            uptime=round(online[i] / known[i], 4) if known[i] > 0 else None,
        )
        for i, (day, start, end) in enumerate(windows)
    ]


def _overall(days: Sequence[DayUptime]) -> float | None:
    known = sum(d.known_s for d in days)
    return round(sum(d.online_s for d in days) / known, 4) if known > 0 else None


def uptime_report(
    session: Session,
    *,
    days: int,
    tz: str | None = None,
    district: str | None = None,
    now: datetime | None = None,
) -> UptimeReport:
    """Returns uptime per registered camera per local day over the last `days` days, and city-wide."""
    zone = resolve_timezone(tz)
    now = as_utc(now or utcnow())
    windows = day_windows(days=days, tz=zone, now=now)
    registered = cameras.list_cameras(session, district=district, limit=1_000_000)
    ids = None if district is None else [c.id for c in registered]
    by_camera = _spans_by_camera(session, windows, now=now, camera_ids=ids)
    rows = []
    for camera in registered:
        per_day = daily_uptime(by_camera.get(camera.id, []), windows, now=now)
        rows.append(
            CameraUptime(
                camera_id=camera.id,
                name=camera.name,
                district=camera.district,
                days=per_day,
                uptime=_overall(per_day),
            )
        )
    city = [
        DayUptime(
            day=day,
            start=start,
            end=end,
            online_s=round(sum(r.days[i].online_s for r in rows), 1),
            known_s=round(sum(r.days[i].known_s for r in rows), 1),
            uptime=None,
        )
        for i, (day, start, end) in enumerate(windows)
    ]
    for entry in city:
        entry.uptime = round(entry.online_s / entry.known_s, 4) if entry.known_s > 0 else None
    return UptimeReport(
        tz=zone.key, start=windows[0][1], end=now, city=city, uptime=_overall(city), cameras=rows
    )


def _spans_by_camera(
    session: Session, windows: Sequence[Day], *, now: datetime, camera_ids: Sequence[str] | None
) -> dict[str, list[_Row]]:
    # Columns, not ORM objects: building tens of thousands of instances costs more than the query.
    query = (
        select(HealthSpan.camera_id, HealthSpan.state, HealthSpan.detail, HealthSpan.since, HealthSpan.until)
        .where(HealthSpan.since < now, or_(HealthSpan.until.is_(None), HealthSpan.until > windows[0][1]))
        .order_by(HealthSpan.camera_id, HealthSpan.since)
    )
    if camera_ids is not None:
        query = query.where(HealthSpan.camera_id.in_(list(camera_ids)))
    grouped: dict[str, list[_Row]] = defaultdict(list)
    for row in session.execute(query):
        grouped[row.camera_id].append(_Row(*row))
    return grouped


# --- the maintenance view ---------------------------------------------------------------------------


def camera_statuses(
    session: Session,
    *,
    tz: str | None = None,
    district: str | None = None,
    state: str | None = None,
    faulty_only: bool = False,
    now: datetime | None = None,
) -> list[CameraStatus]:
    """Returns every registered camera's state, open fault, open tickets, and uptime today and over 7 days."""
    zone = resolve_timezone(tz)
    now = as_utc(now or utcnow())
    windows = day_windows(days=7, tz=zone, now=now)
    registered = cameras.list_cameras(session, district=district, limit=1_000_000)
    ids = None if district is None else [c.id for c in registered]
    by_camera = _spans_by_camera(session, windows, now=now, camera_ids=ids)
    faults = {f.camera_id: f for f in list_faults(session, open_only=True, limit=1_000_000)}
    tickets: dict[str, int] = {
        camera_id: n
        for camera_id, n in session.execute(
            select(Ticket.camera_id, func.count())
            .where(Ticket.status.in_(OPEN_TICKET_STATES))
            .group_by(Ticket.camera_id)
        )
    }
    out = []
    for camera in registered:
        spans = by_camera.get(camera.id, [])
        current = spans[-1] if spans and spans[-1].until is None else None
        # Before the first report this domain saw, fall back to what the registry knows.
        now_state = current.state if current else camera.health_state
        if state and now_state != state:
            continue
        if faulty_only and now_state in (ONLINE, "unknown"):
            continue
        per_day = daily_uptime(spans, windows, now=now)
        fault = faults.get(camera.id)
        out.append(
            CameraStatus(
                camera_id=camera.id,
                name=camera.name,
                kind=camera.kind,
                district=camera.district,
                enabled=camera.enabled,
                state=now_state,
                detail=current.detail if current else camera.health_detail,
                since=current.since if current else camera.health_since,
                open_fault=FaultOut.model_validate(fault) if fault else None,
                open_tickets=int(tickets.get(camera.id, 0)),
                uptime_today=per_day[-1].uptime,
                uptime_7d=_overall(per_day),
                online_today_s=per_day[-1].online_s,
                known_today_s=per_day[-1].known_s,
                online_7d_s=round(sum(d.online_s for d in per_day), 1),
                known_7d_s=round(sum(d.known_s for d in per_day), 1),
            )
        )
    return out


def camera_history(
    session: Session, camera_id: str, *, days: int, tz: str | None = None, now: datetime | None = None
) -> CameraHistory:
    """Returns one camera's health spans, daily uptime and faults over the last `days` local days."""
    camera = cameras.get(session, camera_id)
    zone = resolve_timezone(tz)
    now = as_utc(now or utcnow())
    windows = day_windows(days=days, tz=zone, now=now)
    start = windows[0][1]
    spans = spans_between(session, start=start, end=now, camera_ids=[camera_id])
    faults = list_faults(session, camera_id=camera_id, since=start, limit=10_000)
    return CameraHistory(
        camera_id=camera.id,
        name=camera.name,
        tz=zone.key,
        start=start,
        end=now,
        spans=[SpanOut.model_validate(s) for s in spans],
        days=daily_uptime(spans, windows, now=now),
        faults=[FaultOut.model_validate(f) for f in faults],
    )


# --- tickets ------------------------------------------------------------------------------------------


def get_ticket(session: Session, ticket_id: str) -> Ticket:
    """Returns a ticket, or raises NotFound."""
    return get_or_raise(session, Ticket, ticket_id, what="ticket")


def ticket_actions(session: Session, ticket_id: str) -> Sequence[TicketAction]:
    """Returns a ticket's steps, oldest first."""
    return session.scalars(
        select(TicketAction).where(TicketAction.ticket_id == ticket_id).order_by(TicketAction.id)
    ).all()


def list_tickets(
    session: Session,
    *,
    status: str | None = None,
    open_only: bool = False,
    camera_id: str | None = None,
    assignee: str | None = None,
    limit: int = 500,
) -> Sequence[Ticket]:
    """Returns tickets, newest first, filtered by status (or open only), camera and assignee."""
    if status is not None and status not in TICKET_STATES:
        raise InvalidInput(f"unknown ticket status {status!r}", hint=f"use one of {list(TICKET_STATES)}")
    query = select(Ticket).order_by(Ticket.opened_at.desc()).limit(limit)
    if status:
        query = query.where(Ticket.status == status)
    if open_only:
        query = query.where(Ticket.status.in_(OPEN_TICKET_STATES))
    if camera_id:
        query = query.where(Ticket.camera_id == camera_id)
    if assignee:
        query = query.where(Ticket.assignee == assignee)
    return session.scalars(query).all()


def team(session: Session) -> list[Assignee]:
    """Returns the active users who may work maintenance tickets, by user name."""
    return [
        Assignee(username=u.username, full_name=u.full_name, role=u.role)
        for u in accounts.list_users(session)
        if u.active and allows(u.role, TEAM_PERMISSION)
    ]


def _check_assignee(session: Session, username: str) -> str:
    try:
        user = accounts.get_by_username(session, username)
    except NotFound:
        raise InvalidInput(
            f"user {username!r} does not exist", hint="assign the ticket to a member of the maintenance team"
        ) from None
    if not user.active:
        raise InvalidInput(f"user {username!r} is disabled", hint="assign the ticket to an active user")
    if not allows(user.role, TEAM_PERMISSION):
        raise InvalidInput(
            f"user {username!r} ({user.role}) may not work maintenance tickets",
            hint="assign it to a user whose role holds maintenance:write",
        )
    return user.username


class TicketAlreadyOpen(Conflict):
    """A fault that has an open ticket already: the error names that ticket and links it."""

    def __init__(self, ticket_id: str, fault_id: str) -> None:
        super().__init__(
            f"already open: ticket {ticket_id} for fault {fault_id}",
            hint="work on that ticket (assign it, or close it with a note) instead of opening another",
        )
        self.ticket_id = ticket_id

    def to_dict(self) -> dict[str, str]:
        """Adds the open ticket's id and the page address that shows it."""
        return {**super().to_dict(), "ticket_id": self.ticket_id, "ticket_url": ticket_url(self.ticket_id)}


def ticket_url(ticket_id: str) -> str:
    """Returns the address of the maintenance page showing ticket `ticket_id`."""
    return f"/maintenance?ticket={ticket_id}"


def open_ticket_for_fault(session: Session, fault_id: str) -> Ticket | None:
    """Returns the open (or assigned) ticket of a fault, if it has one."""
    return session.scalars(
        select(Ticket).where(Ticket.fault_id == fault_id, Ticket.status.in_(OPEN_TICKET_STATES))
    ).first()


def open_tickets_by_fault(session: Session, fault_ids: Iterable[str]) -> dict[str, str]:
    """Returns the open ticket id of each of `fault_ids` that has one."""
    wanted = list(set(fault_ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(Ticket.fault_id, Ticket.id).where(
            Ticket.fault_id.in_(wanted), Ticket.status.in_(OPEN_TICKET_STATES)
        )
    )
    return {fault_id: ticket_id for fault_id, ticket_id in rows if fault_id}


def open_ticket(session: Session, data: TicketIn, *, actor: str) -> Ticket:
    """Opens a ticket for a camera or one of its faults, assigned at once if an assignee is given.

    A fault with an open ticket gets no second one: the database refuses it (two people pressing at
    once included), and the error names the ticket that is open.
    """
    fault = None
    if data.fault_id:
        fault = session.get(CameraFault, data.fault_id)
        if fault is None:
            raise NotFound(f"fault {data.fault_id!r} does not exist", hint="check the fault id")
        if data.camera_id and data.camera_id != fault.camera_id:
            raise InvalidInput(
                f"fault {fault.id!r} belongs to camera {fault.camera_id!r}, not {data.camera_id!r}",
                hint="leave the camera out, or name the fault's camera",
            )
    camera_id = data.camera_id or (fault.camera_id if fault else None)
    if not camera_id:
        raise InvalidInput("a ticket needs a camera or a fault", hint="send camera_id or fault_id")
    cameras.get(session, camera_id)
    assignee = _check_assignee(session, data.assignee) if data.assignee else None
    try:
        with session.begin_nested():
            ticket = _new_ticket(
                session,
                camera_id=camera_id,
                fault_id=fault.id if fault else None,
                description=data.description,
                actor=actor,
            )
    except IntegrityError:
        existing = open_ticket_for_fault(session, fault.id) if fault else None
        if existing is None:
            raise
        raise TicketAlreadyOpen(existing.id, existing.fault_id or "") from None
    if assignee:
        _assign(session, ticket, assignee=assignee, actor=actor)
    return ticket


def _new_ticket(
    session: Session,
    *,
    camera_id: str,
    fault_id: str | None,
    description: str,
    actor: str,
    auto_key: str | None = None,
) -> Ticket:
    ticket = Ticket(
        id=new_id(),
        camera_id=camera_id,
        fault_id=fault_id,
        description=description,
        status="open",
        opened_by=actor,
        opened_at=utcnow(),
        auto_key=auto_key,
        version=1,
    )
    session.add(ticket)
    session.flush()
    session.add(
        TicketAction(
            ticket_id=ticket.id, actor=actor, action="open", note=description, detail={"fault_id": fault_id}
        )
    )
    audit.record(
        session,
        actor=actor,
        action="maintenance.ticket_open",
        target=ticket.id,
        detail={"camera_id": camera_id, "fault_id": fault_id},
    )
    return ticket


def _claim(session: Session, ticket_id: str, version: int | None) -> Ticket:
    ticket = session.get(Ticket, ticket_id, with_for_update=True)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id!r} does not exist", hint="check the ticket id")
    if ticket.status == "closed":
        raise Conflict(f"ticket {ticket_id!r} is already closed", hint="open a new ticket if work remains")
    if version is not None and version != ticket.version:
        raise Conflict("someone else changed this ticket first", hint="reload it and try again")
    return ticket


def _assign(session: Session, ticket: Ticket, *, assignee: str, actor: str) -> None:
    before = ticket.assignee
    ticket.assignee, ticket.status, ticket.version = assignee, "assigned", ticket.version + 1
    session.add(
        TicketAction(
            ticket_id=ticket.id, actor=actor, action="assign", detail={"assignee": assignee, "before": before}
        )
    )
    audit.record(
        session,
        actor=actor,
        action="maintenance.ticket_assign",
        target=ticket.id,
        detail={"assignee": assignee, "before": before},
    )


def assign_ticket(
    session: Session, ticket_id: str, *, assignee: str, actor: str, version: int | None = None
) -> Ticket:
    """Assigns (or re-assigns) an open ticket to a maintenance team member."""
    ticket = _claim(session, ticket_id, version)
    _assign(session, ticket, assignee=_check_assignee(session, assignee), actor=actor)
    return ticket


def close_ticket(
    session: Session, ticket_id: str, *, note: str, actor: str, version: int | None = None
) -> Ticket:
    """Closes a ticket with a note saying what was found and done."""
    if not note.strip():
        raise InvalidInput("closing a ticket needs a note", hint="say what was found and done")
    ticket = _claim(session, ticket_id, version)
    ticket.status, ticket.closed_by, ticket.closed_at = "closed", actor, utcnow()
    ticket.close_note, ticket.version = note.strip(), ticket.version + 1
    session.add(TicketAction(ticket_id=ticket.id, actor=actor, action="close", note=ticket.close_note))
    audit.record(
        session,
        actor=actor,
        action="maintenance.ticket_close",
        target=ticket.id,
        detail={"camera_id": ticket.camera_id},
    )
    return ticket


def open_overdue_tickets(
    session: Session, *, after: timedelta, tz: str | None = None, now: datetime | None = None
) -> list[Ticket]:
    """Opens one ticket per outage that has lasted longer than `after` on a camera with no open ticket."""
    now = as_utc(now or utcnow())
    zone = resolve_timezone(tz)
    overdue = session.scalars(
        select(CameraFault)
        .where(CameraFault.ended_at.is_(None), CameraFault.outage_since <= now - after)
        .order_by(CameraFault.outage_since)
    ).all()
    if not overdue:
        return []
    busy = set(session.scalars(select(Ticket.camera_id).where(Ticket.status.in_(OPEN_TICKET_STATES))).all())
    opened = []
    for fault in overdue:
        if fault.camera_id in busy:
            continue
        try:
            name = cameras.get(session, fault.camera_id).name
        except NotFound:
            continue  # the camera left the registry; nobody is to repair it
        began = format_moment(fault.outage_since, zone=zone)
        what = fault.state.replace("_", " ")
        description = f"{name}: {what} since {began}" + (f" — {fault.detail}" if fault.detail else "")
        try:
            with session.begin_nested():
                ticket = _new_ticket(
                    session,
                    camera_id=fault.camera_id,
                    fault_id=fault.id,
                    description=description[:2000],
                    actor="system",
                    auto_key=f"outage:{fault.camera_id}:{fault.outage_since.isoformat()}"[:100],
                )
        except IntegrityError:
            continue  # this outage already had its ticket (another server, or one closed by hand)
        busy.add(fault.camera_id)
        opened.append(ticket)
    return opened
