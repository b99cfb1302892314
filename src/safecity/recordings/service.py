"""The recordings domain's functions: the segment index, timelines, holds, policies, volumes, clips, search.

Other domains call `protect` / `release` to keep footage tied to an open case, `mark_event` to keep
footage around an event for the event retention, `request_clip` to get a clip of an event, and
`clips_for` to show it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from safecity.audit import service as audit
from safecity.cameras import service as cameras
from safecity.cameras.models import Camera
from safecity.core.clock import as_utc, format_moment, utcnow
from safecity.core.errors import InvalidInput, NotFound
from safecity.core.ids import new_id
from safecity.evidence import service as media_owners
from safecity.recordings.models import (
    DEFAULT_CONTINUOUS_DAYS,
    DEFAULT_EVENT_DAYS,
    DEFAULT_VOLUME,
    PolicyIn,
    RecorderStatus,
    RecordingClip,
    RecordingHold,
    RecordingPolicy,
    RecordingSegment,
    RecordingVolume,
    SearchHit,
    Span,
    TimelineEvent,
    TimelineOut,
    VolumeIn,
    VolumeOut,
)
from safecity.recordings.recorder import SegmentInfo
from safecity.settings import Settings

# Segments are cut at the first key-frame after their nominal length; none is longer than this.
MAX_SEGMENT = timedelta(hours=1)
# Segments closer than this are one continuous recording (timestamps round at both ends).
TOUCH = timedelta(seconds=1)
CLIP_BEFORE_S = 10.0
CLIP_AFTER_S = 20.0
MAX_WINDOW = timedelta(days=31)


# --- cameras and volumes ---------------------------------------------------------------------------------


def records(camera: Camera) -> bool:
    """Returns whether a camera is recorded (its `record` setting, on unless set false)."""
    return camera.settings.record


def camera_volume(camera: Camera) -> str:
    """Returns the volume a camera records to (its `record_volume` setting, else the default)."""
    return camera.settings.record_volume or DEFAULT_VOLUME


def default_root(settings: Settings) -> Path:
    """Returns the default volume's folder: <data_dir>/recordings."""
    return settings.data_dir / "recordings"


def volume_root(session: Session, name: str, settings: Settings) -> tuple[Path, int]:
    """Returns a volume's folder and reserve bytes; the default volume's folder is made on first use."""
    row = session.get(RecordingVolume, name)
    if row is not None:
        return Path(row.path), row.reserve_bytes
    if name != DEFAULT_VOLUME:
        raise NotFound(
            f"recording volume {name!r} is not configured", hint="add it: safecity recordings volume-set"
        )
    root = default_root(settings)
    root.mkdir(parents=True, exist_ok=True)
    return root, 0


def set_volume(session: Session, data: VolumeIn, *, actor: str) -> RecordingVolume:
    """Adds or changes a recording volume."""
    row = session.get(RecordingVolume, data.name) or RecordingVolume(name=data.name)
    row.path, row.budget_bytes, row.reserve_bytes = data.path, data.budget_bytes, data.reserve_bytes
    session.add(row)
    audit.record(
        session, actor=actor, action="recordings.volume_set", target=data.name, detail=data.model_dump()
    )
    return row


def volume_budget(session: Session, name: str) -> tuple[int | None, int]:
    """Returns a volume's budget (None: the disk's size) and reserve in bytes."""
    row = session.get(RecordingVolume, name)
    return (row.budget_bytes, row.reserve_bytes) if row else (None, 0)


