"""Watch-list governance: maker-checker, legal basis, expiry, event scope, refused photos, audit.

These tests run the real service on a real database. The face pipeline is replaced by a stand-in
encoder (each synthetic "person" is a flat colour with its own embedding) because what is specified
here is governance, not recognition; the pipeline's own accuracy is tested with real photos elsewhere.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import func, select

from safecity.audit import service as audit
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.db import Database
from safecity.core.errors import Conflict, Forbidden, InvalidInput
from safecity.core.media import MediaStore
from safecity.faces import service
from safecity.faces.models import WatchlistEntry, WatchlistPhoto


def person_photo(shade: int, noise: int = 0) -> bytes:
    """Returns a JPEG standing for one person's photo (`shade` is who, `noise` varies the shot)."""
    image = np.full((120, 100, 3), shade, dtype=np.uint8)
    image[0, 0] = noise  # a different shot of the same person: different bytes, same face
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


def stand_in_encoder(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Gives each shade its own 128-d embedding; a black photo has no face, as the pipeline would say."""
    shade = round(float(np.median(image)))
    if shade < 10:
        raise InvalidInput("no face found in the photo", hint="use a photo where the face is clearly visible")
    seed = int(hashlib.sha256(str(shade // 8).encode()).hexdigest()[:8], 16)
    vector = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return vector / np.linalg.norm(vector)


def request(session, media: MediaStore, **overrides):  # type: ignore[no-untyped-def]
    fields = {
        "name": "Suspect One",
        "category": "wanted",
        "legal_basis": "FIR 123/2024 PS Saddar",
        "requested_by": "inspector.ali",
        "photos": [person_photo(120), person_photo(120, noise=7)],
        "expires_at": utcnow() + timedelta(days=30),
        "encoder": stand_in_encoder,
    }
    fields.update(overrides)
    return service.enroll(session, media, **fields)


def test_requested_entry_waits_for_approval_and_does_not_match(ctx: Context) -> None:
    with ctx.db.session() as session:
        entry = request(session, ctx.media)
        assert entry.status == "pending"
        assert not service.is_active(entry)
        assert service.active_entries(session) == []
        assert len(service.photos_of(session, entry.id)) == 2


def test_requester_may_not_approve_their_own_request(ctx: Context) -> None:
    with ctx.db.session() as session:
        entry_id = request(session, ctx.media).id
    with pytest.raises(Forbidden, match="maker-checker"), ctx.db.session() as session:
        service.approve(session, entry_id, "INSPECTOR.ALI")
    with ctx.db.session() as session:
        assert service.get_entry(session, entry_id).status == "pending"


def test_a_second_person_approves_and_the_entry_becomes_active(ctx: Context) -> None:
    with ctx.db.session() as session:
        entry = request(session, ctx.media)
        service.approve(session, entry.id, "supervisor.sana")
    with ctx.db.session() as session:
        entry = service.get_entry(session, entry.id)
        assert (entry.status, entry.approved_by, entry.version) == ("approved", "supervisor.sana", 2)
        assert [e.id for e in service.active_entries(session)] == [entry.id]
        actions = [e.action for e in audit.entries(session, action="faces.")]
        assert actions[:2] == ["faces.approve", "faces.request"]
        assert audit.verify(session).ok


def test_an_entry_is_approved_only_once(ctx: Context) -> None:
    with ctx.db.session() as session:
        entry = request(session, ctx.media)
        service.approve(session, entry.id, "supervisor.sana")
        with pytest.raises(Conflict, match="only a pending entry"):
            service.approve(session, entry.id, "supervisor.omar")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"photos": [person_photo(120), person_photo(0)]}, "photo 2: no face found"),
        ({"photos": [b"not an image at all"]}, "photo 1 is not a readable image"),
        ({"photos": []}, "at least one photo"),
        ({"legal_basis": "  "}, "legal basis"),
        ({"category": "suspicious"}, "unknown category"),
        ({"expires_at": utcnow() - timedelta(minutes=1)}, "in the past"),
        ({"expires_at": utcnow() + timedelta(days=800)}, "at most 366 days"),
        ({"category": "event"}, "event's cameras"),
        ({"event_cameras": ["cam-1"]}, "event lists only"),
        ({"threshold": 1.5}, "out of range"),
    ],
)
def test_bad_request_is_refused_with_the_reason_and_writes_nothing(
    ctx: Context, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message), ctx.db.session() as session:
        request(session, ctx.media, **overrides)
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(WatchlistEntry)) == 0
        assert session.scalar(select(func.count()).select_from(WatchlistPhoto)) == 0


def test_event_list_needs_its_window_in_the_future(ctx: Context) -> None:
    now = utcnow()
    with pytest.raises(InvalidInput, match="already over"), ctx.db.session() as session:
        request(
            session,
            ctx.media,
            category="event",
            event_cameras=["stadium-1"],
            event_start=now - timedelta(hours=5),
            event_end=now - timedelta(hours=1),
        )


def test_expired_entry_stops_matching_and_is_swept_once(ctx: Context) -> None:
    with ctx.db.session() as session:
        entry = request(session, ctx.media, expires_at=utcnow() + timedelta(hours=1))
        service.approve(session, entry.id, "supervisor.sana")
    later = utcnow() + timedelta(hours=2)
    with ctx.db.session() as session:
        entry = service.get_entry(session, entry.id)
        assert service.is_active(entry)
        assert not service.is_active(entry, later)
        assert service.active_entries(session, at=later) == []
        assert service.expire_due(session, now=later) == [entry.id]
    with ctx.db.session() as session:
        assert service.expire_due(session, now=later) == []
        entry = service.get_entry(session, entry.id)
        assert entry.status == "expired" and entry.version == 3


def test_removed_entry_leaves_the_active_list_and_says_why(ctx: Context) -> None:
    with ctx.db.session() as session:
        entry = request(session, ctx.media)
        service.approve(session, entry.id, "supervisor.sana")
        service.remove(session, entry.id, actor="supervisor.sana", reason="arrested on 3 May")
    with ctx.db.session() as session:
        entry = service.get_entry(session, entry.id)
        assert (entry.status, entry.closed_reason) == ("removed", "arrested on 3 May")
        assert service.active_entries(session) == []
        with pytest.raises(Conflict):
            service.remove(session, entry.id, actor="supervisor.sana", reason="again")


def test_refusal_needs_a_reason_and_closes_the_request(ctx: Context) -> None:
    with ctx.db.session() as session:
        entry = request(session, ctx.media)
        with pytest.raises(InvalidInput, match="reason"):
            service.refuse(session, entry.id, actor="supervisor.sana", reason="")
        service.refuse(session, entry.id, actor="supervisor.sana", reason="FIR number does not exist")
        assert entry.status == "refused"
        with pytest.raises(Conflict):
            service.approve(session, entry.id, "supervisor.sana")


def test_search_ranks_active_entries_and_ignores_pending_ones(ctx: Context) -> None:
    with ctx.db.session() as session:
        wanted = request(session, ctx.media, name="Wanted", photos=[person_photo(120)])
        service.approve(session, wanted.id, "supervisor.sana")
        other = request(session, ctx.media, name="Other", photos=[person_photo(200)])
        service.approve(session, other.id, "supervisor.sana")
        request(session, ctx.media, name="Pending", photos=[person_photo(60)])
        found = service.search_watchlist(
            session,
            person_photo(121),
            actor="investigator.zara",
            reason="identify a suspect from a CCTV still",
            threshold=0.9,
            encoder=stand_in_encoder,
        )
        assert [c.name for c in found] == ["Wanted", "Other"]
        assert found[0].match and found[0].similarity == pytest.approx(1.0)
        assert not found[1].match
        pending = service.search_watchlist(
            session, person_photo(60), actor="x", reason="check", threshold=0.9, encoder=stand_in_encoder
        )
        assert all(c.name != "Pending" for c in pending)
        logged = audit.entries(session, action="faces.search")
        assert logged[0].detail["reason"] == "check" and logged[1].actor == "investigator.zara"


def test_governance_holds_on_every_database(any_db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(any_db_url)
    db.migrate()
    media = MediaStore(tmp_path / "media")
    try:
        with db.session() as session:
            entry = request(session, media, category="missing", case_officer="si.nadia")
            with pytest.raises(Forbidden):
                service.approve(session, entry.id, "inspector.ali")
            service.approve(session, entry.id, "supervisor.sana")
        with db.session() as session:
            (active,) = service.active_entries(session)
            assert (active.category, active.case_officer) == ("missing", "si.nadia")
            assert len(service.photos_of(session, active.id)[0].embeddings[0]) == 128
            service.remove(session, active.id, actor="supervisor.sana", reason="found safe")
        with db.session() as session:
            later = utcnow() + timedelta(days=31)
            assert service.purge_closed(session, keep_days=30, now=later) == [entry.id]
            assert service.purge_closed(session, keep_days=30, now=later) == []
            assert service.photos_of(session, entry.id) == []
    finally:
        db.dispose()
