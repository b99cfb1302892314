"""/media/{ref} admits a viewer by what the object is, never merely for being signed in; each view is audited.

The first test is generated from the map (`accounts.permissions.MEDIA`): every kind of object, every
role. The others store objects the way the domains do (a watch-list enrolment, a challan notice, a
plate read, an alert) and prove each is claimed as the right kind, so the map applies to it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from safecity.accounts.models import Role
from safecity.accounts.permissions import MEDIA, media_allows
from safecity.anpr import service as anpr
from safecity.audit import service as audit
from safecity.challans import notice
from safecity.challans import service as challans
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.db import Database, alembic_config
from safecity.core.events import PlateRead
from safecity.evidence import service as media_owners
from safecity.evidence.models import MediaOwner
from safecity.faces import service as faces
from tests.conftest import auth_headers

ROLES = [role.value for role in Role]


def _headers(ctx: Context) -> dict[str, dict[str, str]]:
    return {role: auth_headers(ctx, role) for role in ROLES}


def _who_sees(client: TestClient, ref: str, headers: dict[str, dict[str, str]]) -> dict[str, int]:
    return {role: client.get(f"/media/{ref}", headers=h).status_code for role, h in headers.items()}


def _as_map_says(kind: str) -> dict[str, int]:
    return {role: 200 if media_allows(role, kind) else 403 for role in ROLES}


def test_every_kind_of_object_answers_every_role_as_the_media_map_says(
    ctx: Context, client: TestClient
) -> None:
    headers = _headers(ctx)
    for kind in MEDIA:
        ref = ctx.media.put(f"the bytes of a {kind}".encode(), "jpg")
        with ctx.db.session() as session:
            media_owners.own(session, kind, f"{kind}-1", [ref])
        assert client.get(f"/media/{ref}").status_code == 401
        assert _who_sees(client, ref, headers) == _as_map_says(kind), kind
        with ctx.db.session() as session:
            views = audit.entries(session, action="media.view")
            refusals = audit.entries(session, action="media.refused")
        admitted = sorted(r for r in ROLES if media_allows(r, kind))
        assert sorted(v.actor.split("-")[0] for v in views if v.target == ref) == admitted
        assert all(v.detail == {"kind": kind, "owner": f"{kind}-1"} for v in views if v.target == ref)
        assert len([r for r in refusals if r.target == ref]) == len(ROLES) - len(admitted)
    # A device is a machine: it sees no stored object at all.
    assert not any(media_allows("device", kind) for kind in MEDIA)


def test_an_object_nothing_owns_or_a_ref_never_stored_is_404_without_saying_more(
    ctx: Context, client: TestClient
) -> None:
    admin = auth_headers(ctx, Role.admin)
    unowned = ctx.media.put(b"a file no row claims", "jpg")
    never = "sha256:" + "0" * 64 + ".jpg"
    answers = [client.get(f"/media/{ref}", headers=admin) for ref in (unowned, never, "not-a-ref")]
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert len({a.content for a in answers}) == 1


def test_a_watch_list_enrolment_photo_is_for_watch_list_roles_only(
    ctx: Context, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.faces.test_watchlist_governance import person_photo, stand_in_encoder

    monkeypatch.setattr(faces, "pipeline_encoder", lambda: stand_in_encoder)
    monkeypatch.setattr(faces, "default_threshold", lambda settings: 0.9)
    headers = _headers(ctx)
    created = client.post(
        "/api/faces/entries",
        data={
            "name": "Kamran Sheikh",
            "category": "wanted",
            "legal_basis": "FIR 455/2024 PS Clifton",
            "expires_at": utcnow().replace(year=utcnow().year + 1).strftime("%Y-%m-%dT%H:%M"),
        },
        files=[("photos", ("p.jpg", person_photo(120), "image/jpeg"))],
        headers=headers["investigator"],
    )
    assert created.status_code == 201, created.text
    (ref,) = [p["media_ref"] for p in created.json()["photos"]]
    assert _who_sees(client, ref, headers) == _as_map_says("watchlist_photo")
    assert _who_sees(client, ref, headers)["operator"] == 403
    assert _who_sees(client, ref, headers)["auditor"] == 403


def test_a_challan_notice_with_name_cnic_and_address_is_for_challan_roles_only(
    ctx: Context, client: TestClient
) -> None:
    from tests.challans.test_challan_lifecycle import REGISTRY, approved_violation

    headers = _headers(ctx)
    with ctx.db.session() as session:
        challans.import_registry(session, REGISTRY, actor="test")
        approved_violation(session, "notice-1", media=ctx.media)
        number = challans.issue_pending(session).numbers[0]
        ref = notice.render_notice(session, ctx.media, number, portal=notice.portal_address(ctx.settings))
    seen = _who_sees(client, ref, headers)
    assert seen == _as_map_says("challan_notice")
    assert {role for role, status in seen.items() if status == 200} == {
        "admin",
        "supervisor",
        "traffic_officer",
    }


def test_a_plate_reads_crop_and_an_alerts_pictures_are_claimed_as_such(
    ctx: Context, client: TestClient
) -> None:
    headers = _headers(ctx)
    crop = ctx.media.put_image(np.full((40, 120, 3), 200, np.uint8))
    with ctx.db.session() as session:
        anpr.store_reads(
            session,
            [
                PlateRead(
                    key="r1", camera_id="cam-1", at=utcnow(), plate="LEA4521", confidence=0.9, crop_ref=crop
                )
            ],
        )
    assert _who_sees(client, crop, headers) == _as_map_says("plate_read")
    from safecity.alerts import service as alerts

    frame = ctx.media.put_image(np.full((90, 160, 3), 30, np.uint8))
    with ctx.db.session() as session:
        alerts.raise_alert(
            session,
            kind="hotlist",
            priority=1,
            title="LEA4521 on the stolen list",
            source_key="hit-1",
            dedup_key="hit:LEA4521",
            evidence={"crop_ref": crop, "frame_ref": frame},
        )
    assert _who_sees(client, frame, headers) == _as_map_says("alert")
    # The crop now belongs to the read and to the alert: either admits.
    both = {
        role: 200 if media_allows(role, "plate_read") or media_allows(role, "alert") else 403
        for role in ROLES
    }
    assert _who_sees(client, crop, headers) == both


def test_objects_stored_before_the_upgrade_are_claimed_by_their_rows(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'safecity.db'}")
    db.migrate()
    with db.engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "evidence@-2")  # before 0001_evidence
    crop, frame = "sha256:" + "1" * 64 + ".jpg", "sha256:" + "2" * 64 + ".jpg"
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO plate_reads (id, event_key, plate, region, confidence, at, crop_ref, stored_at) "
                "VALUES ('read-1', 'k1', 'LEA4521', 'pk', 0.9, :at, :crop, :at)"
            ),
            {"at": utcnow(), "crop": crop},
        )
        connection.execute(
            text(
                "INSERT INTO violations (id, offence, plate, at, status, confidence, unit, evidence, detail, "
                "source_key, dedup_key, occurrences, auto_approved, review_reason, hold_reason, created_at) "
                "VALUES ('v-1', 'speeding', 'LEA4521', :at, 'pending', 1.0, 'km/h', :evidence, '{}', 's1', "
                "'d1', 1, 0, '', '', :at)"
            ),
            {"at": utcnow(), "evidence": f'{{"frames_after": ["{frame}"], "plate_crop": "{crop}"}}'},
        )
    db.migrate()
    with db.session() as session:
        claims = {(o.ref, o.kind, o.owner) for o in session.scalars(select(MediaOwner))}
    assert claims == {
        (crop, "plate_read", "read-1"),
        (crop, "violation", "v-1"),
        (frame, "violation", "v-1"),
    }
