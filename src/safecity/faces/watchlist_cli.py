"""`safecity faces enroll`, `search`, `reencode` and `purge-closed`: watch-list work from the command line.

Plain functions; the `faces` command group mounts them:

    app.command("enroll")(enroll)
    app.command("search")(search)
"""

from __future__ import annotations

import getpass
from datetime import datetime, timedelta
from pathlib import Path

import typer
from rich.table import Table

from safecity.core.cliutil import console, friendly_errors, open_context, print_json
from safecity.core.clock import as_utc, format_moment, utcnow
from safecity.core.errors import InvalidInput
from safecity.core.images import ImageLimits
from safecity.faces import replication, service


def _read_photos(paths: list[Path], limits: ImageLimits) -> list[bytes]:
    """Returns each photo's bytes, reading one byte past the limit so the decoder refuses a larger one."""
    for path in paths:
        if not path.is_file():
            raise InvalidInput(f"{path} is not a file", hint="give the path of a JPEG or PNG photo")
    photos = []
    for path in paths:
        with path.open("rb") as handle:
            photos.append(handle.read(limits.max_bytes + 1))
    return photos


def _when(value: str | None, *, what: str) -> datetime | None:
    if not value:
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        raise InvalidInput(
            f"{what} {value!r} is not a date", hint="use ISO form, e.g. 2025-03-01T18:00"
        ) from None