def used_bytes(session: Session, volume: str) -> int:
    """Returns the bytes of footage indexed on a volume."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(RecordingSegment.bytes), 0)).where(
                RecordingSegment.volume == volume
            )
        )
        or 0
    )


def list_volumes(session: Session, settings: Settings) -> list[VolumeOut]:
    """Returns every volume with its use and state (ok, near_full or missing)."""
    names = {row.name for row in session.scalars(select(RecordingVolume))} | {DEFAULT_VOLUME}
    names |= set(session.scalars(select(RecordingSegment.volume).distinct()))
    out = []
    for name in sorted(names):
        row = session.get(RecordingVolume, name)
        path = Path(row.path) if row else default_root(settings)
        budget, reserve = volume_budget(session, name)
        used = used_bytes(session, name)
        free = _free_bytes(path)
        if free is None:
            state = "missing"
        elif free < reserve or (budget is not None and used >= budget * 0.95):
            state = "near_full"
        else:
            state = "ok"
        out.append(
            VolumeOut(
                name=name,
                path=str(path),
                budget_bytes=budget,
                reserve_bytes=reserve,
                used_bytes=used,
                free_bytes=free,
                state=state,
            )
        )
    return out


def _free_bytes(path: Path) -> int | None:
    """Returns the free bytes of the disk holding `path`, or None when the folder cannot be reached."""
    try:
        return shutil.disk_usage(path).free if path.is_dir() else None
    except OSError:  # unmounted, failing, or a name the disk refuses: the volume counts as missing
        return None


# --- the segment index -----------------------------------------------------------------------------------


def index_segment(session: Session, *, info: SegmentInfo, volume: str, root: Path) -> RecordingSegment:
    """Indexes a closed segment file; indexing the same file twice changes nothing."""
    try:
        relative = str(info.path.relative_to(root))
    except ValueError:
        relative = str(info.path)
    existing = session.scalars(select(RecordingSegment).where(RecordingSegment.path == relative)).first()
    if existing is not None:
        return existing
    row = RecordingSegment(
        id=new_id(),
        camera_id=info.camera_id,
        volume=volume,
        path=relative,
        start=info.start,
        end=info.end,
        bytes=info.bytes,
        codec=info.codec,
        width=info.width,
        height=info.height,
        packets=info.packets,
    )
    session.add(row)
    session.flush()
    return row


def segment_file(session: Session, segment: RecordingSegment, settings: Settings) -> Path:
    """Returns where a segment's file lives."""
    path = Path(segment.path)
    if path.is_absolute():
        return path
    root, _ = volume_root(session, segment.volume, settings)
    return root / path


def segments_between(
    session: Session, *, camera_id: str, start: datetime, end: datetime
) -> Sequence[RecordingSegment]:
    """Returns a camera's segments overlapping [start, end), oldest first."""
    return session.scalars(
        select(RecordingSegment)
        .where(
            RecordingSegment.camera_id == camera_id,
            RecordingSegment.start >= start - MAX_SEGMENT,
            RecordingSegment.start < end,
            RecordingSegment.end > start,
        )
        .order_by(RecordingSegment.start)
    ).all()


def oldest_footage(session: Session, camera_id: str) -> datetime | None:
    """Returns the start of a camera's oldest kept segment."""
    return session.scalar(
        select(func.min(RecordingSegment.start)).where(RecordingSegment.camera_id == camera_id)
    )


def merge_spans(segments: Iterable[RecordingSegment], *, start: datetime, end: datetime) -> list[Span]:
    """Returns the recorded spans of segments within [start, end], touching segments merged."""
    spans: list[Span] = []
    for seg in segments:
        s, e = max(seg.start, start), min(seg.end, end)
        if e <= s:
            continue
        if spans and s - spans[-1].end <= TOUCH:
            spans[-1].end = max(spans[-1].end, e)
        else:
            spans.append(Span(start=s, end=e))
    return spans


def gaps_of(spans: Sequence[Span], *, start: datetime, end: datetime) -> list[Span]:
    """Returns the parts of [start, end] that the spans do not cover."""
    gaps, cursor = [], start
    for span in spans:
        if span.start - cursor > TOUCH:
            gaps.append(Span(start=cursor, end=span.start))
        cursor = max(cursor, span.end)
    if end - cursor > TOUCH:
        gaps.append(Span(start=cursor, end=end))
    return gaps


def check_window(
    start: datetime, end: datetime, *, limit: timedelta = MAX_WINDOW
) -> tuple[datetime, datetime]:
    """Returns the window as UTC, or raises InvalidInput when it is empty, reversed or too long."""
    start, end = as_utc(start), as_utc(end)
    if end <= start:
        raise InvalidInput(
            "the end of the time range is not after its start", hint="swap or correct the times"
        )
    if end - start > limit:
        raise InvalidInput(f"the time range is longer than {limit}", hint="ask for a shorter range")
    return start, end


