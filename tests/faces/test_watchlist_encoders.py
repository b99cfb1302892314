"""Watch lists and face encoders: every embedding names its encoder, and two encoders never meet.

Encoders here are stand-ins with names (see test_watchlist_governance): what is specified is the
bookkeeping, so two "encoders" may even compute the same numbers; only their names tell them apart.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import select
from test_watchlist_governance import person_photo, stand_in_encoder
from typer import Typer
from typer.testing import CliRunner

from safecity.audit.models import AuditEntry
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.db import alembic_config
from safecity.core.errors import InvalidInput
from safecity.core.events import decode_event
from safecity.core.outbox import OutboxRow
from safecity.faces import reencode, replication, service, watchlist_cli
from safecity.faces.index import EncoderMismatch, ExactIndex, HnswIndex, IndexDelta, index_from_bytes
from safecity.faces.models import WatchlistEntry, WatchlistPhoto
from safecity.faces.replication import WorkerWatchlist
from safecity.settings import Settings
from safecity.vision.faces.encoders import DLIB_ID, EncoderId

OLD = EncoderId("old-encoder", "1")
NEW = EncoderId("new-encoder", "2")


def named(encoder_id: EncoderId) -> service.NamedEncoder:
    return service.NamedEncoder(stand_in_encoder, encoder_id)


def picky(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """The new encoder's pipeline finds no face in very light photos (shade ≥ 200)."""
    if float(np.median(image)) >= 200:
        raise InvalidInput("no face found in the photo", hint="use a clearer photo")
    return stand_in_encoder(image)


def enrol(ctx: Context, shade: int, encoder: service.FaceEncoder, *shades: int) -> str:
    with ctx.db.session() as session:
        entry = service.enroll(
            session,
            ctx.media,
            name=f"Person {shade}",
            category="wanted",
            legal_basis="FIR 8/2026",
            requested_by="inspector.ali",
            photos=[person_photo(s) for s in (shade, *shades)],
            expires_at=utcnow() + timedelta(days=10),
            encoder=encoder,
        )
        service.approve(session, entry.id, "supervisor.sana")
        return entry.id


def face_of(shade: int) -> npt.NDArray[np.float32]:
    return stand_in_encoder(np.full((120, 100, 3), shade, dtype=np.uint8))


def test_every_photo_keeps_the_name_and_version_of_its_encoder(ctx: Context) -> None:
    entry_id = enrol(ctx, 120, named(OLD))
    plain = enrol(ctx, 160, stand_in_encoder)  # a bare function stands for the configured encoder
    with ctx.db.session() as session:
        (photo,) = service.photos_of(session, entry_id)
        assert (photo.encoder, photo.encoder_version) == ("old-encoder", "1")
        (photo,) = service.photos_of(session, plain)
        assert EncoderId(photo.encoder, photo.encoder_version) == service.configured_encoder(ctx.settings)


def test_a_search_compares_a_face_only_with_photos_of_its_own_encoder(ctx: Context) -> None:
    old_entry = enrol(ctx, 120, named(OLD))
    new_entry = enrol(ctx, 120, named(NEW))  # the same person, the same numbers, another encoder
    with ctx.db.session() as session:
        found = service.search(session, face_of(120), threshold=0.9, encoder=NEW)
        assert [c.entry_id for c in found] == [new_entry]
        found = service.search_watchlist(
            session, person_photo(120), actor="inv", reason="check", threshold=0.9, encoder=named(OLD)
        )
        assert [c.entry_id for c in found] == [old_entry]


def test_an_index_of_one_encoder_refuses_embeddings_of_another_with_the_fix_in_the_message() -> None:
    for index in (ExactIndex(dim=128, encoder=OLD), HnswIndex(dim=128, encoder=OLD)):
        index.add("a", face_of(120), encoder=OLD)
        with pytest.raises(
            EncoderMismatch, match="new-encoder 2 cannot join a face index of encoder old-encoder 1"
        ) as err:
            index.add("b", face_of(160), encoder=NEW)
        assert "safecity faces reencode" in (err.value.hint or "")
        assert index.entries() == ["a"]
        copy = index_from_bytes(index.to_bytes())
        assert copy.encoder == OLD  # a snapshot sent to a new worker keeps the name
        with pytest.raises(EncoderMismatch):
            copy.add("b", face_of(160), encoder=NEW)
    delta = IndexDelta.from_dict(IndexDelta.add("b", face_of(160), encoder=NEW).to_dict())
    assert delta.encoder == NEW
    with pytest.raises(EncoderMismatch):
        delta.apply(ExactIndex(dim=128, encoder=OLD))


