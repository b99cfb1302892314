"""Bringing body-worn recordings in: from a docking-station folder or a finished upload.

Each original is read once whole: hashed (SHA-256) while it is written into the media store's
incoming folder, and checked to be video (PyAV, reading the source's start beside the copy), then
renamed into place under its digest, read-only. Only then is the item registered, in one transaction
with its media claim and its first custody entry, so a file cut off, a file that is not video, a full
disk or a crash leaves no item behind (at worst an unclaimed file that the media sweep removes).
The same bytes brought twice are one item.

    report = import_folder(ctx, Path("/mnt/dock/BC-17"), ItemMeta(officer="pc.rana", device="BC-17"),
                           actor="dock-7")
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import av
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from safecity.audit import service as audit
from safecity.bodyworn import custody, gpmf, gps
from safecity.bodyworn import service as items
from safecity.bodyworn.models import BodyWornItem, ImportReport, ImportResult, ItemMeta
from safecity.core.clock import as_utc, utcnow
from safecity.core.context import Context
from safecity.core.errors import InvalidInput, SafeCityError, Unavailable
from safecity.core.ids import new_id
from safecity.core.media import MediaStore
from safecity.evidence import service as media_owners

BLOCK = 4 * 1024**2
# The containers body cameras write, and the store's name for each.
CONTAINERS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "mkv",
    ".avi": "avi",
    ".webm": "webm",
    ".ts": "ts",
    ".mts": "ts",
    ".m2ts": "ts",
}
KIND = "bodyworn"
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


@dataclass(frozen=True)
class Staged:
    """A file received into the store's incoming folder and hashed on the way."""

    path: Path
    sha256: str
    bytes: int


@dataclass
class Track:
    """A recording's GPS track from its sidecar or the file itself, or why it was not used."""

    fixes: list[gps.Fix]
    raw: bytes | None = None
    error: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Probe:
    """What the container says about a recording."""

    container: str
    codec: str
    width: int
    height: int
    duration_s: float | None
    recorded_at: datetime | None
    location: str | None = None
    nmea: bytes = b""
    nmea_stream: int | None = None
    gpmf: Track | None = None


# A file whose first this many packets (some seconds of a recording) hold no NMEA sentence or GPMF
# payload in a subtitle or data stream (a timecode track, say) is not read further: that would read it
# all again.
NMEA_SEARCH_PACKETS = 600


def _location(*metadata: dict[str, str]) -> str | None:
    for meta in metadata:
        for key in gps.LOCATION_KEYS:
            if meta.get(key, "").strip():
                return meta[key].strip()
    return None


def _embedded_gps(container: Any, name: str) -> tuple[bytes, int | None, Track | None]:
    """Returns the NMEA sentences of the first subtitle or data stream that carries them, and its index;
    and the GPS track of the first GoPro GPMF stream (`gpmd`), or why it could not be read.

    A stream that cannot be read to its end gives what was read of it: the video is evidence still.
    """
    candidates = {s.index for s in container.streams if s.type in ("subtitle", "data")}
    if not candidates:
        return b"", None, None
    found: dict[int, list[bytes]] = {}
    gpmf_stream: gpmf.GpmfTrack | None = None
    gpmf_index, gpmf_error = -1, None
    size = 0
    try:
        container.seek(0)
        for count, packet in enumerate(container.demux(), start=1):
            if packet.stream.index in candidates and packet.size:
                data = bytes(packet)
                if gpmf.starts_gpmf(data):
                    if gpmf_stream is None:
                        gpmf_index = packet.stream.index
                        gpmf_stream = gpmf.GpmfTrack(f"stream #{gpmf_index} of {name}")
                    if packet.stream.index == gpmf_index and gpmf_error is None:
                        try:
                            gpmf_stream.add(data, _seconds(packet))
                        except gps.TrackError as exc:
                            gpmf_error = str(exc)
                    continue
                sentences = gps.nmea_sentences(data)
                if sentences:
                    found.setdefault(packet.stream.index, []).append(sentences)
                    size += len(sentences)
            searched = found or gpmf_stream is not None
            if (not searched and count >= NMEA_SEARCH_PACKETS) or size > gps.MAX_SIDECAR_BYTES:
                break
    except av.FFmpegError:
        pass
    track = _gpmf_track(gpmf_stream, gpmf_error)
    if not found:
        return b"", None, track
    first = min(found)
    return b"\n".join(found[first]), first, track


def _seconds(packet: Any) -> float | None:
    if packet.duration and packet.time_base:
        return float(packet.duration * packet.time_base)
    return None


