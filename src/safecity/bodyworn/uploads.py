"""Resumable chunked uploads (tus-style) from the officer's page or a docking station over HTTP.

Open an upload with its length and metadata (`create`), send chunks at offsets (`append`), ask where
it stands after a dropped connection (`offset`), send the rest. Bytes are hashed as they arrive; the
hash state lives in the process that received them, and any other process (or this one after a
restart) hashes the part received so far once and carries on. When the last byte arrives the digest is
checked against the client's, the file against being video, and only then is an item registered. A
cut-off upload is never an item; one left without a chunk for `bodyworn_upload_hours` is abandoned.

    POST   /api/bodyworn/uploads           {"length": 52428800, "filename": "FILE0001.MP4", "officer": …}
    PATCH  /api/bodyworn/uploads/{id}      Upload-Offset: 0, body: the first chunk
    HEAD   /api/bodyworn/uploads/{id}      → Upload-Offset: 8388608
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import threading
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from safecity.audit import service as audit
from safecity.bodyworn import ingest
from safecity.bodyworn.models import BodyWornUpload, ImportResult, ItemMeta, UploadIn, UploadOut
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.errors import Conflict, Forbidden, InvalidInput, NotFound, SafeCityError
from safecity.core.ids import new_id

API = "/api/bodyworn/uploads"
# Bytes gathered from the request before one write (and hash) in a worker thread.
FLUSH = 4 * 1024**2
# Head-room kept free on the media volume beyond the upload itself.
SPARE = 64 * 1024**2

_lock = threading.Lock()
_hashers: dict[str, tuple[int, Any]] = {}


def folder(ctx: Context) -> Path:
    """Returns where partial uploads are kept (beside the store: finishing one is a rename)."""
    path = ctx.media.incoming() / "uploads"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def part_path(ctx: Context, upload: BodyWornUpload) -> Path:
    """Returns the file that holds the bytes received so far."""
    return folder(ctx) / f"{upload.id}.{ingest.container_of(upload.filename)}"


def offset_of(ctx: Context, upload: BodyWornUpload) -> int:
    """Returns how many bytes of the upload have arrived."""
    if upload.status == "done":
        return upload.length
    try:
        return part_path(ctx, upload).stat().st_size
    except FileNotFoundError:
        return 0


def out(ctx: Context, upload: BodyWornUpload) -> UploadOut:
    """Returns where an upload stands."""
    return UploadOut(
        id=upload.id,
        length=upload.length,
        offset=offset_of(ctx, upload),
        filename=upload.filename,
        status=upload.status,
        item_id=upload.item_id,
        error=upload.error,
        url=f"{API}/{upload.id}",
    )


def create(ctx: Context, session: Session, body: UploadIn, *, actor: str) -> BodyWornUpload:
    """Opens an upload: checks the name, metadata and free space before any byte is sent."""
    ingest.container_of(body.filename)
    meta = ItemMeta.model_validate(body.model_dump(include=set(ItemMeta.model_fields)))
    ingest.check_meta(ctx, session, meta)
    free = shutil.disk_usage(folder(ctx)).free
    if free < body.length + SPARE:
        raise ingest.disk_full(OSError(errno.ENOSPC, "no space"), f"{body.filename} ({body.length} bytes)")
    upload = BodyWornUpload(
        id=new_id(),
        created_by=actor,
        length=body.length,
        filename=Path(body.filename).name[:300],
        meta={**meta.model_dump(), "sha256": body.sha256.lower() if body.sha256 else None},
        status="open",
    )
    session.add(upload)
    session.flush()
    part = part_path(ctx, upload)
    part.touch(mode=0o600, exist_ok=False)
    audit.record(
        session,
        actor=actor,
        action="bodyworn.upload_open",
        target=f"upload:{upload.id}",
        detail={
            "file": upload.filename,
            "length": body.length,
            "officer": meta.officer,
            "device": meta.device,
        },
    )
    return upload


def get(session: Session, upload_id: str, *, actor: str | None = None) -> BodyWornUpload:
    """Returns an upload (only to the user who opened it, when `actor` is given)."""
    upload = session.get(BodyWornUpload, upload_id)
    if upload is None:
        raise NotFound(f"no upload {upload_id}", hint="open a new one: POST " + API)
    if actor is not None and upload.created_by != actor:
        raise Forbidden(f"upload {upload_id} was opened by someone else", hint="open your own upload")
    return upload


def _hasher_at(path: Path, upload_id: str, offset: int) -> Any:
    """Returns the hash of the first `offset` bytes: kept from the last chunk, or computed from the file."""
    with _lock:
        kept = _hashers.pop(upload_id, None)
    if kept is not None and kept[0] == offset:
        return kept[1]
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as handle:
        remaining = offset
        while remaining:
            block = handle.read(min(remaining, ingest.BLOCK))
            if not block:
                break
            digest.update(block)
            remaining -= len(block)
    return digest


def _write(fd: int, digest: Any, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    digest.update(data)


async def append(
    ctx: Context, upload_id: str, offset: int, chunks: AsyncIterator[bytes], *, actor: str
) -> tuple[UploadOut, ImportResult | None]:
    """Writes a chunk at `offset` (which must be where the upload stands); finishes the upload at its end.

    What arrived before a dropped connection is kept, so the client asks the offset and goes on from
    there. Two requests writing one upload at once: the second gets a Conflict.
    """
    import asyncio

    def opened() -> BodyWornUpload:
        with ctx.db.session() as session:
            return get(session, upload_id, actor=actor)

    upload = await asyncio.to_thread(opened)
    if upload.status != "open":
        raise Conflict(f"upload {upload_id} is {upload.status}", hint=upload.error or "open a new upload")
    path = part_path(ctx, upload)
    fd = os.open(path, os.O_WRONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(
                f"another request is writing upload {upload_id}",
                hint="wait for it, then ask the offset (HEAD)",
            ) from None
        current = os.fstat(fd).st_size
        if offset != current:
            raise Conflict(
                f"the chunk starts at byte {offset} but upload {upload_id} has {current} bytes",
                hint=f"send from Upload-Offset {current} (HEAD {API}/{upload_id} tells it)",
            )
        os.lseek(fd, current, os.SEEK_SET)
        digest = await asyncio.to_thread(_hasher_at, path, upload_id, current)
        pending = bytearray()
        try:
            async for chunk in chunks:
                if current + len(pending) + len(chunk) > upload.length:
                    raise InvalidInput(
                        f"upload {upload_id} is {upload.length} bytes long; this chunk goes past its end",
                        hint="send exactly the declared length",
                    )
                pending += chunk
                if len(pending) >= FLUSH:
                    await asyncio.to_thread(_write, fd, digest, bytes(pending))
                    current += len(pending)
                    pending.clear()
            if pending:
                await asyncio.to_thread(_write, fd, digest, bytes(pending))
                current += len(pending)
                pending.clear()
        except OSError as exc:
            os.ftruncate(fd, current)  # what was written and hashed stays; the rest goes
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise ingest.disk_full(exc, upload.filename) from None
            raise
        finally:
            # Bytes that arrived but were not yet written (a dropped connection) are written now.
            if pending:
                with contextlib.suppress(OSError):
                    _write(fd, digest, bytes(pending))
                    current += len(pending)
            with _lock:
                _hashers[upload_id] = (current, digest)
            await asyncio.to_thread(_touch, ctx, upload_id)
        if current < upload.length:
            return await asyncio.to_thread(_status, ctx, upload_id), None
        os.fsync(fd)
    finally:
        os.close(fd)
    with _lock:
        _hashers.pop(upload_id, None)
    result = await asyncio.to_thread(finish, ctx, upload_id, digest.hexdigest(), actor=actor)
    return await asyncio.to_thread(_status, ctx, upload_id), result


def _touch(ctx: Context, upload_id: str) -> None:
    with ctx.db.session() as session:
        upload = session.get(BodyWornUpload, upload_id)
        if upload is not None:
            upload.updated_at = utcnow()


def _status(ctx: Context, upload_id: str) -> UploadOut:
    with ctx.db.session() as session:
        return out(ctx, get(session, upload_id))


def _end(
    ctx: Context, upload_id: str, status: str, *, error: str | None = None, item_id: str | None = None
) -> None:
    with ctx.db.session() as session:
        upload = get(session, upload_id)
        upload.status, upload.error, upload.item_id, upload.updated_at = status, error, item_id, utcnow()


def finish(ctx: Context, upload_id: str, sha256: str, *, actor: str) -> ImportResult:
    """Checks and registers a complete upload; a digest mismatch or a file that is not video is refused."""
    with ctx.db.session() as session:
        upload = get(session, upload_id)
        meta = ItemMeta.model_validate({k: v for k, v in upload.meta.items() if k != "sha256"})
        claimed = upload.meta.get("sha256")
    path = part_path(ctx, upload)
    source = f"upload:{upload.id}"
    if claimed and claimed != sha256:
        path.unlink(missing_ok=True)
        reason = f"the file that arrived has SHA-256 {sha256}, the client said {claimed}"
        ingest.refuse(ctx, actor=actor, what=upload.filename, reason=reason, source=source)
        _end(ctx, upload_id, "refused", error=reason)
        raise Conflict(
            f"upload {upload_id} refused: {reason}", hint="the file changed or was damaged; send it again"
        )
    staged = ingest.Staged(path, sha256, upload.length)
    try:
        result = ingest.register(
            ctx,
            staged,
            filename=upload.filename,
            meta=meta,
            actor=actor,
            source=source,
            track=ingest.Track([]),
            custody_detail={"client_sha256": claimed, "upload": upload.id},
        )
    except SafeCityError as exc:
        _end(ctx, upload_id, "refused", error=exc.message[:500])
        raise
    _end(ctx, upload_id, "done", item_id=result.item_id)
    return result


def abandon(ctx: Context, session: Session, upload: BodyWornUpload, *, actor: str, reason: str) -> None:
    """Ends an unfinished upload and removes its partial file (audited)."""
    if upload.status != "open":
        raise Conflict(f"upload {upload.id} is {upload.status}")
    received = offset_of(ctx, upload)
    part_path(ctx, upload).unlink(missing_ok=True)
    upload.status, upload.error, upload.updated_at = "abandoned", reason[:500], utcnow()
    with _lock:
        _hashers.pop(upload.id, None)
    audit.record(
        session,
        actor=actor,
        action="bodyworn.upload_abandoned",
        target=f"upload:{upload.id}",
        detail={"file": upload.filename, "received": received, "length": upload.length, "reason": reason},
    )


def expire(ctx: Context) -> int:
    """Abandons uploads that received nothing for `bodyworn_upload_hours`; returns how many."""
    cutoff = utcnow() - timedelta(hours=ctx.settings.bodyworn_upload_hours)
    with ctx.db.session() as session:
        stale = session.scalars(
            select(BodyWornUpload).where(BodyWornUpload.status == "open", BodyWornUpload.updated_at < cutoff)
        ).all()
        for upload in stale:
            abandon(ctx, session, upload, actor="retention", reason="no chunk arrived in time")
        return len(stale)