def test_a_worker_holds_only_its_encoders_embeddings_and_says_why_it_leaves_others_out(
    ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    old_entry = enrol(ctx, 120, named(OLD))
    new_entry = enrol(ctx, 160, named(NEW))
    worker = WorkerWatchlist(default_threshold=0.9, encoder=NEW)
    with caplog.at_level(logging.WARNING), ctx.db.session() as session:
        assert worker.load(session) == 1
    assert "1 photo(s) were encoded by another encoder" in caplog.text
    assert new_entry in worker and old_entry not in worker
    assert worker.match(face_of(120), "cam-1", utcnow()) is None
    with ctx.db.session() as session:
        change = replication.change_event(session, old_entry, encoder=OLD)
    assert (change.encoder, change.encoder_version, len(change.embeddings)) == ("old-encoder", "1", 1)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert worker.apply(change)
    assert f"entry {old_entry} (v2) ignored" in caplog.text and "old-encoder 1" in caplog.text
    assert old_entry not in worker and worker.match(face_of(120), "cam-1", utcnow()) is None
    with ctx.db.session() as session:
        other = replication.change_event(session, old_entry, encoder=NEW)
    assert other.action == "add" and other.embeddings == []  # none of its photos is the new encoder's


def test_reencoding_moves_photos_to_the_new_encoder_and_reports_the_photos_it_cannot_use(
    ctx: Context,
) -> None:
    moved = enrol(ctx, 120, named(OLD), 130)
    lost = enrol(ctx, 220, named(OLD))  # the new pipeline finds no face in its only photo
    new = service.NamedEncoder(picky, NEW)
    with ctx.db.session() as session:
        assert reencode.stale_entries(session, NEW) == [moved, lost]
        assert reencode.stale_photo_count(session, NEW) == 3
    results = []
    for entry_id in (moved, lost):
        with ctx.db.session() as session:
            results.append(reencode.reencode_entry(session, ctx.media, entry_id, encoder=new, actor="admin"))
    assert [(r.reencoded, r.usable, len(r.refused)) for r in results] == [(2, 2, 0), (0, 0, 1)]
    assert "no face found" in results[1].refused[0].reason and lost in results[1].refused[0].reason
    with ctx.db.session() as session:
        assert {(p.encoder, p.encoder_version) for p in service.photos_of(session, moved)} == {
            ("new-encoder", "2")
        }
        assert [p.encoder for p in service.photos_of(session, lost)] == [
            "old-encoder"
        ]  # kept, never compared
        assert session.get(WatchlistEntry, moved).version == 3  # type: ignore[union-attr]
        assert reencode.stale_entries(session, NEW) == [lost]
        staged = [decode_event(json.loads(row.data)) for row in session.scalars(select(OutboxRow)).all()]
        changes = [e for e in staged if isinstance(e, replication.WatchlistChanged) and e.entry_id == moved]
        assert changes[-1].encoder == "new-encoder" and len(changes[-1].embeddings) == 2
        audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "faces.reencode")).all()
        assert {a.target for a in audited} == {moved, lost}
    worker = WorkerWatchlist(default_threshold=0.9, encoder=NEW)
    with ctx.db.session() as session:
        worker.load(session)
    assert worker.match(face_of(120), "cam-1", utcnow()) == (moved, pytest.approx(1.0, abs=1e-5))


def test_a_city_switching_to_insightface_finds_every_mobilefacenet_photo_to_reencode(ctx: Context) -> None:
    before = service.configured_encoder(ctx.settings)
    after = service.configured_encoder(ctx.settings.model_copy(update={"face_encoder": "insightface-mbf"}))
    assert before.name == "mobilefacenet-192" and after.name == "insightface-mbf"
    entry_id = enrol(ctx, 120, named(before), 130)
    with ctx.db.session() as session:
        assert reencode.stale_entries(session, before) == []
        assert reencode.stale_entries(session, after) == [entry_id]
        assert reencode.stale_photo_count(session, after) == 2


def test_the_reencode_command_reports_progress_and_the_photos_left_behind(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(settings.data_dir))
    ctx = Context.create(settings)
    try:
        enrol(ctx, 120, named(OLD))
        lost = enrol(ctx, 220, named(OLD))
    finally:
        ctx.db.dispose()
    monkeypatch.setattr(service, "pipeline_encoder", lambda name=None: service.NamedEncoder(picky, NEW))
    monkeypatch.setattr(service, "configured_encoder", lambda settings=None: NEW)
    app = Typer()
    app.command("reencode")(watchlist_cli.reencode)
    app.command("noop")(lambda: None)  # two commands: Typer then expects the command's name
    result = CliRunner().invoke(app, ["reencode", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["encoder"] == {"name": "new-encoder", "version": "2"}
    assert report["photos_reencoded"] == 1 and report["entries_without_usable_photo"] == [lost]
    again = CliRunner().invoke(app, ["reencode"])
    printed = " ".join(again.output.split())  # Rich wraps long lines
    assert again.exit_code == 0 and "0 photo(s) of 1 entry re-encoded" in printed
    assert f"entry {lost} (Person 220) has no photo the new encoder can use" in printed


def test_the_migration_names_dlib_as_the_encoder_of_every_photo_stored_before(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "0002_faces")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO watchlist_entries (id, name, category, status, legal_basis, notes, "
                "requested_by, requested_at, case_officer, expires_at, event_cameras, closed_reason, "
                "version) VALUES "
                "('e1', 'X', 'wanted', 'approved', 'FIR 1', '', 'a', '2026-01-01 00:00:00', 'a', "
                "'2027-01-01 00:00:00', '[]', '', 1)"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO watchlist_photos (entry_id, media_ref, embeddings, added_at) "
                "VALUES ('e1', 'ref', 'sealed', '2026-01-01 00:00:00')"
            )
        )
    command.upgrade(config, "heads")
    with engine.connect() as connection:
        row = connection.execute(sa.text("SELECT encoder, encoder_version FROM watchlist_photos")).one()
    assert tuple(row) == (DLIB_ID.name, DLIB_ID.version)
    engine.dispose()
    assert WatchlistPhoto.__table__.c.encoder.nullable is False