def _gpmf_track(stream: gpmf.GpmfTrack | None, error: str | None) -> Track | None:
    if stream is None:
        return None
    name = f"{stream.where} (GoPro GPMF)"
    if error is not None:
        return Track([], error=error, name=name)
    try:
        fixes = stream.fixes()
    except gps.TrackError as exc:
        return Track([], error=str(exc), name=name)
    return Track(gps.thin(fixes), name=name) if fixes else None


def container_of(name: str) -> str:
    """Returns the store's extension for a recording's file name; raises for other files."""
    ext = CONTAINERS.get(Path(name).suffix.lower())
    if ext is None:
        raise InvalidInput(
            f"{name} is not a recording (by its name)",
            hint=f"body-worn recordings end in {', '.join(sorted(CONTAINERS))}",
        )
    return ext


def disk_full(exc: OSError, what: str) -> Unavailable:
    """Returns the error a person gets when the store's disk is full."""
    return Unavailable(
        f"the evidence store is full ({os.strerror(exc.errno or errno.ENOSPC)}) while receiving {what}; "
        "nothing was registered and the original is untouched",
        hint="free space on the media volume, then run the same import again: it resumes",
    )


# The writer flushes to disk as it goes, every this many bytes: the disk works while the hash runs,
# and the fsync at the end waits for the last stretch only.
FLUSH_EVERY = 64 * 1024**2
# Blocks in flight between the reader and the writer and hasher.
DEPTH = 4


_helpers = threading.local()


def helper(role: str) -> ThreadPoolExecutor:
    """Returns the calling thread's own one-worker helper for `role`, made once and kept with the thread:
    starting threads for every file costs milliseconds each on a loaded machine."""
    pool: ThreadPoolExecutor | None = getattr(_helpers, role, None)
    if pool is None:
        pool = ThreadPoolExecutor(1, thread_name_prefix=f"bodyworn-{role}")
        setattr(_helpers, role, pool)
    return pool


def _write_block(fd: int, block: memoryview, flush: bool) -> None:
    while block:
        written = os.write(fd, block)
        block = block[written:]
    if flush:
        os.fdatasync(fd)


def copy_into(source: BinaryIO, fd: int, *, digest: Any | None = None) -> int:
    """Copies `source` to `fd` in blocks, updating `digest` on the way (one read); returns the bytes.

    Three threads share each block: this one reads the next while one writes it (flushing to disk every
    `FLUSH_EVERY` bytes) and one hashes it, all three outside the GIL (hashlib lets go of it for large
    buffers), so the copy goes at the pace of the slowest of reading, hashing and writing, not of their
    sum. A block is read into again only when both are done with it; the two helpers are the calling
    thread's own, kept from file to file. The caller fsyncs. (Without a digest it is the disk's own
    pace: bench_evidence.py.)
    """
    size = 0
    buffers = [bytearray(BLOCK) for _ in range(DEPTH)]
    pending: deque[list[Future[None]]] = deque()
    writer, hasher = helper("write"), helper("hash")
    try:
        turn = 0
        while True:
            if len(pending) >= DEPTH:  # the buffer about to be reused must be written and hashed first
                for future in pending.popleft():
                    future.result()
            buffer = buffers[turn % DEPTH]
            n = source.readinto(buffer)  # type: ignore[attr-defined]
            if not n:
                break
            view = memoryview(buffer)[:n]
            flush = (size + n) // FLUSH_EVERY > size // FLUSH_EVERY
            jobs = [writer.submit(_write_block, fd, view, flush)]
            if digest is not None:
                jobs.append(hasher.submit(digest.update, view))
            pending.append(jobs)
            size += n
            turn += 1
        while pending:
            for future in pending.popleft():
                future.result()
    finally:
        # After a failure: what has not started never will, and what has is waited for (it uses `fd`).
        left = [future for jobs in pending for future in jobs if not future.cancel()]
        wait(left)
    return size


def stage(source: BinaryIO, store: MediaStore, ext: str, *, what: str) -> Staged:
    """Copies `source` into the incoming folder, hashing it on the way; fsynced before it returns.

    Any failure removes the partial file; a full disk is an Unavailable that says so.
    """
    path = store.incoming() / f"{new_id()}.{ext}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    digest = hashlib.sha256()
    try:
        size = copy_into(source, fd, digest=digest)
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        if exc.errno in _DISK_FULL:
            raise disk_full(exc, what) from None
        raise
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    return Staged(path, digest.hexdigest(), size)


def _creation_time(*metadata: dict[str, str]) -> datetime | None:
    for meta in metadata:
        value = meta.get("creation_time")
        if value:
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            if moment.year > 1971:  # cameras without a set clock write the epoch
                return as_utc(moment)
    return None