def timeline(session: Session, *, camera_id: str, start: datetime, end: datetime) -> TimelineOut:
    """Returns a camera's recorded spans, gaps and events in a window."""
    start, end = check_window(start, end)
    cameras.get(session, camera_id)
    spans = merge_spans(
        segments_between(session, camera_id=camera_id, start=start, end=end), start=start, end=end
    )
    holds = session.scalars(
        select(RecordingHold)
        .where(RecordingHold.camera_id == camera_id, RecordingHold.start < end, RecordingHold.end > start)
        .order_by(RecordingHold.start)
        .limit(2000)
    ).all()
    status = session.get(RecorderStatus, camera_id)
    return TimelineOut(
        camera_id=camera_id,
        start=start,
        end=end,
        recorded=spans,
        gaps=gaps_of(spans, start=start, end=end),
        events=[
            TimelineEvent(start=h.start, end=h.end, kind=h.kind, ref=h.ref, reason=h.reason) for h in holds
        ],
        oldest=oldest_footage(session, camera_id),
        recorder=status.state if status else None,
    )


def no_footage(session: Session, camera_id: str, at: datetime) -> NotFound:
    """Returns the error for a moment without footage, saying what is kept instead."""
    oldest = oldest_footage(session, camera_id)
    if oldest is None:
        return NotFound(
            f"camera {camera_id} has no recorded footage", hint="is its recording on and its disk mounted?"
        )
    if at < oldest:
        return NotFound(
            f"{at.isoformat()} is outside the retention of camera {camera_id}",
            hint=f"its oldest footage kept is from {oldest.isoformat()}",
        )
    return NotFound(
        f"camera {camera_id} recorded nothing at {at.isoformat()} (a gap)",
        hint="pick a moment inside a recorded span of the timeline",
    )


# --- holds: event marks and protections ------------------------------------------------------------------


def protect(
    session: Session,
    *,
    camera_id: str,
    start: datetime,
    end: datetime,
    reason: str,
    ref: str,
    actor: str = "system",
) -> RecordingHold:
    """Keeps a camera's footage in [start, end] until `release(ref)`, whatever the retention or disk says."""
    start, end = check_window(start, end)
    hold = session.scalars(
        select(RecordingHold).where(
            RecordingHold.kind == "protect", RecordingHold.ref == ref, RecordingHold.camera_id == camera_id
        )
    ).first()
    if hold is None:
        hold = RecordingHold(
            kind="protect", camera_id=camera_id, start=start, end=end, ref=ref, reason=reason
        )
        session.add(hold)
    else:
        hold.start, hold.end = min(hold.start, start), max(hold.end, end)
        hold.reason, hold.released_at = reason, None
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="recordings.protect",
        target=camera_id,
        detail={"ref": ref, "start": start, "end": end, "reason": reason},
    )
    return hold


