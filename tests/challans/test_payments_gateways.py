"""Payments recorded only from a verified source (issue 16, finding 12): each gateway end to end.

A fake payment gateway runs as a real HTTP server beside the real app: a citizen "pays" it, and it
sends SafeCity its signed callback over HTTP, signing each as that gateway does (written here from the
gateways' descriptions, not from SafeCity's code). Forged, replayed, wrong-amount and unknown-challan
callbacks are refused with a clear 4xx and leave nothing recorded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from safecity.audit.models import AuditEntry
from safecity.challans import service
from safecity.challans.models import Challan, Payment
from safecity.core.context import Context
from safecity.core.events import ViolationCandidate
from safecity.enforcement import service as enforcement
from safecity.settings import Settings
from tests.browser import LiveServer
from tests.enforcement.court import prepare

SECRETS = {
    "1bill": "onelink-secret-0123456789",
    "jazzcash": "JZC-integrity-salt-98765",
    "easypaisa": "easypaisa-hash-key-424242",
    "raast": "raast-acquirer-secret-1357",
}
PKT = timezone(timedelta(hours=5))
REGISTRY = (
    "plate,owner,cnic,address,make,colour\nABC123,Ali Khan,42101-1234567-1,House 1 Clifton,Corolla,white\n"
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The gateways' secrets configured, as a city would (no Raast secret for one test to remove)."""
    secrets = ",".join(f"{name}={secret}" for name, secret in SECRETS.items())
    return Settings(data_dir=tmp_path / "data", payment_gateway_secrets=SecretStr(secrets))


