"""Redacting a body-worn item: faces, plates, drawn boxes and sound hidden in a new item, the original kept.

A redaction is asked for (`request`: checked against the item, recorded in its custody log, queued),
then run (`run`, by the domain's job or at once from the command line): the copy is written into the
store's incoming folder, hashed, and only then registered as a new item with its own SHA-256, the
original's categories, access class, "do not disclose" mark and cases, and its provenance
(`derived_from`, `operations`: what was hidden, with which models and settings, by whom, when). Both
items' custody logs record it. A copy of an item marked "do not disclose" is marked too: the mark is a
decision about the recording (an operation still running, a witness at risk) that hiding faces does
not answer, and the redactor is not who lifts it; someone with `bodycam:manage` does, on the copy,
with a reason (`service.classify`, in the copy's custody log), and the original keeps its mark.
A refused request, a failed run (not video, a full disk) leaves no item and is in the original's
custody log.

    body = RedactionIn(faces=True, reason="disclosure to the press")
    job = request(session, item.id, body, actor="si.khan")
    job = run(ctx, job.id)                       # job.result_item_id: the redacted item
"""

from __future__ import annotations

import errno
import hashlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from safecity import __version__
from safecity.bodyworn import custody, ingest, redact_video
from safecity.bodyworn import service as items
from safecity.bodyworn.models import BodyWornItem, BodyWornRedaction, RedactionIn
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.errors import Conflict, InvalidInput, NotFound, SafeCityError, Unavailable
from safecity.core.ids import new_id
from safecity.evidence import service as media_owners
from safecity.vision.redaction import FaceFinder, PlateFinder

log = logging.getLogger(__name__)

KIND = "bodyworn"
END_SLACK_S = 0.1
"""A range may end this far past the recording's last frame (containers round their durations)."""

STALE_AFTER = timedelta(minutes=10)
"""A running redaction whose progress has not moved for this long was cut off (its process died)."""

PROGRESS_EVERY_S = 1.0

Progress = Callable[[int, int], None]


def check(item: BodyWornItem, body: RedactionIn) -> None:
    """Refuses a redaction that does not fit the item: a box outside the frame, a range past its end."""
    if item.status != "active":
        raise Conflict(f"item {item.id} is {item.status}", hint="only an active item is redacted")
    end = item.duration_s
    width, height = item.width or 0, item.height or 0
    for n, box in enumerate(body.boxes, start=1):
        # A box on the picture as shown may be on it turned a quarter (the job reads the display matrix).
        frames = [(width, height), (height, width)] if box.shown else [(width, height)]
        if width and height and not any(box.x + box.w <= w and box.y + box.h <= h for w, h in frames):
            raise InvalidInput(
                f"box {n} ({box.x:g},{box.y:g} {box.w:g}×{box.h:g}) lies outside the "
                f"{item.width}×{item.height} frame",
                hint="draw the box inside the picture: x + w ≤ width and y + h ≤ height",
            )
        if end is not None and box.t0 > end:
            raise InvalidInput(
                f"box {n} starts at {box.t0:g} s, after the recording ends ({end:g} s)",
                hint="give times in seconds from the recording's start",
            )
    for n, mute in enumerate(body.mutes, start=1):
        if end is not None and mute.t1 > end + END_SLACK_S:
            raise InvalidInput(
                f"mute range {n} ends at {mute.t1:g} s, after the recording ends ({end:g} s)",
                hint=f"end it at {end:g} s at the latest",
            )


def request(session: Session, item_id: str, body: RedactionIn, *, actor: str) -> BodyWornRedaction:
    """Checks and queues a redaction of an item (recorded in its custody log; a refusal too)."""
    item = items.get(session, item_id)
    try:
        check(item, body)
    except SafeCityError as exc:
        custody.record_refusal(
            session, item.id, actor=actor, action="redact_refused", reason=exc.message, request=_summary(body)
        )
        raise
    job = BodyWornRedaction(
        id=new_id(),
        item_id=item.id,
        requested_by=actor,
        request=body.model_dump(mode="json"),
        status="queued",
    )
    session.add(job)
    custody.record(
        session,
        item.id,
        actor=actor,
        action="redact_request",
        reason=body.reason,
        redaction=job.id,
        **_summary(body),
    )
    return job


def get(session: Session, job_id: str) -> BodyWornRedaction:
    """Returns a redaction, or raises NotFound."""
    job = session.get(BodyWornRedaction, job_id)
    if job is None:
        raise NotFound(f"no redaction {job_id}", hint="see the item's redactions")
    return job


def of_item(session: Session, item_id: str) -> list[BodyWornRedaction]:
    """Returns an item's redactions, newest first."""
    return list(
        session.scalars(
            select(BodyWornRedaction)
            .where(BodyWornRedaction.item_id == item_id)
            .order_by(BodyWornRedaction.requested_at.desc())
        )
    )