def release(session: Session, *, ref: str, actor: str = "system") -> int:
    """Ends the protections held under `ref` (the case was closed); returns how many were released."""
    result = session.execute(
        update(RecordingHold)
        .where(RecordingHold.kind == "protect", RecordingHold.ref == ref, RecordingHold.released_at.is_(None))
        .values(released_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    released = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if released:
        audit.record(
            session, actor=actor, action="recordings.release", target=ref, detail={"holds": released}
        )
    return released


def mark_event(
    session: Session,
    *,
    camera_id: str,
    at: datetime,
    ref: str,
    reason: str,
    before_s: float = CLIP_BEFORE_S,
    after_s: float = CLIP_AFTER_S,
) -> RecordingHold:
    """Marks the footage around an event, so it is kept for the event retention; idempotent by `ref`."""
    hold = session.scalars(
        select(RecordingHold).where(
            RecordingHold.kind == "event", RecordingHold.ref == ref, RecordingHold.camera_id == camera_id
        )
    ).first()
    if hold is None:
        at = as_utc(at)
        hold = RecordingHold(
            kind="event",
            camera_id=camera_id,
            start=at - timedelta(seconds=before_s),
            end=at + timedelta(seconds=after_s),
            ref=ref,
            reason=reason[:300],
        )
        session.add(hold)
        session.flush()
    return hold


def why_unrecorded(session: Session, camera_id: str, *, since: datetime) -> str | None:
    """Returns None when the camera has footage since `since` or is recording now, else why not, in words."""
    camera = session.get(Camera, camera_id)
    if camera is None:
        return f"camera {camera_id} is not registered"
    if not records(camera):
        return f"camera {camera_id} is not recorded (recording is off in its settings)"
    recorded = session.scalar(
        select(RecordingSegment.id)
        .where(RecordingSegment.camera_id == camera_id, RecordingSegment.end >= as_utc(since) - TOUCH)
        .limit(1)
    )
    if recorded is not None:
        return None
    state = session.get(RecorderStatus, camera_id)
    if state is not None and state.state == "recording":
        return None
    if state is None:
        return f"camera {camera_id} has no recorder running (no worker records it)"
    detail = f": {state.detail}" if state.detail else ""
    moment = format_moment(since, "seconds")
    return f"camera {camera_id} has recorded nothing since {moment} ({state.state}{detail})"


def footage_counts(session: Session) -> dict[str, int]:
    """Returns how much footage is indexed and kept: segments, open protections, clips by status."""
    counts = {
        "segments": int(session.scalar(select(func.count()).select_from(RecordingSegment)) or 0),
        "protections": int(
            session.scalar(
                select(func.count())
                .select_from(RecordingHold)
                .where(RecordingHold.kind == "protect", RecordingHold.released_at.is_(None))
            )
            or 0
        ),
    }
    for status, n in session.execute(
        select(RecordingClip.status, func.count()).group_by(RecordingClip.status)
    ):
        counts[f"clips_{status}"] = int(n)
    return counts


def set_clip_unrecorded(session: Session, clip: RecordingClip, *, why: str) -> None:
    """Closes a clip that cannot be cut because its camera does not record, saying why."""
    if clip.status == "pending":
        clip.status, clip.detail, clip.done_at = "not_recorded", why[:500], utcnow()


def active_protections(session: Session, camera_id: str, *, before: datetime) -> Sequence[RecordingHold]:
    """Returns a camera's unreleased protections starting before a moment."""
    return session.scalars(
        select(RecordingHold).where(
            RecordingHold.kind == "protect",
            RecordingHold.camera_id == camera_id,
            RecordingHold.released_at.is_(None),
            RecordingHold.start < before,
        )
    ).all()


# --- retention policies ----------------------------------------------------------------------------------


def set_policy(session: Session, data: PolicyIn, *, actor: str) -> RecordingPolicy:
    """Sets the retention of a scope (default, camera, district group or camera type)."""
    row = session.get(RecordingPolicy, data.scope) or RecordingPolicy(scope=data.scope)
    row.continuous_days, row.event_days = data.continuous_days, data.event_days
    session.add(row)
    audit.record(
        session, actor=actor, action="recordings.policy_set", target=data.scope, detail=data.model_dump()
    )
    return row


def delete_policy(session: Session, scope: str, *, actor: str) -> None:
    """Removes a scope's retention, so the wider scope applies again."""
    row = session.get(RecordingPolicy, scope)
    if row is None:
        raise NotFound(f"no retention policy for {scope!r}", hint="list them: GET /api/recordings/policies")
    session.delete(row)
    audit.record(session, actor=actor, action="recordings.policy_delete", target=scope)


def list_policies(session: Session) -> Sequence[RecordingPolicy]:
    """Returns every stored retention policy."""
    return session.scalars(select(RecordingPolicy).order_by(RecordingPolicy.scope)).all()


def policy_for(session: Session, camera: Camera | None) -> tuple[int, int]:
    """Returns (continuous days, event days) for a camera: its own, else its district's, type's, default."""
    scopes = ["default"]
    if camera is not None:
        scopes = [f"camera:{camera.id}", f"district:{camera.district}", f"kind:{camera.kind}", "default"]
    rows = {
        r.scope: r for r in session.scalars(select(RecordingPolicy).where(RecordingPolicy.scope.in_(scopes)))
    }
    for scope in scopes:
        if scope in rows:
            return rows[scope].continuous_days, rows[scope].event_days
    return DEFAULT_CONTINUOUS_DAYS, DEFAULT_EVENT_DAYS


# --- recorder states -------------------------------------------------------------------------------------


def set_recorder_state(session: Session, *, camera_id: str, state: str, detail: str) -> None:
    """Stores what a camera's recorder is doing."""
    row = session.get(RecorderStatus, camera_id)
    if row is None:
        session.add(RecorderStatus(camera_id=camera_id, state=state, detail=detail[:500], since=utcnow()))
    elif (row.state, row.detail) != (state, detail[:500]):
        row.state, row.detail, row.since = state, detail[:500], utcnow()


def recorder_states(session: Session) -> Sequence[RecorderStatus]:
    """Returns every recorder's state."""
    return session.scalars(select(RecorderStatus).order_by(RecorderStatus.camera_id)).all()


# --- event clips -----------------------------------------------------------------------------------------


def clip_window(camera: Camera | None) -> tuple[float, float]:
    """Returns a camera's clip seconds before and after an event (its clip_before_s/clip_after_s settings)."""
    if camera is None:
        return CLIP_BEFORE_S, CLIP_AFTER_S
    return camera.settings.clip_before_s, camera.settings.clip_after_s


def request_clip(
    session: Session,
    *,
    ref: str,
    kind: str,
    camera_id: str,
    at: datetime,
    before_s: float | None = None,
    after_s: float | None = None,
) -> RecordingClip:
    """Asks for the clip of an event; cut once its 'after' time has passed; idempotent per (ref, camera)."""
    existing = session.scalars(
        select(RecordingClip).where(RecordingClip.ref == ref, RecordingClip.camera_id == camera_id)
    ).first()
    if existing is not None:
        return existing
    default_before, default_after = clip_window(session.get(Camera, camera_id))
    before = default_before if before_s is None else before_s
    after = default_after if after_s is None else after_s
    if before < 0 or after < 0 or before + after <= 0 or before + after > 3600:
        raise InvalidInput("a clip needs 0–3600 seconds around its event", hint="fix before_s / after_s")
    at = as_utc(at)
    clip = RecordingClip(
        id=new_id(),
        ref=ref,
        kind=kind,
        camera_id=camera_id,
        at=at,
        start=at - timedelta(seconds=before),
        end=at + timedelta(seconds=after),
        due_at=at + timedelta(seconds=after),
        status="pending",
    )
    session.add(clip)
    session.flush()
    return clip


def clips_for(session: Session, ref: str) -> Sequence[RecordingClip]:
    """Returns the clips of an event (one per camera)."""
    return session.scalars(
        select(RecordingClip).where(RecordingClip.ref == ref).order_by(RecordingClip.camera_id)
    ).all()


def due_clips(session: Session, *, now: datetime, limit: int = 50) -> Sequence[RecordingClip]:
    """Returns pending clips whose window has passed, oldest first."""
    return session.scalars(
        select(RecordingClip)
        .where(RecordingClip.status == "pending", RecordingClip.due_at <= now)
        .order_by(RecordingClip.due_at)
        .limit(limit)
    ).all()


def claim_clip(session: Session, clip_id: str) -> bool:
    """Marks a pending clip as being cut; False when another process took it first."""
    result = session.execute(
        update(RecordingClip)
        .where(RecordingClip.id == clip_id, RecordingClip.status == "pending")
        .values(status="cutting")
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish_clip(
    session: Session, clip_id: str, *, status: str, media_ref: str | None, covered_s: float, detail: str
) -> None:
    """Records the outcome of cutting a clip."""
    media_owners.own(session, "clip", clip_id, [media_ref])
    session.execute(
        update(RecordingClip)
        .where(RecordingClip.id == clip_id)
        .values(
            status=status,
            media_ref=media_ref,
            covered_seconds=covered_s,
            detail=detail[:500],
            done_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )


def unclaim_stale_clips(session: Session, *, now: datetime, after: timedelta = timedelta(minutes=10)) -> int:
    """Puts back clips left 'cutting' by a process that died."""
    result = session.execute(
        update(RecordingClip)
        .where(RecordingClip.status == "cutting", RecordingClip.due_at < now - after)
        .values(status="pending")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- search across the city ------------------------------------------------------------------------------


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """Parses 'min_lat,min_lon,max_lat,max_lon' into numbers, or raises InvalidInput."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not (values[0] <= values[2] and values[1] <= values[3]):
        raise InvalidInput(
            f"bbox {text!r} is not min_lat,min_lon,max_lat,max_lon", hint="e.g. 24.80,67.00,24.90,67.10"
        )
    if not (
        -90 <= values[0] <= 90
        and -90 <= values[2] <= 90
        and -180 <= values[1] <= 180
        and -180 <= values[3] <= 180
    ):
        raise InvalidInput(
            f"bbox {text!r} is outside the map", hint="latitudes -90..90, longitudes -180..180"
        )
    return values[0], values[1], values[2], values[3]


def recorded_spans(
    session: Session, camera_ids: Sequence[str], *, start: datetime, end: datetime
) -> dict[str, list[Span]]:
    """Returns the recorded spans within [start, end] of those of `camera_ids` that have any."""
    found: dict[str, list[Span]] = {}
    for first in range(0, len(camera_ids), 500):
        rows = session.scalars(
            select(RecordingSegment)
            .where(
                RecordingSegment.camera_id.in_(camera_ids[first : first + 500]),
                RecordingSegment.start >= start - MAX_SEGMENT,
                RecordingSegment.start < end,
                RecordingSegment.end > start,
            )
            .order_by(RecordingSegment.camera_id, RecordingSegment.start)
        ).all()
        grouped: dict[str, list[RecordingSegment]] = {}
        for row in rows:
            grouped.setdefault(row.camera_id, []).append(row)
        for camera_id, segs in grouped.items():
            spans = merge_spans(segs, start=start, end=end)
            if spans:
                found[camera_id] = spans
    return found


def search(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    district: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
) -> list[SearchHit]:
    """Returns the cameras in a district or map box that recorded in [start, end], most footage first."""
    start, end = check_window(start, end)
    if district is None and bbox is None:
        raise InvalidInput("say where: a district or a map box", hint="pass district=… or bbox=…")
    candidates = list(cameras.list_cameras(session, district=district))
    if bbox is not None:
        lat0, lon0, lat1, lon1 = bbox
        candidates = [c for c in candidates if lat0 <= c.latitude <= lat1 and lon0 <= c.longitude <= lon1]
    if not candidates:
        return []
    by_id = {c.id: c for c in candidates}
    hits = []
    for camera_id, spans in recorded_spans(session, list(by_id), start=start, end=end).items():
        camera = by_id[camera_id]
        seconds = sum((s.end - s.start).total_seconds() for s in spans)
        hits.append(
            SearchHit(
                camera_id=camera_id,
                name=camera.name,
                district=camera.district,
                latitude=camera.latitude,
                longitude=camera.longitude,
                recorded=spans,
                recorded_seconds=round(seconds, 1),
            )
        )
    hits.sort(key=lambda h: (-h.recorded_seconds, h.camera_id))
    return hits


def delete_segments(session: Session, segments: Sequence[RecordingSegment]) -> None:
    """Removes segments from the index (their files are removed by retention first)."""
    if segments:
        session.execute(delete(RecordingSegment).where(RecordingSegment.id.in_([s.id for s in segments])))


@dataclass(frozen=True)
class EventFootage:
    """One event whose footage is wanted: its clip, and the mark that keeps the footage around it."""

    ref: str
    kind: str
    camera_id: str
    at: datetime
    reason: str


def keep_event_footage(session: Session, events: Sequence[EventFootage]) -> None:
    """Asks for the clip of each event and marks its footage, a batch in a few statements.

    Does what `request_clip` and `mark_event` do one by one: each (ref, camera) once, whatever was
    asked before left as it is, each camera's own clip window.
    """
    if not events:
        return
    refs = {e.ref for e in events}
    clips = {
        (c.ref, c.camera_id)
        for c in session.execute(
            select(RecordingClip.ref, RecordingClip.camera_id).where(RecordingClip.ref.in_(refs))
        )
    }
    holds = {
        (h.ref, h.camera_id)
        for h in session.execute(
            select(RecordingHold.ref, RecordingHold.camera_id).where(
                RecordingHold.kind == "event", RecordingHold.ref.in_(refs)
            )
        )
    }
    windows = {
        camera.id: clip_window(camera)
        for camera in session.scalars(select(Camera).where(Camera.id.in_({e.camera_id for e in events})))
    }
    for event in events:
        before, after = windows.get(event.camera_id, clip_window(None))
        at = as_utc(event.at)
        start, end = at - timedelta(seconds=before), at + timedelta(seconds=after)
        if (event.ref, event.camera_id) not in clips:
            clips.add((event.ref, event.camera_id))
            session.add(
                RecordingClip(
                    id=new_id(),
                    ref=event.ref,
                    kind=event.kind,
                    camera_id=event.camera_id,
                    at=at,
                    start=start,
                    end=end,
                    due_at=end,
                    status="pending",
                )
            )
        if (event.ref, event.camera_id) not in holds:
            holds.add((event.ref, event.camera_id))
            session.add(
                RecordingHold(
                    kind="event",
                    camera_id=event.camera_id,
                    start=start,
                    end=end,
                    ref=event.ref,
                    reason=event.reason[:300],
                )
            )
    session.flush()