def probe(path: Path, name: str) -> Probe:
    """Returns what the container says; raises InvalidInput when PyAV finds no decodable video in it."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise InvalidInput(f"{name} holds no video stream", hint="is it an audio file or a photo?")
            video = container.streams.video[0]
            frame = next(container.decode(video), None)
            if frame is None:
                raise InvalidInput(
                    f"{name} has a video stream but no frame could be decoded", hint="damaged?"
                )
            duration: float | None = None
            if container.duration:
                duration = container.duration / 1_000_000
            elif video.duration and video.time_base:
                duration = float(video.duration * video.time_base)
            nmea, nmea_stream, gpmf_track = _embedded_gps(container, name)
            return Probe(
                container=(container.format.name or "").split(",")[0],
                codec=video.codec_context.name,
                width=int(video.codec_context.width),
                height=int(video.codec_context.height),
                duration_s=round(duration, 3) if duration else None,
                recorded_at=_creation_time(dict(container.metadata), dict(video.metadata)),
                location=_location(dict(container.metadata), dict(video.metadata)),
                nmea=nmea,
                nmea_stream=nmea_stream,
                gpmf=gpmf_track,
            )
    except av.FFmpegError as exc:
        raise InvalidInput(
            f"{name} is not a video PyAV can read ({getattr(exc, 'strerror', None) or exc})",
            hint="is it a recording?",
        ) from None


def read_sidecar(path: Path | None) -> Track:
    """Returns the track of a sidecar file (an error message instead when it does not parse)."""
    if path is None:
        return Track([])
    try:
        return Track(gps.parse_track(path), raw=path.read_bytes(), name=path.name)
    except gps.TrackError as exc:
        return Track([], raw=path.read_bytes(), error=str(exc), name=path.name)


def embedded_track(found: Probe, name: str) -> Track:
    """Returns the track the file itself carries: NMEA sentences in a stream, else GoPro's GPMF GPS,
    else its ISO 6709 location (a place held from the recording's start); an error message instead
    when it does not parse."""
    if found.nmea:
        where = f"stream #{found.nmea_stream} of {name}"
        try:
            fixes = sorted(gps.parse_nmea(found.nmea, where), key=lambda fix: fix[0])
            return Track(gps.thin(fixes), name=f"{where} (NMEA)")
        except gps.TrackError as exc:
            return Track([], error=str(exc), name=f"{where} (NMEA)")
    if found.gpmf is not None:
        return found.gpmf
    if found.location:
        where = f"the location written in {name}"
        try:
            lat, lon = gps.parse_iso6709(found.location, where)
        except gps.TrackError as exc:
            return Track([], error=str(exc), name=where)
        if found.recorded_at is None:
            return Track(
                [], error=f"{where}: the recording's time is unknown, so it cannot be placed", name=where
            )
        return Track([(found.recorded_at, lat, lon)], name=f"{where} (ISO 6709)")
    return Track([])


def refuse(ctx: Context, *, actor: str, what: str, reason: str, source: str) -> None:
    """Writes a refused recording to the audit log (there is no item to hang it on)."""
    try:
        with ctx.db.session() as session:
            audit.record(
                session,
                actor=actor,
                action="bodyworn.refused",
                target=source[:300],
                detail={"file": what, "reason": reason},
            )
    except Exception:  # a full disk may refuse the audit row too; the caller reports the refusal itself
        pass


def register(
    ctx: Context,
    staged: Staged,
    *,
    filename: str,
    meta: ItemMeta,
    actor: str,
    source: str,
    track: Track,
    source_size: int | None = None,
    source_mtime_ns: int | None = None,
    custody_detail: dict[str, object] | None = None,
    probed: Probe | None = None,
) -> ImportResult:
    """Checks a staged file is video, puts it in place and registers its item (or finds its twin).

    A file that is not video is removed and refused (audited). The same digest as an item already in is
    a duplicate: the staged copy is removed and the existing item's custody log notes who brought it again.
    `probed` is what the same bytes were found to be already (the source, probed while it was copied).
    """
    try:
        found = probed or probe(staged.path, filename)
    except InvalidInput as exc:
        staged.path.unlink(missing_ok=True)
        refuse(ctx, actor=actor, what=filename, reason=exc.message, source=source)
        raise
    if track.raw is None and not track.fixes and track.error is None:  # no sidecar: what the file carries
        track = embedded_track(found, filename)
    ref = f"sha256:{staged.sha256}.{staged.path.suffix.lstrip('.')}"
    with ctx.db.session() as session:
        twin = items.by_digest(session, staged.sha256)
        if twin is not None and twin.status == "purged":
            # The same bytes again after their item's file was released: the item gets its file back.
            ctx.media.adopt(staged.path, twin.ref)
            media_owners.own(session, KIND, twin.id, [twin.ref, twin.track_ref])
            twin.status, twin.deleted_at, twin.deleted_by, twin.delete_reason, twin.purge_after = (
                "active",
                None,
                None,
                None,
                None,
            )
            twin.ingested_at, twin.verified_at, twin.verified_ok = utcnow(), utcnow(), True
            custody.record(
                session,
                twin.id,
                actor=actor,
                action="reingest",
                reason="the file again after its purge",
                source=source,
            )
            return ImportResult(
                path=source,
                outcome="ingested",
                item_id=twin.id,
                sha256=staged.sha256,
                bytes=staged.bytes,
                message=f"item {twin.id} had been purged; it has its file again",
            )
        if twin is not None:
            staged.path.unlink(missing_ok=True)
            custody.record(
                session, twin.id, actor=actor, action="duplicate", reason="the same file again", source=source
            )
            return ImportResult(
                path=source,
                outcome="duplicate",
                item_id=twin.id,
                sha256=staged.sha256,
                bytes=staged.bytes,
                message=f"already in as item {twin.id}",
            )
    ctx.media.adopt(staged.path, ref)
    track_ref = ctx.media.put(track.raw, "bin") if track.raw is not None else None
    recorded_at, recorded_source = found.recorded_at, "container" if found.recorded_at else ""
    if recorded_at is None and track.fixes:
        recorded_at, recorded_source = track.fixes[0][0], "gps"
    item = BodyWornItem(
        id=new_id(),
        sha256=staged.sha256,
        ref=ref,
        bytes=staged.bytes,
        filename=filename[:300],
        officer=meta.officer,
        device=meta.device,
        uploaded_by=actor,
        source=source[:500],
        source_size=source_size,
        source_mtime_ns=source_mtime_ns,
        recorded_at=recorded_at,
        recorded_at_source=recorded_source,
        duration_s=found.duration_s,
        width=found.width,
        height=found.height,
        codec=found.codec,
        categories=list(dict.fromkeys(meta.categories)),
        incident_id=meta.incident_id,
        track=gps.as_rows(track.fixes),
        track_ref=track_ref,
        track_error=track.error[:500] if track.error else None,
        access_class="normal",
        allowed_users=[],
        operations=[],
        status="active",
        # Hashed on arrival: that is its first verification; the schedule checks it again in due time.
        verified_at=utcnow(),
        verified_ok=True,
    )
    try:
        with ctx.db.session() as session:
            session.add(item)
            session.flush()
            media_owners.own(session, KIND, item.id, [ref, track_ref], at=item.ingested_at)
            custody.record(
                session,
                item.id,
                actor=actor,
                action="ingest",
                reason="received from " + source,
                sha256=staged.sha256,
                bytes=staged.bytes,
                officer=meta.officer,
                device=meta.device,
                categories=item.categories,
                sidecar=track.name if track.raw is not None else None,
                gps_in_file=track.name if track.raw is None else None,
                track_points=len(track.fixes),
                track_error=track.error,
                **(custody_detail or {}),
            )
            if meta.case:
                from safecity.bodyworn import cases

                cases.add_item(session, meta.case, kind=KIND, ref_id=item.id, actor=actor, note="at ingest")
    except IntegrityError:
        # The same bytes were registered by another import at this very moment: theirs is the item.
        with ctx.db.session() as session:
            twin = items.by_digest(session, staged.sha256)
        if twin is None:
            raise
        return ImportResult(
            path=source,
            outcome="duplicate",
            item_id=twin.id,
            sha256=staged.sha256,
            bytes=staged.bytes,
            message=f"already in as item {twin.id}",
        )
    kind = "sidecar" if track.raw is not None else "track in the file"
    message = f"GPS {kind} not used: {track.error}" if track.error else ""
    return ImportResult(
        path=source,
        outcome="ingested",
        item_id=item.id,
        sha256=staged.sha256,
        bytes=staged.bytes,
        message=message,
    )


def check_meta(ctx: Context, session: Session, meta: ItemMeta) -> None:
    """Refuses metadata that would be wrong for every file: unknown categories, a case not open."""
    items.check_categories(ctx.settings, meta.categories)
    if meta.case:
        from safecity.bodyworn import cases

        cases.open_case(session, meta.case)


def ingest_file(
    ctx: Context, path: Path, meta: ItemMeta, *, actor: str, source: str | None = None
) -> ImportResult:
    """Ingests one recording (and its GPS sidecar, if one lies beside it).

    The source is probed while it is copied, off the copy's path; when it changed meanwhile (its size or
    time) or was found not to be video, the staged copy itself is probed (and refused) instead.
    """
    name = source or path.name
    ext = container_of(path.name)
    stat = path.stat()
    track = read_sidecar(gps.sidecar_for(path))
    probing = helper("probe").submit(probe, path, path.name)
    try:
        with path.open("rb", buffering=0) as handle:
            staged = stage(handle, ctx.media, ext, what=name)
    finally:
        wait([probing])
    try:
        probed: Probe | None = probing.result()
    except (InvalidInput, OSError):
        probed = None
    after = path.stat()
    if (after.st_size, after.st_mtime_ns) != (
        stat.st_size,
        stat.st_mtime_ns,
    ) or after.st_size != staged.bytes:
        probed = None
    return register(
        ctx,
        staged,
        filename=path.name,
        meta=meta,
        actor=actor,
        source=name,
        track=track,
        source_size=stat.st_size,
        source_mtime_ns=stat.st_mtime_ns,
        probed=probed,
    )


def recordings_in(folder: Path) -> tuple[list[Path], int]:
    """Returns the recordings under `folder` (sorted) and how many other files were passed over."""
    found, others = [], 0
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix.lower() in CONTAINERS:
            found.append(path)
        elif not any(path.name.lower().endswith(s) for s in gps.SIDECAR_SUFFIXES):
            others += 1
    return found, others


def _known(ctx: Context, device: str, sources: list[str]) -> dict[str, tuple[int | None, int | None, str]]:
    """Returns, for sources of `device` already in, their size, mtime and item id."""
    known: dict[str, tuple[int | None, int | None, str]] = {}
    with ctx.db.session() as session:
        for start in range(0, len(sources), 500):
            rows = session.execute(
                select(
                    BodyWornItem.source,
                    BodyWornItem.source_size,
                    BodyWornItem.source_mtime_ns,
                    BodyWornItem.id,
                ).where(BodyWornItem.device == device, BodyWornItem.source.in_(sources[start : start + 500]))
            )
            for source, size, mtime, item_id in rows:
                known[source] = (size, mtime, item_id)
    return known


Progress = Callable[[ImportResult, int], None]


def import_folder(
    ctx: Context, folder: Path, meta: ItemMeta, *, actor: str, progress: Progress | None = None
) -> ImportReport:
    """Ingests every recording under a docking folder; a re-run skips what is in already.

    A file already in (same device, same path, size and time) is skipped without being read; a file
    whose bytes are in under another name is a duplicate. A refused file (not video) does not stop the
    rest; a full disk does (the next run resumes). `progress(result, bytes)` is called per file.
    """
    if not folder.is_dir():
        raise InvalidInput(f"{folder} is not a folder", hint="give the docking station's folder")
    with ctx.db.session() as session:
        check_meta(ctx, session, meta)
    started = time.perf_counter()
    paths, others = recordings_in(folder)
    report = ImportReport(files=len(paths))
    if others:
        report.warnings.append(
            f"{others} other file(s) in the folder are not recordings and were passed over"
        )
    sources = {path: f"{folder.name}/{path.relative_to(folder).as_posix()}" for path in paths}
    known = _known(ctx, meta.device, list(sources.values()))
    for path in paths:
        source = sources[path]
        stat = path.stat()
        seen = known.get(source)
        if seen is not None and seen[0] == stat.st_size and seen[1] == stat.st_mtime_ns:
            result = ImportResult(path=source, outcome="skipped", item_id=seen[2], message="already in")
        else:
            try:
                result = ingest_file(ctx, path, meta, actor=actor, source=source)
            except Unavailable:
                raise
            except SafeCityError as exc:
                result = ImportResult(path=source, outcome="refused", message=str(exc))
            except OSError as exc:
                result = ImportResult(path=source, outcome="failed", message=f"could not be read: {exc}")
        _count(report, result)
        if progress is not None:
            progress(result, stat.st_size)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _count(report: ImportReport, result: ImportResult) -> None:
    report.results.append(result)
    if result.outcome == "ingested":
        report.ingested += 1
        report.bytes += result.bytes
        if result.message:
            report.warnings.append(f"{result.path}: {result.message}")
    elif result.outcome == "skipped":
        report.skipped += 1
    elif result.outcome == "duplicate":
        report.duplicates += 1
    elif result.outcome == "refused":
        report.refused += 1
    else:
        report.failed += 1