@friendly_errors
def enroll(
    photos: list[Path] = typer.Argument(..., help="One or more photos of the person, one face each."),
    name: str = typer.Option(..., help="Name of the person (or a description)."),
    category: str = typer.Option(..., help="wanted, missing or event."),
    legal_basis: str = typer.Option(..., help="FIR or warrant number (event order for event lists)."),
    requested_by: str = typer.Option(..., help="Who asks for the entry (the maker)."),
    expires: str | None = typer.Option(None, help="Expiry, ISO date-time in UTC (default: in --days days)."),
    days: int = typer.Option(30, min=1, help="Days until expiry when --expires is not given."),
    case_officer: str | None = typer.Option(None, help="Who to notify of a missing-person match."),
    event_camera: list[str] = typer.Option([], help="Event lists: a camera at the venue (repeat)."),
    event_start: str | None = typer.Option(None, help="Event lists: start, ISO date-time in UTC."),
    event_end: str | None = typer.Option(None, help="Event lists: end, ISO date-time in UTC."),
    threshold: float | None = typer.Option(None, help="Stricter similarity threshold for this entry."),
    approved_by: str | None = typer.Option(
        None, help="Approve at once as this (different) person, the checker; otherwise it stays pending."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the entry as JSON."),
) -> None:
    """Request a watch-list entry from photos (a bad photo is refused with the reason)."""
    ctx = open_context()
    limits = ImageLimits.from_settings(ctx.settings)
    try:
        with ctx.db.session() as session:
            entry = service.enroll(
                session,
                ctx.media,
                name=name,
                category=category,
                legal_basis=legal_basis,
                requested_by=requested_by,
                photos=_read_photos(photos, limits),
                expires_at=_when(expires, what="--expires") or utcnow() + timedelta(days=days),
                event_cameras=event_camera,
                event_start=_when(event_start, what="--event-start"),
                event_end=_when(event_end, what="--event-end"),
                case_officer=case_officer,
                threshold=threshold,
                limits=limits,
            )
            if approved_by:
                service.approve(session, entry.id, approved_by)
                # The running centre's outbox relay tells the workers once this commits.
                replication.stage_change(session, entry.id)
            out = service.view(session, entry)
    finally:
        ctx.db.dispose()
    if as_json:
        print_json(out.model_dump(mode="json"))
        return
    console.print(
        f"entry [bold]{out.id}[/] {out.name} ({out.category}) is [bold]{out.status}[/]"
        f" with {len(out.photos)} photo(s), expires {format_moment(out.expires_at)}"
    )
    if out.status == "pending":
        console.print("a different officer with approval rights must approve it before it matches")


@friendly_errors
def search(
    image: Path = typer.Argument(..., help="Photo with one face to look for."),
    k: int = typer.Option(5, min=1, max=50, help="How many candidates."),
    reason: str = typer.Option("command-line search", help="Why you search (written to the audit log)."),
    case_reference: str = typer.Option("", help="FIR or case number, if any."),
    actor: str | None = typer.Option(None, help="Who searches (default: the system user)."),
    as_json: bool = typer.Option(False, "--json", help="Print candidates as JSON."),
) -> None:
    """Search the active watch list for the face in IMAGE; prints candidates with similarity (audited)."""
    ctx = open_context()
    limits = ImageLimits.from_settings(ctx.settings)
    try:
        (photo,) = _read_photos([image], limits)
        with ctx.db.session() as session:
            candidates = service.search_watchlist(
                session,
                photo,
                actor=actor or f"cli:{getpass.getuser()}",
                reason=reason,
                case_reference=case_reference,
                threshold=service.default_threshold(ctx.settings),
                k=k,
                limits=limits,
            )
    finally:
        ctx.db.dispose()
    if as_json:
        print_json([c.model_dump(mode="json") for c in candidates])
        return
    if not candidates:
        console.print("the watch list has no active entries")
        return
    table = Table("entry", "name", "category", "similarity", "match")
    for c in candidates:
        table.add_row(c.entry_id, c.name, c.category.value, f"{c.similarity:.3f}", "yes" if c.match else "no")
    console.print(table)


@friendly_errors
def reencode(
    encoder: str | None = typer.Option(
        None,
        "--encoder",
        help="mobilefacenet, dlib or insightface-mbf (default: the configured face_encoder).",
    ),
    actor: str | None = typer.Option(
        None, help="Who re-encodes, for the audit log (default: the system user)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Encode the watch list's photos again with the face encoder, after it changed.

    Each open entry is done in its own transaction and told to the workers; a photo in which the new
    encoder's pipeline finds no usable face keeps its old embeddings (never compared by the new
    encoder) and is listed, so that someone replaces it.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from safecity.faces import reencode as reencoding

    ctx = open_context()
    limits = ImageLimits.from_settings(ctx.settings)
    who = actor or f"cli:{getpass.getuser()}"
    results: list[reencoding.EntryResult] = []
    try:
        photo_encoder = service.pipeline_encoder(encoder or ctx.settings.face_encoder)
        if photo_encoder.id != service.configured_encoder(ctx.settings):
            console.print(
                f"[yellow]warning:[/] face_encoder is {ctx.settings.face_encoder!r}: workers will not match "
                f"these entries until it names the encoder you re-encode to ({photo_encoder.id})"
            )
        with ctx.db.session() as session:
            pending = reencoding.stale_entries(session, photo_encoder.id)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=as_json,
        ) as bar:
            task = bar.add_task(f"re-encoding with {photo_encoder.id}", total=len(pending))
            for entry_id in pending:
                with ctx.db.session() as session:
                    results.append(
                        reencoding.reencode_entry(
                            session, ctx.media, entry_id, encoder=photo_encoder, actor=who, limits=limits
                        )
                    )
                bar.advance(task)
    finally:
        ctx.db.dispose()
    refused = [r for result in results for r in result.refused]
    lost = [result for result in results if not result.usable]
    if as_json:
        print_json(
            {
                "encoder": {"name": photo_encoder.id.name, "version": photo_encoder.id.version},
                "entries": len(results),
                "photos_reencoded": sum(r.reencoded for r in results),
                "photos_refused": [vars(r) for r in refused],
                "entries_without_usable_photo": [r.entry_id for r in lost],
            }
        )
        return
    entries = f"{len(results)} entr{'y' if len(results) == 1 else 'ies'}"
    console.print(
        f"{sum(r.reencoded for r in results)} photo(s) of {entries} re-encoded with {photo_encoder.id}"
    )
    for r in refused:
        console.print(f"  [red]•[/] {r.reason}")
    for result in lost:
        console.print(
            f"  [red]•[/] entry {result.entry_id} ({result.name}) has no photo the new encoder can use: "
            "it matches nowhere until a new photo is added"
        )


@friendly_errors
def purge_closed(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List the entries that would be purged; change nothing."
    ),
    days: int | None = typer.Option(
        None,
        "--days",
        min=1,
        help="Days after closing (default: the watchlist_closed_retention_days setting).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the entry ids as JSON."),
) -> None:
    """Delete the photos and face embeddings of watch-list entries closed longer than the retention.

    The centre does this every minute on its own; this runs it now (or, with --dry-run, shows what it
    would delete). The entries themselves and their matches stay; an entry a live hold names keeps its
    photos.
    """
    ctx = open_context()
    keep = days or ctx.settings.watchlist_closed_retention_days
    purged: list[str] = []
    try:
        while True:
            with ctx.db.session() as session:
                batch = service.purge_closed(session, keep_days=keep, dry_run=dry_run)
            purged += batch
            if dry_run or len(batch) < service.PURGE_BATCH:
                break
    finally:
        ctx.db.dispose()
    if as_json:
        print_json({"dry_run": dry_run, "closed_more_than_days": keep, "entries": purged})
        return
    verb = "would delete" if dry_run else "deleted"
    console.print(
        f"{verb} the photos and embeddings of {len(purged)} entr{'y' if len(purged) == 1 else 'ies'} "
        f"closed more than {keep} days ago" + (":" if purged else "")
    )
    for entry_id in purged:
        console.print(f"  • {entry_id}")
