"""Replication of the watch list to workers: full load, deltas over the bus, scope, expiry, thresholds."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import numpy as np
import numpy.typing as npt
import pytest
from test_watchlist_governance import person_photo, stand_in_encoder

from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.bus.memory import MemoryBus
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import decode_event
from safecity.faces import replication, service
from safecity.faces.replication import WatchlistChanged, WorkerWatchlist
from safecity.vision.faces.encoders import DLIB_ID


def face_of(shade: int) -> npt.NDArray[np.float32]:
    """Returns the embedding the stand-in encoder gives a person's photo (a live face of them)."""
    return stand_in_encoder(np.full((120, 100, 3), shade, dtype=np.uint8))


def approved(ctx: Context, *, shade: int, **overrides: object) -> str:
    fields: dict[str, object] = {
        "name": f"Person {shade}",
        "category": "wanted",
        "legal_basis": "Warrant 77/2024",
        "requested_by": "inspector.ali",
        "photos": [person_photo(shade)],
        "expires_at": utcnow() + timedelta(days=10),
        "encoder": stand_in_encoder,
    }
    fields.update(overrides)
    with ctx.db.session() as session:
        entry = service.enroll(session, ctx.media, **fields)  # type: ignore[arg-type]
        service.approve(session, entry.id, "supervisor.sana")
        return entry.id


def test_worker_loads_only_active_entries_and_matches_above_threshold(ctx: Context) -> None:
    wanted = approved(ctx, shade=120)
    with ctx.db.session() as session:
        service.enroll(
            session,
            ctx.media,
            name="Not yet approved",
            category="wanted",
            legal_basis="FIR 9/2024",
            requested_by="inspector.ali",
            photos=[person_photo(200)],
            expires_at=utcnow() + timedelta(days=3),
            encoder=stand_in_encoder,
        )
    watchlist = WorkerWatchlist(default_threshold=0.9)
    with ctx.db.session() as session:
        assert watchlist.load(session) == 1
    hit = watchlist.match(face_of(120), "cam-1", utcnow())
    assert hit is not None and hit[0] == wanted and hit[1] == pytest.approx(1.0, abs=1e-5)
    assert watchlist.match(face_of(200), "cam-1", utcnow()) is None  # pending entries never match
    assert watchlist.match(face_of(40), "cam-1", utcnow()) is None  # a passer-by matches nothing


def test_entry_stops_matching_by_itself_at_its_expiry(ctx: Context) -> None:
    expires = utcnow() + timedelta(hours=1)
    entry_id = approved(ctx, shade=120, expires_at=expires)
    watchlist = WorkerWatchlist(default_threshold=0.9)
    with ctx.db.session() as session:
        watchlist.load(session)
    assert watchlist.match(face_of(120), "cam-1", expires - timedelta(seconds=1)) is not None
    assert watchlist.match(face_of(120), "cam-1", expires) is None
    assert entry_id in watchlist  # no event was needed: expiry is part of the entry's scope


def test_event_list_matches_only_on_its_cameras_during_the_event(ctx: Context) -> None:
    start = utcnow() + timedelta(hours=1)
    end = start + timedelta(hours=3)
    approved(
        ctx,
        shade=120,
        category="event",
        event_cameras=["stadium-gate-1", "stadium-gate-2"],
        event_start=start,
        event_end=end,
    )
    watchlist = WorkerWatchlist(default_threshold=0.9)
    with ctx.db.session() as session:
        watchlist.load(session)
    during = start + timedelta(minutes=30)
    assert watchlist.match(face_of(120), "stadium-gate-2", during) is not None
    assert watchlist.match(face_of(120), "market-cam", during) is None
    assert watchlist.match(face_of(120), "stadium-gate-1", start - timedelta(minutes=1)) is None
    assert watchlist.match(face_of(120), "stadium-gate-1", end) is None


