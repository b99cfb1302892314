"""The citizen portal: plate and CNIC required, no enumeration, rate limits; evidence, notice, appeal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient

from safecity.challans import service
from safecity.core.context import Context
from safecity.core.errors import TooManyRequests
from safecity.core.events import ViolationCandidate
from safecity.enforcement import service as enforcement
from tests.conftest import auth_headers
from tests.enforcement.court import prepare

REGISTRY = (
    "plate,owner,cnic,address,make,colour\n"
    "ABC123,Ali Khan,42101-1234567-1,House 1 Clifton Karachi,Toyota Corolla,white\n"
    "KHB777,Sara Ahmed,42201-7654321-2,Flat 4 Gulshan Karachi,Honda CD70,red\n"
)


def issue(ctx: Context, plate: str = "ABC123") -> str:
    photo = ctx.media.put_image(np.full((120, 160, 3), 90, np.uint8))
    with ctx.db.session() as session:
        if service.registry_status(session, plate) is None:
            service.import_registry(session, REGISTRY, actor="test")
        prepare(session, ctx.media, "cam-1", at=datetime.now(UTC) - timedelta(hours=2), junction="J1")
        enforcement.record_candidate(
            session,
            media=ctx.media,
            candidate=ViolationCandidate(
                key=f"v-{plate}",
                camera_id="cam-1",
                at=datetime.now(UTC) - timedelta(hours=2),
                offence="red_light",
                plate=plate,
                confidence=0.99,
                measured=1.4,
                limit=0.0,
                evidence_refs=[photo],
                detail={"unit": "s into red", "frames_after": [photo], "junction": "J1"},
            ),
        )
        return service.issue_pending(session).numbers[0]


def lookup(client: TestClient, plate: str, cnic: str, ip: str = "testclient") -> dict:  # type: ignore[type-arg]
    response = client.post("/api/portal/lookup", json={"plate": plate, "cnic": cnic})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_citizen_finds_their_challan_with_plate_and_cnic_and_nothing_else(
    ctx: Context, client: TestClient
) -> None:
    number = issue(ctx)
    mine = lookup(client, "abc-123", "42101-1234567-1")
    assert [c["number"] for c in mine["challans"]] == [number]
    assert mine["challans"][0]["amount_due"] == 5_000 and mine["challans"][0]["offence_label"]
    wrong = lookup(client, "ABC123", "42101-0000000-1")
    assert wrong["challans"] == [] and set(wrong) == set(mine)  # same shape: nothing to learn
    missing = client.post("/api/portal/lookup", json={"plate": "ABC123"})
    assert missing.status_code == 422 and "cnic" in missing.json()["detail"]
    bad = client.post("/api/portal/lookup", json={"plate": "ABC123", "cnic": "4210-ABC"})
    assert bad.status_code == 422


def test_look_ups_are_rate_limited_per_client(ctx: Context, client: TestClient) -> None:
    codes = [
        client.post("/api/portal/lookup", json={"plate": f"P{n:03d}", "cnic": "4210112345671"}).status_code
        for n in range(11)
    ]
    assert codes[:10] == [200] * 10 and codes[10] == 429


def test_the_token_opens_only_the_citizens_own_challans(ctx: Context, client: TestClient) -> None:
    mine = issue(ctx)
    theirs = issue(ctx, "KHB777")
    token = lookup(client, "ABC123", "4210112345671")["token"]
    notice = client.get(f"/api/portal/challans/{mine}/notice", params={"t": token})
    assert notice.status_code == 200 and notice.content.startswith(b"%PDF")
    other = client.get(f"/api/portal/challans/{theirs}/notice", params={"t": token})
    nothing = client.get("/api/portal/challans/KHI-1999-00000001/notice", params={"t": token})
    assert other.status_code == nothing.status_code == 404 and other.json()["detail"].startswith("no challan")
    assert client.get(f"/api/portal/challans/{mine}/notice", params={"t": "forged"}).status_code == 404
    (view,) = lookup(client, "ABC123", "4210112345671")["challans"]
    token = lookup(client, "ABC123", "4210112345671")["token"]
    image = client.get(f"/api/portal/challans/{mine}/evidence/{view['evidence'][0]}", params={"t": token})
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"


def test_a_reference_typed_into_the_portal_never_marks_a_challan_paid(
    ctx: Context, client: TestClient
) -> None:
    # Issue 16, finding 12: any reference typed as a payment used to mark the challan paid.
    number = issue(ctx)
    headers = {"X-Portal-Token": lookup(client, "ABC123", "4210112345671")["token"]}
    typed = client.post(
        f"/api/portal/challans/{number}/pay", json={"bank_ref": "1LINK-1", "amount": 5000}, headers=headers
    )
    assert typed.status_code in (404, 405)
    (view,) = lookup(client, "ABC123", "4210112345671")["challans"]
    assert view["status"] == "unpaid" and view["amount_due"] == 5000
    assert view["psid"] and view["psid"].isdigit()  # what the citizen pays with, at a bank or in an app
    with ctx.db.session() as session:
        assert service.get_challan(session, number).status == "unpaid"


def test_a_citizen_appeals_and_the_committee_decides_with_a_reason(ctx: Context, client: TestClient) -> None:
    number = issue(ctx)
    headers = {"X-Portal-Token": lookup(client, "ABC123", "4210112345671")["token"]}
    body = {"grounds": "The signal was out of order that morning.", "contact": "03001234567"}
    assert client.post(f"/api/portal/challans/{number}/appeal", json=body, headers=headers).status_code == 201
    assert client.post(f"/api/portal/challans/{number}/appeal", json=body, headers=headers).status_code == 409
    admin = auth_headers(ctx, "admin")
    no_reason = client.post(
        f"/api/challans/{number}/appeal/decision",
        json={"decision": "upheld", "committee": ["SSP"]},
        headers=admin,
    )
    assert no_reason.status_code == 422
    decision = {
        "decision": "upheld",
        "reason": "Controller log shows a fault",
        "committee": ["SSP Traffic", "DSP"],
    }
    decided = client.post(f"/api/challans/{number}/appeal/decision", json=decision, headers=admin)
    assert decided.status_code == 200 and decided.json()["status"] == "upheld"
    (view,) = lookup(client, "ABC123", "4210112345671")["challans"]
    assert view["status"] == "cancelled" and view["amount_due"] == 0 and view["appeal"]["reason"]
    officer = auth_headers(ctx, "traffic_officer")
    forbidden = client.post(f"/api/challans/{number}/appeal/decision", json=decision, headers=officer)
    assert forbidden.status_code == 403


def test_the_registry_upload_reports_broken_rows_by_line(ctx: Context, client: TestClient) -> None:
    admin = auth_headers(ctx, "admin")
    broken = REGISTRY + "XYZ1,,123,nowhere,x,y\n"
    answer = client.post("/api/challans/registry/import", files={"file": ("r.csv", broken)}, headers=admin)
    assert answer.status_code == 422 and answer.json()["errors"][0].startswith("line 4:")
    ok = client.post("/api/challans/registry/import", files={"file": ("r.csv", REGISTRY)}, headers=admin)
    assert ok.status_code == 200 and ok.json()["created"] == 2


def test_the_pages_render_and_the_portal_needs_no_sign_in(ctx: Context, client: TestClient) -> None:
    portal = client.get("/portal")
    assert (
        portal.status_code == 200
        and "/static/portal.js" in portal.text
        and "http" not in portal.text.split("<body")[1]
    )
    officer = auth_headers(ctx, "traffic_officer")
    assert "/static/enforcement.js" in client.get("/violations", headers=officer).text
    assert "/static/challans.js" in client.get("/challans", headers=officer).text
    assert client.get("/challans", headers=auth_headers(ctx, "operator")).status_code == 403


def test_a_notice_code_can_be_verified_publicly(ctx: Context, client: TestClient) -> None:
    number = issue(ctx)
    with ctx.db.session() as session:
        code = service.get_challan(session, number).verification_code
    assert client.get(f"/api/portal/verify/{code}").json()["number"] == number
    assert client.get("/api/portal/verify/ZZZZZZZZZZ").status_code == 404


# --- the limits never keep the owner out (issue 16, finding 12) -------------------------------------

WRONG = "4210199999999"
RIGHT = "4210112345671"


def look_up(ctx: Context, client: str, cnic: str, at: datetime, plate: str = "ABC123") -> int:
    """Looks up `plate` from the address `client` at `at`; returns how many challans it found."""
    with ctx.db.session() as session:
        found = service.portal_lookup(session, plate=plate, cnic=cnic, client=client, now=at)
    return len(found.challans)


def test_failed_look_ups_from_many_addresses_never_block_the_owner(ctx: Context) -> None:
    # The attack: 30 wrong CNICs for a plate, from anywhere, used to lock its owner out for an hour.
    issue(ctx)
    now = datetime.now(UTC)
    for n in range(60):
        assert look_up(ctx, f"10.1.{n}.7", WRONG, now) == 0
    assert look_up(ctx, "192.0.2.10", RIGHT, now + timedelta(seconds=1)) == 1


def test_a_plate_under_attack_slows_each_address_a_little_and_the_owner_gets_in(ctx: Context) -> None:
    issue(ctx)
    now = datetime.now(UTC)
    for n in range(30):
        look_up(ctx, f"10.2.{n}.7", WRONG, now)
    # The owner mistypes, then types the right CNIC at once: a short wait, then in.
    assert look_up(ctx, "192.0.2.20", WRONG, now) == 0
    with pytest.raises(TooManyRequests, match="wait 30 s"):
        look_up(ctx, "192.0.2.20", RIGHT, now + timedelta(seconds=0.5))
    assert look_up(ctx, "192.0.2.20", RIGHT, now + timedelta(seconds=31)) == 1
    # An attacker's address likewise gets one guess at this plate per delay, not one a second.
    with pytest.raises(TooManyRequests):
        look_up(ctx, "10.2.0.7", WRONG, now + timedelta(seconds=5))


def test_one_address_guessing_is_stopped_without_touching_anyone_else(ctx: Context) -> None:
    issue(ctx)
    now = datetime.now(UTC)
    for n in range(20):  # within the per-minute limit, over an hour
        look_up(ctx, "10.3.0.7", f"42101{n:07d}1", now + timedelta(minutes=3 * n))
    later = now + timedelta(minutes=59)
    with pytest.raises(TooManyRequests, match="found nothing"):
        look_up(ctx, "10.3.0.7", WRONG, later, plate="KHB777")
    assert look_up(ctx, "192.0.2.30", RIGHT, later) == 1
    # IPv6 addresses count by their /64: one subscriber cannot walk through its own addresses.
    for n in range(20):
        look_up(ctx, f"2001:db8:1:1::{n + 1:x}", WRONG, now + timedelta(minutes=3 * n), plate="KHB777")
    with pytest.raises(TooManyRequests):
        look_up(ctx, "2001:db8:1:1::ffff", WRONG, later, plate="KHB777")


def test_a_typed_forwarded_address_does_not_escape_the_portal_limit(ctx: Context, client: TestClient) -> None:
    issue(ctx)
    # Without a trusted proxy, a typed X-Forwarded-For changes nothing: 10 a minute from this caller.
    spoofed = [
        client.post(
            "/api/portal/lookup",
            json={"plate": f"P{n:03d}", "cnic": WRONG},
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
        ).status_code
        for n in range(11)
    ]
    assert spoofed[-1] == 429
