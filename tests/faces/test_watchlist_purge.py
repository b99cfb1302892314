"""Closed watch-list entries lose their photos and embeddings after the retention; the record stays."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from typer.testing import CliRunner

from safecity.audit import service as audit
from safecity.cli import app
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.evidence import retention
from safecity.evidence import service as media_owners
from safecity.evidence.models import MediaOwner
from safecity.faces import service
from safecity.faces.models import WatchlistPhoto
from tests.faces.test_watchlist_governance import person_photo, request


def _photos(session, entry_id: str) -> int:  # type: ignore[no-untyped-def]
    return int(
        session.scalar(
            select(func.count()).select_from(WatchlistPhoto).where(WatchlistPhoto.entry_id == entry_id)
        )
        or 0
    )


def _claims(session, entry_id: str) -> int:  # type: ignore[no-untyped-def]
    query = select(func.count()).select_from(MediaOwner)
    return int(
        session.scalar(query.where(MediaOwner.kind == "watchlist_photo", MediaOwner.owner == entry_id)) or 0
    )


def _two(shade: int) -> list[bytes]:
    """Two shots of one person (each entry its own, so no two entries share a stored photo)."""
    return [person_photo(shade), person_photo(shade, noise=7)]


def _closed_entries(ctx: Context) -> dict[str, str]:
    """An open entry, one removed, one refused and one expired; returns their ids by name."""
    with ctx.db.session() as session:
        open_entry = request(session, ctx.media, name="Still Wanted", photos=_two(60))
        service.approve(session, open_entry.id, "supervisor.sana")
        removed = request(session, ctx.media, name="Arrested", photos=_two(100))
        service.approve(session, removed.id, "supervisor.sana")
        service.remove(session, removed.id, actor="supervisor.sana", reason="arrested on 3 May")
        refused = request(session, ctx.media, name="Refused", photos=_two(140))
        service.refuse(session, refused.id, actor="supervisor.sana", reason="no warrant attached")
        expired = request(
            session, ctx.media, name="Lapsed", photos=_two(180), expires_at=utcnow() + timedelta(hours=1)
        )
        service.approve(session, expired.id, "supervisor.sana")
        ids = {"open": open_entry.id, "removed": removed.id, "refused": refused.id, "expired": expired.id}
    with ctx.db.session() as session:
        assert service.expire_due(session, now=utcnow() + timedelta(hours=2)) == [ids["expired"]]
    return ids


def test_photos_of_entries_closed_longer_than_the_retention_are_deleted_once(ctx: Context) -> None:
    ids = _closed_entries(ctx)
    refs = {}
    with ctx.db.session() as session:
        for name, entry_id in ids.items():
            refs[name] = [p.media_ref for p in service.photos_of(session, entry_id)]
        # Closed a day ago: within a 30-day retention, nothing goes.
        assert service.purge_closed(session, keep_days=30) == []
    later = utcnow() + timedelta(days=31)
    with ctx.db.session() as session:
        assert service.purge_closed(session, keep_days=30, now=later, dry_run=True) != []
        purged = service.purge_closed(session, keep_days=30, now=later)
    assert sorted(purged) == sorted([ids["removed"], ids["refused"], ids["expired"]])
    with ctx.db.session() as session:
        assert service.purge_closed(session, keep_days=30, now=later) == []  # each entry once
        for name in ("removed", "refused", "expired"):
            entry = service.get_entry(session, ids[name])
            view = service.view(session, entry)
            assert view.purged_at is not None and view.photos == []
            assert (entry.status, entry.closed_by) != (None, None)  # the record of who closed it stays
            assert _photos(session, ids[name]) == 0 and _claims(session, ids[name]) == 0
        # The open entry is untouched and still matches.
        assert _photos(session, ids["open"]) == 2 and _claims(session, ids["open"]) == 2
        assert [e.id for e in service.active_entries(session)] == [ids["open"]]
        rows = audit.entries(session, action="faces.purge")
        assert len(rows) == 1 and sorted(rows[0].detail["entries"]) == sorted(purged)
        assert rows[0].detail["photos"] == 6
        assert audit.verify(session).ok
    # Nothing claims the purged photos any more: the media sweep may take them; the open entry's stay.
    with ctx.db.session() as session:
        kinds = media_owners.claimed(session, [r for name in ids for r in refs[name]])
    assert all(ref not in kinds for name in ("removed", "refused", "expired") for ref in refs[name])
    assert all("watchlist_photo" in kinds[ref] for ref in refs["open"])
    assert retention.DEFAULT_DAYS["watchlist_photo"] == 0  # kept while the entry's photos live


def test_a_hold_keeps_a_closed_entrys_photos(ctx: Context) -> None:
    ids = _closed_entries(ctx)
    with ctx.db.session() as session:
        media_owners.place_hold(
            session,
            kind="case",
            reference="FIR 77/2026",
            reason="the identification is disputed in court",
            owners=[f"watchlist_photo:{ids['removed']}"],
            actor="inspector.rana",
            store=ctx.media,
        )
    with ctx.db.session() as session:
        purged = service.purge_closed(session, keep_days=30, now=utcnow() + timedelta(days=31))
        assert ids["removed"] not in purged and len(purged) == 2
        assert _photos(session, ids["removed"]) == 2


def test_the_cli_lists_then_purges(ctx: Context, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ids = _closed_entries(ctx)
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(ctx.settings.data_dir))
    runner = CliRunner()
    # Closed today: a one-day retention has nothing yet.
    result = runner.invoke(app, ["faces", "purge-closed", "--days", "1", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would delete the photos and embeddings of 0 entries" in result.output
    with ctx.db.session() as session:
        for entry_id in ids.values():
            entry = service.get_entry(session, entry_id)
            if entry.closed_at is not None:
                entry.closed_at = entry.closed_at - timedelta(days=2)
    result = runner.invoke(app, ["faces", "purge-closed", "--days", "1", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    assert '"dry_run": true' in result.output and ids["removed"] in result.output
    result = runner.invoke(app, ["faces", "purge-closed", "--days", "1"])
    assert result.exit_code == 0, result.output
    assert "deleted the photos and embeddings of 3 entries" in result.output
    with ctx.db.session() as session:
        assert _photos(session, ids["open"]) == 2
        assert sum(_photos(session, ids[n]) for n in ("removed", "refused", "expired")) == 0
    result = runner.invoke(app, ["faces", "purge-closed", "--days", "0"])
    assert result.exit_code != 0
