"""Retention by category (the longest wins), a recovery window, holds and open cases; cases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from safecity.bodyworn import cases, custody, ingest, retention
from safecity.bodyworn import service as items
from safecity.bodyworn.models import BodyWornItem, CaseIn
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.errors import Conflict
from safecity.evidence import service as media_owners
from tests.bodyworn.bodyworn_support import META, ingest_one
from tests.conftest import auth_headers


def _recorded_days_ago(ctx: Context, item_id: str, days: float) -> None:
    with ctx.db.session() as session:
        item = session.get(BodyWornItem, item_id)
        assert item is not None
        item.recorded_at = utcnow() - timedelta(days=days)


def _status(ctx: Context, item_id: str) -> str:
    with ctx.db.session() as session:
        return items.get(session, item_id).status


def test_the_longest_category_wins_and_deletion_waits_out_a_recovery_window(
    ctx: Context, tmp_path: Path
) -> None:
    routine = ingest_one(ctx, tmp_path / "d", "A.MP4", seed=1, categories=["routine"]).item_id or ""
    stop = (
        ingest_one(ctx, tmp_path / "d", "B.MP4", seed=2, categories=["routine", "traffic_stop"]).item_id or ""
    )
    arrest = ingest_one(ctx, tmp_path / "d", "C.MP4", seed=3, categories=["arrest"]).item_id or ""
    for item_id in (routine, stop, arrest):
        _recorded_days_ago(ctx, item_id, 100)

    report = retention.apply(ctx)

    assert report.deleted == [routine]
    assert [_status(ctx, i) for i in (routine, stop, arrest)] == ["deleted", "active", "active"]
    with ctx.db.session() as session:
        assert (
            items.delete_due(ctx.settings, items.get(session, stop)).date()
            == (
                items.get(session, stop).recorded_at + timedelta(days=365)  # type: ignore[operator]
            ).date()
        )
        items.restore(session, routine, reason="deleted by mistake: a complaint was filed", actor="insp.rana")
        items.classify(
            session,
            ctx.settings,
            routine,
            items_change(retain_until=utcnow() + timedelta(days=30)),
            actor="insp.rana",
        )
    assert retention.apply(ctx).deleted == []  # kept until the date set
    # Past the window, the file is released to the media sweep; the row stays as the record.
    with ctx.db.session() as session:
        items.delete(
            session, ctx.settings, arrest, reason="duplicate upload of another camera", actor="insp.rana"
        )
    assert (
        retention.apply(ctx, now=utcnow() + timedelta(days=ctx.settings.bodyworn_recovery_days - 1)).purged
        == []
    )
    later = retention.apply(ctx, now=utcnow() + timedelta(days=ctx.settings.bodyworn_recovery_days + 1))
    assert later.purged == [arrest] and _status(ctx, arrest) == "purged"
    with ctx.db.session() as session:
        item = items.get(session, arrest)
        assert media_owners.owners_of(session, item.ref) == []
        assert [e.action for e in custody.entries_of(session, arrest)][-2:] == ["delete", "purge"]
        with pytest.raises(Conflict, match="only a deleted item"):
            items.restore(session, arrest, reason="too late", actor="insp.rana")
    # The same file brought again after its purge gives the item its file back.
    again = ingest.ingest_file(ctx, tmp_path / "d" / "C.MP4", META, actor="dock-7")
    assert (again.outcome, again.item_id, _status(ctx, arrest)) == ("ingested", arrest, "active")


def items_change(**change: object):  # type: ignore[no-untyped-def]
    from safecity.bodyworn.models import ClassifyIn

    return ClassifyIn.model_validate({"reason": "kept for the inquiry", **change})


def test_an_item_in_an_open_case_or_on_hold_is_never_deleted(ctx: Context, tmp_path: Path) -> None:
    in_case = ingest_one(ctx, tmp_path / "d", "A.MP4", seed=1, categories=["routine"]).item_id or ""
    held = ingest_one(ctx, tmp_path / "d", "B.MP4", seed=2, categories=["routine"]).item_id or ""
    with ctx.db.session() as session:
        cases.create(
            session,
            CaseIn(number="CASE-2026-0112", title="Robbery, Saddar", fir_number="112/2026"),
            actor="si.khan",
        )
        cases.add_item(session, "CASE-2026-0112", kind="bodyworn", ref_id=in_case, actor="si.khan")
        hold = items.hold(session, held, reference="Court order 7/2026", reason="preserve", actor="si.khan")
    for item_id in (in_case, held):
        _recorded_days_ago(ctx, item_id, 400)

    report = retention.apply(ctx)

    assert (report.deleted, report.kept_in_case, report.kept_on_hold) == ([], 1, 1)
    with ctx.db.session() as session:
        with pytest.raises(Conflict, match="open case CASE-2026-0112"):
            items.delete(session, ctx.settings, in_case, reason="tidy up", actor="insp.rana")
        cases.close(session, "CASE-2026-0112", reason="judgment delivered", actor="si.khan")
        items.release_hold(session, held, hold.id, reason="order lifted", actor="si.khan")
    assert sorted(retention.apply(ctx).deleted) == sorted([in_case, held])


def test_a_case_groups_evidence_and_holds_it_while_open(
    ctx: Context, client: TestClient, tmp_path: Path
) -> None:
    item_id = ingest_one(ctx, tmp_path / "d").item_id
    manager = auth_headers(ctx, "investigator", "si.khan")
    opened = client.post(
        "/api/bodyworn/cases",
        json={
            "number": "CASE-2026-0112",
            "title": "Robbery, Saddar",
            "fir_number": "112/2026",
            "officers": ["pc.rana"],
        },
        headers=manager,
    )
    assert opened.status_code == 201, opened.text
    added = client.post(
        "/api/bodyworn/cases/CASE-2026-0112/items",
        json={"kind": "bodyworn", "ref_id": item_id, "note": "arrest"},
        headers=manager,
    )
    assert added.status_code == 200 and [i["ref_id"] for i in added.json()["items"]] == [item_id]
    assert added.json()["hold_id"] is not None
    unknown = client.post(
        "/api/bodyworn/cases/CASE-2026-0112/items",
        json={"kind": "plate_read", "ref_id": "nope"},
        headers=manager,
    )
    assert unknown.status_code == 404
    shown = client.get(f"/api/bodyworn/items/{item_id}", headers=manager).json()
    assert shown["cases"] == ["CASE-2026-0112"] and shown["delete_due"] is None
    assert [h["kind"] for h in shown["holds"]] == ["case"]
    closed = client.post(
        "/api/bodyworn/cases/CASE-2026-0112/close", json={"reason": "judgment"}, headers=manager
    )
    assert closed.json()["status"] == "closed" and closed.json()["hold_id"] is None
    refused = client.post(
        "/api/bodyworn/cases/CASE-2026-0112/items",
        json={"kind": "bodyworn", "ref_id": item_id},
        headers=manager,
    )
    assert refused.status_code == 409 and "is closed" in refused.json()["detail"]
    assert client.get(f"/api/bodyworn/items/{item_id}", headers=manager).json()["holds"] == []