def _summary(body: RedactionIn) -> dict[str, Any]:
    return {"faces": body.faces, "plates": body.plates, "boxes": len(body.boxes), "mutes": len(body.mutes)}


def plan_for(body: RedactionIn) -> redact_video.Plan:
    """Returns the rewrite's plan for a request (the finders load their models here)."""
    return redact_video.Plan(
        faces=FaceFinder() if body.faces else None,
        plates=PlateFinder() if body.plates else None,
        boxes=[
            redact_video.TimedBox(b.t0, b.t1, (b.x, b.y, b.w, b.h), b.follow, b.shown) for b in body.boxes
        ],
        mutes=[(m.t0, m.t1) for m in body.mutes],
    )


def operations(
    body: RedactionIn, plan: redact_video.Plan, result: redact_video.Result
) -> list[dict[str, Any]]:
    """Returns the provenance of a redacted copy: each operation with its parameters and models."""
    ops: list[dict[str, Any]] = []
    hold = {"hold_s": redact_video.HOLD_S}
    if plan.faces is not None:
        ops.append({"op": "faces", "pad": redact_video.FACE_PAD, **hold, **plan.faces.describe()})
    if plan.plates is not None:
        ops.append({"op": "plates", "pad": redact_video.PLATE_PAD, **hold, **plan.plates.describe()})
    for box in body.boxes:
        tracker = f"OpenCV {cv2.__version__} TrackerMIL" if box.follow else "none (still)"
        ops.append({"op": "box", **box.model_dump(), "tracker": tracker})
    for mute in body.mutes:
        ops.append({"op": "mute", "t0": mute.t0, "t1": mute.t1})
    ops.append(
        {
            "op": "encode",
            "method": f"pixelate ({plan.cells} blocks across each box, block mean)",
            "video": result.video_codec,
            "audio": result.audio,
            "frames": result.frames,
            "rotation": result.rotation,
            "display_matrix": list(result.matrix),
            "software": f"SafeCity {__version__}",
        }
    )
    return ops


def _claim(ctx: Context, job_id: str) -> bool:
    """Marks a queued redaction running; False when another process took it first."""
    with ctx.db.session() as session:
        claimed = session.execute(
            update(BodyWornRedaction)
            .where(BodyWornRedaction.id == job_id, BodyWornRedaction.status == "queued")
            .values(status="running", updated_at=utcnow())
        )
        return bool(getattr(claimed, "rowcount", 0))


def _progress(ctx: Context, job_id: str, report: Progress | None) -> Progress:
    last = [0.0]

    def tick(done: int, total: int) -> None:
        if report is not None:
            report(done, total)
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            with ctx.db.session() as session:
                session.execute(
                    update(BodyWornRedaction)
                    .where(BodyWornRedaction.id == job_id)
                    .values(frames_done=done, frames_total=total, updated_at=utcnow())
                )

    return tick


