"""A cashier records a payment by its receipt number, audited; nobody else records one by hand. The
notice names the PSID and carries a Raast QR code that pays it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import select

from safecity.audit.models import AuditEntry
from safecity.challans import notice, service
from safecity.challans.payments import slips
from safecity.core.context import Context
from safecity.core.events import ViolationCandidate
from safecity.enforcement import service as enforcement
from tests.conftest import auth_headers
from tests.enforcement.court import prepare

REGISTRY = (
    "plate,owner,cnic,address,make,colour\nABC123,Ali Khan,42101-1234567-1,House 1 Clifton,Corolla,white\n"
)


def issue(ctx: Context) -> str:
    photo = ctx.media.put_image(np.full((60, 80, 3), 90, np.uint8))
    with ctx.db.session() as session:
        service.import_registry(session, REGISTRY, actor="test")
        prepare(session, ctx.media, "cam-1", at=datetime.now(UTC) - timedelta(hours=2), junction="J1")
        enforcement.record_candidate(
            session,
            media=ctx.media,
            candidate=ViolationCandidate(
                key="v-1",
                camera_id="cam-1",
                at=datetime.now(UTC) - timedelta(hours=2),
                offence="red_light",
                plate="ABC123",
                confidence=0.99,
                measured=1.4,
                limit=0.0,
                evidence_refs=[photo],
                detail={"unit": "s into red", "frames_after": [photo], "junction": "J1"},
            ),
        )
        return service.issue_pending(session).numbers[0]


def test_a_cashier_records_a_payment_once_by_its_receipt_and_it_is_audited(
    ctx: Context, client: TestClient
) -> None:
    number = issue(ctx)
    headers = auth_headers(ctx, "cashier", "cashier.saddar")
    body = {"reference": number, "receipt": "SDR-2025-0042", "amount": 5000}
    short = client.post("/api/challans/payments", json={**body, "amount": 4000}, headers=headers)
    assert short.status_code == 422 and "does not match the Rs 5000 due" in short.json()["detail"]
    paid = client.post("/api/challans/payments", json=body, headers=headers)
    assert paid.status_code == 201 and paid.json()["reference"] == "counter:SDR-2025-0042"
    again = client.post("/api/challans/payments", json=body, headers=headers)
    assert again.status_code == 200 and again.json()["duplicate"]
    with ctx.db.session() as session:
        assert service.get_challan(session, number).status == "paid"
        (row,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "challan.pay")).all()
        assert row.actor == "cashier.saddar" and row.detail["receipt"] == "SDR-2025-0042"


def test_only_a_cashier_may_record_a_payment_by_hand(ctx: Context, client: TestClient) -> None:
    number = issue(ctx)
    body = {"reference": number, "receipt": "R-1", "amount": 5000}
    for role in ("admin", "supervisor", "traffic_officer", "auditor"):
        answer = client.post("/api/challans/payments", json=body, headers=auth_headers(ctx, role))
        assert answer.status_code == 403, role
    assert client.post("/api/challans/payments", json=body).status_code == 401
    with ctx.db.session() as session:
        assert service.get_challan(session, number).status == "unpaid"


def test_a_cashier_may_do_nothing_else(ctx: Context, client: TestClient) -> None:
    headers = auth_headers(ctx, "cashier")
    assert client.get("/api/challans", headers=headers).status_code == 403
    assert client.get("/api/cameras", headers=headers).status_code == 403


def test_the_notice_names_the_psid_and_its_raast_code_pays_it(ctx: Context) -> None:
    number = issue(ctx)
    with ctx.db.session() as session:
        rules = service.get_rules(session)
        rules.payments.raast_merchant_id = "PK36SCBL0000001123456702"
        service.set_rules(session, rules, actor="test")
        challan = service.get_challan(session, number)
        assert challan.psid == slips.psid_for(rules.payments, number)
        payload = slips.raast_qr(rules.payments, challan)
        ref = notice.render_notice(session, ctx.media, number, portal=notice.portal_address(ctx.settings))
    assert payload is not None and str(challan.psid) in payload and "PK36SCBL0000001123456702" in payload
    assert payload.startswith("000201010211") and "5303586" in payload and "52049222" in payload
    body, crc = payload[:-4], payload[-4:]
    assert slips._crc16(body.encode()) == crc
    assert slips._crc16(b"123456789") == "29B1"  # CRC-16/CCITT-FALSE's check value
    pdf = ctx.media.get(ref)
    assert pdf.startswith(b"%PDF") and ctx.media.is_sealed(ref)


def test_a_psid_carries_a_check_digit() -> None:
    from safecity.challans.models import PaymentConfig

    psid = slips.psid_for(PaymentConfig(biller_code="1001"), "KHI-2025-00000123")
    assert psid == "1001" + "2025" + "000000123" + psid[-1] and len(psid) == 18
    total = sum(
        (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 else d for i, d in enumerate(map(int, reversed(psid)))
    )
    assert total % 10 == 0  # Luhn: a mistyped digit is caught at the bank


def test_the_psid_check_digit_is_luhns() -> None:
    # The textbook examples: 7992739871 → 3; 4539 1488 0343 646 → 7.
    assert slips._luhn("7992739871") == "3"
    assert slips._luhn("453914880343646") == "7"
    assert slips._luhn("0") == "0"