def test_camera_and_entry_thresholds_both_hold(ctx: Context) -> None:
    strict_entry = approved(ctx, shade=120, threshold=0.99)
    with ctx.db.session() as session:
        cameras.create(
            session,
            CameraIn(
                id="cam-strict",
                name="Strict",
                kind="face",
                district="South",
                latitude=24.8,
                longitude=67.0,
                analysis={"face_threshold": 0.97},
            ),
            actor="admin",
        )
    watchlist = WorkerWatchlist(default_threshold=0.5)
    with ctx.db.session() as session:
        watchlist.load(session)
    assert watchlist.camera_thresholds == {"cam-strict": 0.97}
    near = face_of(120) * 0.985 + face_of(200) * 0.17  # similarity about 0.985 to the entry
    near /= np.linalg.norm(near)
    similarity = float(near @ face_of(120))
    assert 0.97 < similarity < 0.99
    assert watchlist.match(near, "cam-other", utcnow()) is None  # below the entry's own 0.99
    assert watchlist.match(face_of(120), "cam-strict", utcnow()) == (
        strict_entry,
        pytest.approx(1.0, abs=1e-5),
    )


def test_a_stricter_nearer_entry_does_not_hide_a_match_of_another(ctx: Context) -> None:
    nearest = face_of(120)
    other = face_of(200)
    live = nearest * 0.9 + other * 0.8
    live /= np.linalg.norm(live)
    # Changes written by hand name no encoder: they are taken for dlib's, as every change before
    # encoders were named was.
    watchlist = WorkerWatchlist(default_threshold=0.6, encoder=DLIB_ID)
    for entry_id, vector, threshold in (("strict", nearest, 0.95), ("plain", other, None)):
        watchlist.apply(
            WatchlistChanged(
                key=f"watchlist:{entry_id}:2",
                entry_id=entry_id,
                action="add",
                entry_version=2,
                embeddings=[vector.tolist()],
                category="wanted",
                threshold=threshold,
                expires_at=utcnow() + timedelta(days=1),
            )
        )
    hit = watchlist.match(live, "cam-1", utcnow())
    assert hit is not None and hit[0] == "plain"


def test_deltas_add_and_remove_without_a_rebuild_and_ignore_stale_ones(ctx: Context) -> None:
    watchlist = WorkerWatchlist(default_threshold=0.9)
    with ctx.db.session() as session:
        assert watchlist.load(session) == 0
    entry_id = approved(ctx, shade=120)
    with ctx.db.session() as session:
        added = replication.change_event(session, entry_id)
    assert added.action == "add" and added.entry_version == 2
    assert len(added.embeddings) == 1 and added.main_embeddings == added.embeddings
    wire = decode_event(added.envelope())  # what a worker on NATS receives
    assert isinstance(wire, WatchlistChanged)
    assert watchlist.apply(wire)
    assert not watchlist.apply(wire)  # the same change twice changes nothing
    assert watchlist.match(face_of(120), "cam-1", utcnow()) is not None
    assert watchlist.match(face_of(120), "cam-1", utcnow(), large_face=True) is not None
    with ctx.db.session() as session:
        service.remove(session, entry_id, actor="supervisor.sana", reason="arrested")
    with ctx.db.session() as session:
        removed = replication.change_event(session, entry_id)
    assert removed.action == "remove" and removed.embeddings == []
    assert watchlist.apply(removed)
    assert not watchlist.apply(added)  # a late, older "add" does not bring the entry back
    assert watchlist.match(face_of(120), "cam-1", utcnow()) is None
    assert watchlist.match(face_of(120), "cam-1", utcnow(), large_face=True) is None
    assert len(watchlist) == 0


async def test_workers_follow_changes_published_on_the_bus(ctx: Context) -> None:
    bus = MemoryBus()
    await bus.start()
    ctx.bus = bus
    workers = [WorkerWatchlist(default_threshold=0.9) for _ in range(2)]
    for worker in workers:
        await worker.follow(bus)
    entry_id = await asyncio.to_thread(approved, ctx, shade=120)

    def stage() -> str:
        with ctx.db.session() as session:
            return replication.stage_change(session, entry_id).key

    key = await asyncio.to_thread(stage)
    await ctx.settle()
    assert key == f"watchlist:{entry_id}:2"
    assert all(entry_id in worker for worker in workers)

    def remove() -> None:
        with ctx.db.session() as session:
            service.remove(session, entry_id, actor="supervisor.sana", reason="found safe")
            replication.stage_change(session, entry_id)  # in the same transaction as the change

    await asyncio.to_thread(remove)
    await ctx.settle()
    assert all(entry_id not in worker for worker in workers)
    await bus.close()