def _digest(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while block := handle.read(ingest.BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def run(ctx: Context, job_id: str, *, progress: Progress | None = None) -> BodyWornRedaction:
    """Runs a queued redaction: writes the copy, then registers it as a new item (or records the failure)."""
    if not _claim(ctx, job_id):
        with ctx.db.session() as session:
            job = get(session, job_id)
            raise Conflict(f"redaction {job_id} is {job.status}", hint="a redaction runs once")
    with ctx.db.session() as session:
        job = get(session, job_id)
        original = items.get(session, job.item_id)
        body = RedactionIn.model_validate(job.request)
        source, actor = ctx.media.path(original.ref), job.requested_by
    target = ctx.media.incoming() / f"{new_id()}.mp4"
    try:
        if not source.is_file():
            raise NotFound(f"the original of item {original.id} is missing from the store", hint="verify it")
        plan = plan_for(body)
        try:
            result = redact_video.redact(source, target, plan, progress=_progress(ctx, job_id, progress))
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise Unavailable(
                    f"the evidence store is full ({exc.strerror}) while writing the redacted copy of "
                    f"{original.id}; nothing was registered and the original is untouched",
                    hint="free space on the media volume, then ask for the redaction again",
                ) from None
            raise
        digest, size = _digest(target)
        return _register(ctx, job_id, target, digest, size, operations(body, plan, result), result)
    except BaseException as exc:
        target.unlink(missing_ok=True)
        message = exc.message if isinstance(exc, SafeCityError) else f"{type(exc).__name__}: {exc}"
        _fail(ctx, job_id, actor=actor, message=message)
        raise


def _fail(ctx: Context, job_id: str, *, actor: str, message: str) -> None:
    try:
        with ctx.db.session() as session:
            job = get(session, job_id)
            job.status, job.error, job.finished_at, job.updated_at = (
                "failed",
                message[:500],
                utcnow(),
                utcnow(),
            )
            custody.record(
                session, job.item_id, actor=actor, action="redact_failed", reason=message, redaction=job.id
            )
    except Exception:  # a full disk may refuse the record too; the caller reports the failure itself
        log.exception("could not record the failure of redaction %s", job_id)


def _register(
    ctx: Context,
    job_id: str,
    staged: Path,
    digest: str,
    size: int,
    ops: list[dict[str, Any]],
    result: redact_video.Result,
) -> BodyWornRedaction:
    """Puts the copy in place and registers it as an item derived from the original, in one transaction."""
    ref = f"sha256:{digest}.mp4"
    with ctx.db.session() as session:
        job = get(session, job_id)
        original = items.get(session, job.item_id)
        twin = items.by_digest(session, digest)
        if twin is not None:  # the same redaction again gives the same bytes: that item it is
            staged.unlink(missing_ok=True)
            made = twin
        else:
            ctx.media.adopt(staged, ref)
            made = BodyWornItem(
                id=new_id(),
                sha256=digest,
                ref=ref,
                bytes=size,
                filename=f"{Path(original.filename).stem}.redacted.mp4"[:300],
                officer=original.officer,
                device=original.device,
                uploaded_by=job.requested_by,
                source=f"redaction:{job.id}",
                recorded_at=original.recorded_at,
                recorded_at_source=original.recorded_at_source,
                duration_s=original.duration_s,
                width=result.width,
                height=result.height,
                codec="h264" if result.video_codec != "mpeg4" else "mpeg4",
                categories=list(original.categories or []),
                incident_id=original.incident_id,
                track=list(original.track or []),
                access_class=original.access_class,
                allowed_users=list(original.allowed_users or []),
                do_not_disclose=original.do_not_disclose,  # lifted on the copy only by a classify
                retain_until=original.retain_until,
                status="active",
                verified_at=utcnow(),
                verified_ok=True,
                derived_from=original.id,
                operations=ops,
            )
            session.add(made)
            session.flush()
            media_owners.own(session, KIND, made.id, [ref], at=made.ingested_at)
        provenance = {"original": original.id, "original_sha256": original.sha256, "operations": ops}
        custody.record(
            session,
            made.id,
            actor=job.requested_by,
            action="derive" if made is not twin else "duplicate",
            reason=job.request.get("reason", ""),
            redaction=job.id,
            sha256=digest,
            bytes=size,
            do_not_disclose=made.do_not_disclose,
            **provenance,
        )
        custody.record(
            session,
            original.id,
            actor=job.requested_by,
            action="redact",
            reason=job.request.get("reason", ""),
            redaction=job.id,
            result=made.id,
            sha256=digest,
            operations=[op["op"] for op in ops],
        )
        if made is not twin:
            from safecity.bodyworn import cases

            for number, status in items.cases_of(session, [original.id]).get(original.id, []):
                if status == "open":
                    cases.add_item(
                        session,
                        number,
                        kind=KIND,
                        ref_id=made.id,
                        actor=job.requested_by,
                        note=f"redacted copy of {original.id}",
                    )
        job.status, job.result_item_id, job.frames_done = "done", made.id, result.frames
        job.frames_total = max(job.frames_total, result.frames)
        job.finished_at = job.updated_at = utcnow()
        session.flush()
        session.expunge(job)
    return job


def redact_now(
    ctx: Context, item_id: str, body: RedactionIn, *, actor: str, progress: Progress | None = None
) -> BodyWornRedaction:
    """Asks for and runs a redaction at once (the command line); returns it done."""
    with ctx.db.session() as session:
        job_id = request(session, item_id, body, actor=actor).id
    return run(ctx, job_id, progress=progress)


def run_pending(ctx: Context) -> int:
    """Runs queued redactions one after another (the job); puts back those a dead process left running."""
    with ctx.db.session() as session:
        session.execute(
            update(BodyWornRedaction)
            .where(
                BodyWornRedaction.status == "running", BodyWornRedaction.updated_at < utcnow() - STALE_AFTER
            )
            .values(status="queued")
        )
        queued = session.scalars(
            select(BodyWornRedaction.id)
            .where(BodyWornRedaction.status == "queued")
            .order_by(BodyWornRedaction.requested_at)
        ).all()
    done = 0
    for job_id in queued:
        try:
            run(ctx, job_id)
            done += 1
        except Conflict:
            continue  # another process took it
        except Exception:  # recorded on the job and in custody; the next one runs
            log.exception("redaction %s failed", job_id)
    return done