def sign_callback(
    gateway: str, psid: str, amount: int, txn: str, *, at: datetime, secret: str, status: str = "paid"
) -> tuple[bytes, dict[str, str]]:
    """Returns the body and headers `gateway` sends for a payment of `amount` rupees quoting `psid`."""
    key = secret.encode()
    stamp = str(int(at.timestamp()))
    pkt = at.astimezone(PKT)
    if gateway == "1bill":
        body = json.dumps(
            {
                "consumer_number": psid,
                "tran_auth_id": txn,
                "transaction_amount": f"{amount * 100:012d}",
                "tran_date": f"{pkt:%Y%m%d}",
                "tran_time": f"{pkt:%H%M%S}",
                "bank_mnemonic": "HBL",
                "reserved": "",
            }
        ).encode()
        mac = hmac.new(key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return body, {
            "X-1Link-Timestamp": stamp,
            "X-1Link-Signature": mac,
            "Content-Type": "application/json",
        }
    if gateway == "jazzcash":
        fields = {
            "pp_Version": "1.1",
            "pp_TxnType": "MWALLET",
            "pp_TxnRefNo": txn,
            "pp_Amount": str(amount * 100),
            "pp_BillReference": psid,
            "pp_ResponseCode": "000" if status == "paid" else "124",
            "pp_ResponseMessage": "Thank you for Using JazzCash" if status == "paid" else "Declined",
            "pp_TxnDateTime": f"{pkt:%Y%m%d%H%M%S}",
            "pp_MerchantID": "MC12345",
            "pp_RetreivalReferenceNo": "",
        }
        values = [fields[name] for name in sorted(fields) if fields[name]]
        fields["pp_SecureHash"] = (
            hmac.new(key, "&".join([secret, *values]).encode(), hashlib.sha256).hexdigest().upper()
        )
        return urlencode(fields).encode(), {"Content-Type": "application/x-www-form-urlencoded"}
    if gateway == "easypaisa":
        body = json.dumps(
            {
                "storeId": "88231",
                "orderId": psid,
                "transactionId": txn,
                "transactionAmount": f"{amount}.00",
                "transactionStatus": "PAID" if status == "paid" else "FAILED",
                "transactionDateTime": pkt.isoformat(),
                "notifiedAt": at.isoformat(),
                "paymentMethod": "MA",
            }
        ).encode()
        mac = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
        return body, {"X-Easypaisa-Signature": mac, "Content-Type": "application/json"}
    body = json.dumps(
        {
            "endToEndId": txn,
            "transactionStatus": "ACSC" if status == "paid" else "RJCT",
            "amount": {"value": f"{amount}.00", "currency": "PKR"},
            "remittanceInformation": psid,
            "acceptedAt": at.isoformat(),
        }
    ).encode()
    mac = hmac.new(key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return body, {"Raast-Signature": f"t={stamp},v1={mac}", "Content-Type": "application/json"}


class FakeGateway:
    """A payment gateway on a loopback port: `POST /pay` takes a citizen's payment and calls SafeCity back.

    The JSON body says what to pay ({gateway, psid, amount, txn}) and how the callback goes wrong, if
    it should: `forge` signs with a wrong secret, `age_s` dates it in the past, `status` fails it. The
    answer is SafeCity's: {"status": …, "body": …}. `resend()` delivers the last callback again as sent.
    """

    def __init__(self, callback_base: str) -> None:
        self.callback_base = callback_base
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                order = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                name = order["gateway"]
                secret = "forged-by-someone-else" if order.get("forge") else SECRETS[name]
                at = datetime.now(UTC) - timedelta(seconds=order.get("age_s", 0))
                body, headers = sign_callback(
                    name,
                    order["psid"],
                    order["amount"],
                    order["txn"],
                    at=at,
                    secret=secret,
                    status=order.get("status", "paid"),
                )
                out = json.dumps(gateway.deliver(name, body, headers)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/pay"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def deliver(self, name: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        """Sends one callback to SafeCity over HTTP; returns its status and answer."""
        self.sent.append((name, body, headers))
        request = urllib.request.Request(
            f"{self.callback_base}/api/payments/{name}/callback", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return {"status": answer.status, "body": json.loads(answer.read())}
        except urllib.error.HTTPError as refused:
            return {"status": refused.code, "body": json.loads(refused.read())}

    def resend(self) -> dict[str, Any]:
        """Delivers the last callback again, byte for byte (a replay)."""
        return self.deliver(*self.sent[-1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway(live_server: LiveServer) -> Iterator[FakeGateway]:
    fake = FakeGateway(live_server.url)
    yield fake
    fake.close()


def pay(fake: FakeGateway, /, **order: Any) -> dict[str, Any]:
    """A citizen pays at the fake gateway; returns what SafeCity answered the gateway's callback."""
    request = urllib.request.Request(
        fake.url, data=json.dumps(order).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=15) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def issue(ctx: Context) -> Challan:
    """Issues one challan (Rs 5,000 due today: a red light on a car, inside the discount)."""
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
        (number,) = service.issue_pending(session).numbers
        return service.get_challan(session, number)


def recorded(ctx: Context) -> tuple[int, str]:
    """Returns how many payments are recorded and the challan's status."""
    with ctx.db.session() as session:
        count = session.scalar(select(func.count()).select_from(Payment)) or 0
        status = session.scalar(select(Challan.status)) or ""
    return count, status


@pytest.mark.parametrize("channel", ["1bill", "jazzcash", "easypaisa", "raast"])
def test_a_payment_through_each_gateway_is_recorded_once_from_its_signed_callback(
    ctx: Context, gateway: FakeGateway, channel: str
) -> None:
    challan = issue(ctx)
    assert challan.psid and challan.psid.isdigit() and recorded(ctx) == (0, "unpaid")
    answer = pay(gateway, gateway=channel, psid=challan.psid, amount=5000, txn="T20250601001")
    assert answer["status"] == 201, answer
    assert answer["body"]["recorded"] and answer["body"]["payment"]["channel"] == channel
    assert recorded(ctx) == (1, "paid")
    # The gateway delivers the same notice again (it did not hear our answer): nothing changes.
    again = gateway.resend()
    assert again["status"] == 200 and again["body"]["payment"]["duplicate"]
    assert recorded(ctx) == (1, "paid")
    with ctx.db.session() as session:
        (row,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "challan.pay")).all()
        reference = row.detail["reference"]  # 1Bill's transaction is its bank, day and auth id
        assert row.actor == f"gateway:{channel}" and reference.startswith(f"{channel}:")
        assert reference.endswith("T20250601001")


def test_a_forged_callback_is_refused_and_records_nothing(ctx: Context, gateway: FakeGateway) -> None:
    challan = issue(ctx)
    for channel in SECRETS:
        answer = pay(gateway, gateway=channel, psid=challan.psid, amount=5000, txn="FORGED1", forge=True)
        assert answer["status"] == 401 and "signature does not verify" in answer["body"]["detail"]
    # Not signed at all, or signed over another body.
    body, headers = sign_callback(
        "raast", str(challan.psid), 5000, "E2E1", at=datetime.now(UTC), secret=SECRETS["raast"]
    )
    assert gateway.deliver("raast", body, {"Content-Type": "application/json"})["status"] == 401
    richer = body.replace(b'"5000.00"', b'"50.00"')
    assert gateway.deliver("raast", richer, headers)["status"] == 401
    assert recorded(ctx) == (0, "unpaid")


def test_a_replayed_old_callback_is_refused_and_records_nothing(ctx: Context, gateway: FakeGateway) -> None:
    challan = issue(ctx)
    for channel in SECRETS:
        answer = pay(gateway, gateway=channel, psid=challan.psid, amount=5000, txn="OLD1", age_s=3600)
        assert answer["status"] == 401 and "window" in answer["body"]["detail"], answer
    assert recorded(ctx) == (0, "unpaid")


def test_wrong_amounts_unknown_challans_and_failed_transactions_record_nothing(
    ctx: Context, gateway: FakeGateway
) -> None:
    challan = issue(ctx)
    low = pay(gateway, gateway="1bill", psid=challan.psid, amount=100, txn="100001")
    high = pay(gateway, gateway="easypaisa", psid=challan.psid, amount=50000, txn="EP1")
    assert low["status"] == high["status"] == 422
    assert "does not match the Rs 5000 due" in low["body"]["detail"]
    unknown = pay(gateway, gateway="jazzcash", psid="1001202599999999", amount=5000, txn="JZ1")
    assert unknown["status"] == 404 and "no challan" in unknown["body"]["detail"]
    failed = pay(gateway, gateway="jazzcash", psid=challan.psid, amount=5000, txn="JZ2", status="failed")
    assert failed["status"] == 200 and not failed["body"]["recorded"]
    assert recorded(ctx) == (0, "unpaid")
    # A transaction id seen for one payment cannot pay for something else.
    assert pay(gateway, gateway="raast", psid=challan.psid, amount=5000, txn="R1")["status"] == 201
    reused = pay(gateway, gateway="raast", psid=challan.number, amount=5001, txn="R1")
    assert reused["status"] == 409 and recorded(ctx) == (1, "paid")
    second = pay(gateway, gateway="1bill", psid=challan.psid, amount=5000, txn="100002")
    assert second["status"] == 409 and "already paid" in second["body"]["detail"]


def test_a_gateway_without_a_configured_secret_is_refused(ctx: Context, gateway: FakeGateway) -> None:
    challan = issue(ctx)
    ctx.settings.payment_gateway_secrets = SecretStr(f"raast={SECRETS['raast']}")
    answer = pay(gateway, gateway="1bill", psid=challan.psid, amount=5000, txn="100003")
    assert answer["status"] == 403 and "no secret is configured" in answer["body"]["detail"]
    nowhere = gateway.deliver("paypal", b"{}", {"Content-Type": "application/json"})
    assert nowhere["status"] == 404
    assert recorded(ctx) == (0, "unpaid")
