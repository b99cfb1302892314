"""Exports and event clips: recorded footage cut to MP4 (remuxed, never re-encoded) with SHA-256 hashes.

An export writes one MP4 per continuous recording of each camera in the range, and a
`manifest.json` naming every file's hash, camera and span, who exported it and why; the manifest's
own hash goes into the audit log, so a court can check both. Clips of events are cut the same way
once their 'after' time has passed, and stored in the media store.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from safecity import __version__
from safecity.audit import service as audit
from safecity.cameras import service as cameras
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.errors import InvalidInput, NotFound
from safecity.core.ids import new_id
from safecity.evidence import service as media_owners
from safecity.recordings import service
from safecity.recordings.models import ExportFile, ExportManifest, RecordingSegment, Span
from safecity.recordings.playback import PLAIN, Piece, Remux, runs
from safecity.settings import Settings

log = logging.getLogger(__name__)

MAX_EXPORT = timedelta(hours=24)
# How long after its window a clip waits for segments still being written before it is cut as is.
CLIP_WAIT = timedelta(seconds=90)


def pieces(session: Session, segments: Sequence[RecordingSegment], settings: Settings) -> list[Piece]:
    """Returns the files of indexed segments, for the remuxer."""
    return [
        Piece(service.segment_file(session, s, settings), s.start, s.end, (s.codec, s.width, s.height))
        for s in segments
    ]


def cut(
    run: Sequence[Piece], *, start: datetime, end: datetime, out: Path
) -> tuple[datetime, datetime] | None:
    """Writes the footage of one continuous recording between two moments to an MP4; returns its span."""
    remux = Remux(run, start=max(start, run[0].start), end=end)
    for _ in remux.write(str(out), options=PLAIN):
        pass
    if remux.origin is None or remux.end is None:
        out.unlink(missing_ok=True)
        return None
    return remux.origin, remux.end


def sha256_of(path: Path) -> str:
    """Returns the SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_range(
    session: Session,
    *,
    settings: Settings,
    camera_ids: Sequence[str],
    start: datetime,
    end: datetime,
    out_dir: Path,
    actor: str,
    reason: str,
) -> ExportManifest:
    """Exports cameras' footage in [start, end] to MP4 files and a manifest in `out_dir` (audited).

    Files appear in `out_dir` only when the whole export succeeded; a range with no footage at all
    is a NotFound and writes nothing.
    """
    start, end = service.check_window(start, end, limit=MAX_EXPORT)
    if len(reason.strip()) < 3:
        raise InvalidInput("an export needs a reason", hint="give the case number or the request it answers")
    if not camera_ids:
        raise InvalidInput("no camera named", hint="name at least one camera")
    for camera_id in camera_ids:
        cameras.get(session, camera_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    export_id = new_id()
    files: list[ExportFile] = []
    gaps: dict[str, list[Span]] = {}
    staging = Path(tempfile.mkdtemp(prefix=f".export-{export_id}-", dir=out_dir))
    try:
        for camera_id in dict.fromkeys(camera_ids):
            segments = service.segments_between(session, camera_id=camera_id, start=start, end=end)
            spans = service.merge_spans(segments, start=start, end=end)
            gaps[camera_id] = service.gaps_of(spans, start=start, end=end)
            for run in runs(pieces(session, segments, settings)):
                name = f"{camera_id}_{max(start, run[0].start):%Y%m%dT%H%M%SZ}.mp4"
                span = cut(run, start=start, end=end, out=staging / name)
                if span is None:
                    continue
                path = staging / name
                files.append(
                    ExportFile(
                        name=name,
                        camera_id=camera_id,
                        start=span[0],
                        end=span[1],
                        bytes=path.stat().st_size,
                        sha256=sha256_of(path),
                    )
                )
        if not files:
            oldest = [service.oldest_footage(session, c) for c in camera_ids]
            kept = [o for o in oldest if o is not None]
            hint = (
                f"the oldest footage kept is from {min(kept).isoformat()}"
                if kept
                else "nothing is recorded yet"
            )
            raise NotFound(
                f"no footage of {', '.join(camera_ids)} between {start.isoformat()} and {end.isoformat()}",
                hint=hint,
            )
        manifest = ExportManifest(
            id=export_id,
            exported_by=actor,
            reason=reason,
            exported_at=utcnow(),
            start=start,
            end=end,
            cameras=list(camera_ids),
            files=files,
            gaps=gaps,
            software=f"SafeCity {__version__}",
        )
        (staging / "manifest.json").write_text(manifest.model_dump_json(indent=2))
        manifest_hash = sha256_of(staging / "manifest.json")
        for item in [
            *files,
            ExportFile(name="manifest.json", camera_id="", start=start, end=end, bytes=0, sha256=""),
        ]:
            (staging / item.name).replace(out_dir / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    audit.record(
        session,
        actor=actor,
        action="recordings.export",
        target=",".join(camera_ids),
        detail={
            "export": export_id,
            "start": start,
            "end": end,
            "reason": reason,
            "files": len(files),
            "bytes": sum(f.bytes for f in files),
            "manifest_sha256": manifest_hash,
        },
    )
    return manifest


def export_to_media(
    ctx: Context,
    session: Session,
    *,
    camera_ids: Sequence[str],
    start: datetime,
    end: datetime,
    actor: str,
    reason: str,
) -> ExportManifest:
    """Exports into the media store (for the API): each file and the manifest get a media ref."""
    with tempfile.TemporaryDirectory(prefix="safecity-export-") as tmp:
        manifest = export_range(
            session,
            settings=ctx.settings,
            camera_ids=camera_ids,
            start=start,
            end=end,
            out_dir=Path(tmp),
            actor=actor,
            reason=reason,
        )
        for item in manifest.files:
            item.media_ref = ctx.media.put_file(Path(tmp) / item.name, "mp4")
        manifest.manifest_ref = ctx.media.put_file(Path(tmp) / "manifest.json", "json")
    refs = [item.media_ref for item in manifest.files] + [manifest.manifest_ref]
    media_owners.own(session, "evidence_export", manifest.id, refs)
    return manifest


def process_due_clips(ctx: Context, *, now: datetime | None = None, limit: int = 50) -> int:
    """Cuts the clips whose 'after' time has passed; returns how many were finished."""
    now = now or utcnow()
    finished = 0
    with ctx.db.session() as session:
        service.unclaim_stale_clips(session, now=now)
        due = [
            (c.id, c.camera_id, c.start, c.end, c.due_at)
            for c in service.due_clips(session, now=now, limit=limit)
        ]
    for clip_id, camera_id, start, end, due_at in due:
        with ctx.db.session() as session:
            segments = service.segments_between(session, camera_id=camera_id, start=start, end=end)
            spans = service.merge_spans(segments, start=start, end=end)
            complete = bool(spans) and end - spans[-1].end <= service.TOUCH
            if not complete and now < due_at + CLIP_WAIT:
                continue  # the end of the window may still sit in a segment being written
            if not service.claim_clip(session, clip_id):
                continue
            found = pieces(session, segments, ctx.settings)
        status, media_ref, covered, detail = _cut_clip(ctx, found, start=start, end=end, spans=spans)
        with ctx.db.session() as session:
            service.finish_clip(
                session, clip_id, status=status, media_ref=media_ref, covered_s=covered, detail=detail
            )
        finished += 1
        if status == "done":
            ctx.count("clips")
    return finished


def _cut_clip(
    ctx: Context, found: list[Piece], *, start: datetime, end: datetime, spans: list[Span]
) -> tuple[str, str | None, float, str]:
    covered = sum((s.end - s.start).total_seconds() for s in spans)
    if not found:
        return "no_footage", None, 0.0, "the camera recorded nothing in the clip's window"
    # One continuous recording per clip: the one covering most of the window.
    best = max(runs(found), key=lambda r: (min(r[-1].end, end) - max(r[0].start, start)).total_seconds())
    with tempfile.TemporaryDirectory(prefix="safecity-clip-") as tmp:
        out = Path(tmp) / "clip.mp4"
        try:
            span = cut(best, start=start, end=end, out=out)
        except Exception as exc:  # a damaged segment: say so on the clip rather than retry forever
            log.warning("clip cut failed: %s", exc)
            return "failed", None, covered, f"the footage could not be read: {exc}"
        if span is None:
            return "no_footage", None, 0.0, "the camera recorded nothing in the clip's window"
        ref = ctx.media.put_file(out, "mp4")
    missing = (end - start).total_seconds() - covered
    detail = f"{missing:.0f} s of the window were not recorded" if missing > 1 else ""
    return "done", ref, round(covered, 1), detail
