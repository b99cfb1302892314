"""`safecity faces enroll` and `safecity faces search`: watch-list work from the command line.

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
