"""Live video's domain functions: wall layouts, the footage of the last moments, snapshots to evidence."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import av
import numpy as np
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from safecity.audit import service as audit
from safecity.cameras.models import Camera
from safecity.core.clock import utcnow
from safecity.core.errors import InvalidInput, NotFound
from safecity.core.ids import new_id
from safecity.core.media import MediaStore
from safecity.evidence import service as evidence
from safecity.live import protocol
from safecity.live.feed import Feed
from safecity.live.models import LayoutIn, WallLayout
from safecity.live.relay import codec_of
from safecity.recordings import export
from safecity.recordings import service as recordings
from safecity.recordings.playback import Piece
from safecity.settings import Settings

SNAPSHOT_KIND = "live_snapshot"
# An open segment older than this is a crash's leftover (recovered at the recorder's next start), not footage.
_OPEN_PART_MAX_AGE = timedelta(hours=2)


# --- wall layouts -----------------------------------------------------------------------------------


def layouts_for(session: Session, username: str, *, room: str | None = None) -> Sequence[WallLayout]:
    """Returns the layouts `username` saved and those shared with a room (one room's, when named)."""
    shared = WallLayout.room == room if room else WallLayout.room.is_not(None)
    return session.scalars(
        select(WallLayout)
        .where(or_(WallLayout.owner == username, shared))
        .order_by(WallLayout.room.is_not(None), WallLayout.room, WallLayout.name)
    ).all()


def save_layout(session: Session, *, owner: str, name: str, data: LayoutIn) -> WallLayout:
    """Saves `owner`'s layout `name` (made, or replaced whole); audited when shared with a room."""
    name = name.strip()
    if not 0 < len(name) <= 100:
        raise InvalidInput("a layout's name is 1 to 100 characters", hint="give it a short name")
    row = session.scalars(
        select(WallLayout).where(WallLayout.owner == owner, WallLayout.name == name)
    ).one_or_none()
    if row is None:
        row = WallLayout(owner=owner, name=name)
        session.add(row)
    row.grid, row.pages, row.tour_seconds, row.room = (
        data.grid.value,
        data.pages,
        data.tour_seconds,
        data.room,
    )
    session.flush()
    if data.room:
        audit.record(
            session, actor=owner, action="wall.layout_share", target=name, detail={"room": data.room}
        )
    return row


def delete_layout(session: Session, *, owner: str, name: str) -> None:
    """Removes one of `owner`'s layouts; NotFound when they have none of that name."""
    row = session.scalars(
        select(WallLayout).where(WallLayout.owner == owner, WallLayout.name == name)
    ).one_or_none()
    if row is None:
        raise NotFound(
            f"you have no wall layout named {name!r}", hint="a shared layout is its owner's to remove"
        )
    session.delete(row)


# --- the last moments: recorded segments and the one being written -------------------------------------


def recent_pieces(session: Session, camera: Camera, settings: Settings, *, since: datetime) -> list[Piece]:
    """Returns the camera's footage from `since` to now: indexed segments and the segment still open.

    The recorder indexes a segment when it closes (every minute); the open one is MPEG-TS written packet
    by packet, so what it holds plays up to its last whole packet, which is what "replay the last 30 s"
    needs.
    """
    now = utcnow()
    rows = recordings.segments_between(
        session, camera_id=camera.id, start=since, end=now + timedelta(minutes=1)
    )
    pieces = export.pieces(session, rows, settings)
    root, _ = recordings.volume_root(session, recordings.camera_volume(camera), settings)
    folder = root / camera.id
    parts = sorted(folder.glob("*/*/*.ts.part"), key=lambda p: p.name) if folder.is_dir() else []
    if parts:
        part = parts[-1]
        try:
            start = datetime.fromtimestamp(int(part.name.split(".", 1)[0]) / 1000, UTC)
            if now - start < _OPEN_PART_MAX_AGE and (not pieces or start >= pieces[-1].start):
                with av.open(str(part), format="mpegts") as container:
                    stream = container.streams.video[0]
                    context = stream.codec_context
                    # As the recorder indexes it, so the open part joins the run of the segments before it.
                    signature = (codec_of(stream), int(context.width or 0), int(context.height or 0))
                pieces.append(Piece(part, start, now, signature))
        except (ValueError, OSError, IndexError, av.error.FFmpegError):
            pass  # a part with no whole packet yet: the indexed footage is all there is
    return pieces


# --- snapshots to evidence ------------------------------------------------------------------------------


def latest_frame(feed: Feed) -> tuple[bytes, str, int] | None:
    """Returns the newest picture a feed holds as (bytes, extension, wall ms), decoding its last frames."""
    if feed.init is not None and feed.gop:
        data = protocol.init_segment(feed.init) + b"".join(protocol.payload(m) for m in feed.gop)
        wall_ms = protocol.header(feed.gop[-1]).wall_ms
        image: np.ndarray | None = None
        with av.open(io.BytesIO(data), mode="r", format="mp4") as container:
            for frame in container.decode(video=0):
                image = frame.to_ndarray(format="bgr24")
        if image is None:
            return None
        import cv2

        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        return (jpeg.tobytes(), "jpg", wall_ms) if ok else None
    if feed.picture is not None:
        return protocol.payload(feed.picture), "jpg", protocol.header(feed.picture).wall_ms
    return None


def take_snapshot(
    session: Session,
    media: MediaStore,
    *,
    camera: Camera,
    picture: bytes,
    ext: str,
    frame_ms: int,
    actor: str,
) -> dict[str, object]:
    """Stores a still of live video as evidence: in the media store, owned, and audited."""
    ref = media.put(picture, ext)
    snapshot_id = new_id()
    taken = utcnow()
    frame_at = datetime.fromtimestamp(frame_ms / 1000, UTC) if frame_ms else taken
    evidence.own(session, SNAPSHOT_KIND, snapshot_id, [ref], at=taken)
    sha256 = hashlib.sha256(picture).hexdigest()
    audit.record(
        session,
        actor=actor,
        action="live.snapshot",
        target=camera.id,
        detail={"snapshot": snapshot_id, "ref": ref, "frame_at": frame_at, "sha256": sha256},
    )
    return {
        "id": snapshot_id,
        "camera_id": camera.id,
        "ref": ref,
        "url": f"/media/{ref}",
        "sha256": sha256,
        "frame_at": frame_at,
        "taken_at": taken,
        "taken_by": actor,
    }
