"""The payment channels Pakistani citizens use, each as a small adapter that verifies a callback.

Every adapter checks an HMAC-SHA256 signature under the gateway's own secret before it believes a word,
refuses a timestamp outside the window (a replayed notice), and returns a `GatewayPayment`:

- `1bill` (1LINK: the PSID in any bank's or wallet's app, or at a branch): `X-1Link-Signature`, hex
  HMAC of `<X-1Link-Timestamp>.<body>`; fresh by `X-1Link-Timestamp`; id: bank, date and auth id.
- `jazzcash` (wallet, instant payment notice as a form post): `pp_SecureHash`, upper hex HMAC of the
  salt and the other non-empty `pp_` values sorted by name, `&`-joined; fresh by `pp_TxnDateTime`
  (PKT); id: `pp_TxnRefNo`.
- `easypaisa` (wallet, JSON notice): `X-Easypaisa-Signature`, base64 HMAC of the body; fresh by its
  `notifiedAt`; id: `transactionId`.
- `raast` (instant payment to the notice's merchant QR, reported by the acquiring bank):
  `Raast-Signature: t=<unix>,v1=<hex HMAC of t.body>`; fresh by `t`; id: `endToEndId`.

    gateway = GATEWAYS["raast"]
    payment = gateway.verify(request.headers, body, secret=b"…", now=utcnow(), window=timedelta(minutes=5))
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from urllib.parse import parse_qsl

from safecity.challans.payments.models import GatewayPayment
from safecity.core.clock import as_utc
from safecity.core.errors import InvalidInput, Unauthorized

PKT = timezone(timedelta(hours=5), "PKT")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")


class Gateway(Protocol):
    """Verifies one gateway's callbacks."""

    name: str
    label: str

    def verify(
        self, headers: Mapping[str, str], body: bytes, *, secret: bytes, now: datetime, window: timedelta
    ) -> GatewayPayment:
        """Returns the payment a callback reports, or raises Unauthorized (signature, freshness) or
        InvalidInput (a signed body that is not a payment notice)."""
        ...


def mac(secret: bytes, message: bytes) -> bytes:
    """Returns HMAC-SHA256 of `message` under `secret`."""
    return hmac.new(secret, message, hashlib.sha256).digest()


def _check(expected: bytes, given: str, decode: str, gateway: str) -> None:
    try:
        raw = bytes.fromhex(given) if decode == "hex" else base64.b64decode(given, validate=True)
    except ValueError:
        raw = b""
    if not hmac.compare_digest(expected, raw):
        raise Unauthorized(
            f"the {gateway} callback's signature does not verify: nothing was recorded",
            hint="the gateway must sign with the secret configured in SAFECITY_PAYMENT_GATEWAY_SECRETS",
        )


def _fresh(moment: datetime, now: datetime, window: timedelta, gateway: str) -> None:
    if abs(as_utc(now) - as_utc(moment)) > window:
        raise Unauthorized(
            f"the {gateway} callback is dated {as_utc(moment):%Y-%m-%d %H:%M:%S} UTC, outside the "
            f"{int(window.total_seconds())} s window: a replayed or delayed notice; nothing was recorded",
            hint="the gateway signs each delivery anew; check both clocks",
        )


def _header(headers: Mapping[str, str], name: str, gateway: str) -> str:
    value = headers.get(name) or headers.get(name.lower())
    if not value:
        raise Unauthorized(f"the {gateway} callback has no {name} header: nothing was recorded")
    return value.strip()


def _unix(text: str, gateway: str) -> datetime:
    try:
        return datetime.fromtimestamp(int(text), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise Unauthorized(f"the {gateway} callback's timestamp {text[:20]!r} is not a Unix time") from None


def _json(body: bytes, gateway: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(f"the {gateway} callback is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"the {gateway} callback is not a JSON object")
    return data


def _field(data: Mapping[str, Any], name: str, gateway: str) -> str:
    value = data.get(name)
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value).strip() == "":
        raise InvalidInput(f"the {gateway} callback has no {name}")
    return str(value).strip()


def _txn(value: str, gateway: str) -> str:
    if not _ID.match(value):
        raise InvalidInput(
            f"the {gateway} transaction id {value[:60]!r} is not one", hint="1-48 letters and digits"
        )
    return value


def _rupees(value: str, gateway: str, *, paisa: bool) -> int:
    """Returns whole rupees from paisa digits or a decimal; a fraction of a rupee matches no fine."""
    try:
        amount = Decimal(int(value)) / 100 if paisa else Decimal(value)
    except (ValueError, InvalidOperation):
        raise InvalidInput(f"the {gateway} amount {value[:20]!r} is not a number") from None
    if amount <= 0 or amount != amount.to_integral_value() or amount > 10**9:
        raise InvalidInput(f"the {gateway} amount Rs {amount} does not match any amount due")
    return int(amount)


def _moment(text: str, fmt: str | None, gateway: str) -> datetime:
    try:
        moment = datetime.strptime(text, fmt).replace(tzinfo=PKT) if fmt else datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"the {gateway} time {text[:40]!r} is not a date and time") from None
    return as_utc(moment if moment.tzinfo else moment.replace(tzinfo=PKT))


class OneBill:
    """1Bill (1LINK): the payer quotes the challan's PSID in any bank's or wallet's app, or at a branch.

    Body: {"consumer_number": PSID, "tran_auth_id", "transaction_amount": 12 paisa digits,
    "tran_date": "YYYYMMDD", "tran_time": "HHMMSS" (PKT), "bank_mnemonic": "HBL", "reserved": ""}.
    """

    name = "1bill"
    label = "1Bill (any bank or wallet app, or a bank branch, with the PSID)"

    def verify(
        self, headers: Mapping[str, str], body: bytes, *, secret: bytes, now: datetime, window: timedelta
    ) -> GatewayPayment:
        stamp = _header(headers, "X-1Link-Timestamp", self.name)
        _check(
            mac(secret, stamp.encode() + b"." + body),
            _header(headers, "X-1Link-Signature", self.name),
            "hex",
            self.name,
        )
        _fresh(_unix(stamp, self.name), now, window, self.name)
        data = _json(body, self.name)
        bank, day = _field(data, "bank_mnemonic", self.name), _field(data, "tran_date", self.name)
        return GatewayPayment(
            gateway=self.name,
            transaction_id=_txn(f"{bank}-{day}-{_field(data, 'tran_auth_id', self.name)}", self.name),
            reference=_field(data, "consumer_number", self.name),
            amount=_rupees(_field(data, "transaction_amount", self.name), self.name, paisa=True),
            paid_at=_moment(day + _field(data, "tran_time", self.name), "%Y%m%d%H%M%S", self.name),
            succeeded=True,  # 1LINK calls only for a payment the bank has made
        )


class JazzCash:
    """JazzCash: the wallet's instant payment notice, a form post of `pp_` fields.

    pp_TxnRefNo, pp_Amount (paisa), pp_BillReference (PSID), pp_ResponseCode ("000": paid),
    pp_TxnDateTime (yyyyMMddHHmmss, PKT), pp_SecureHash, and others (pp_MerchantID, pp_RetreivalReferenceNo…).
    """

    name = "jazzcash"
    label = "JazzCash (wallet app or retailer, bill payment with the PSID)"

    def verify(
        self, headers: Mapping[str, str], body: bytes, *, secret: bytes, now: datetime, window: timedelta
    ) -> GatewayPayment:
        try:
            fields = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body)))
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("the jazzcash callback is not a form post") from None
        given = fields.pop("pp_SecureHash", "")
        values = [fields[k] for k in sorted(fields) if k.startswith("pp_") and fields[k] != ""]
        _check(mac(secret, "&".join([secret.decode(), *values]).encode()), given, "hex", self.name)
        paid_at = _moment(_field(fields, "pp_TxnDateTime", self.name), "%Y%m%d%H%M%S", self.name)
        _fresh(paid_at, now, window, self.name)
        return GatewayPayment(
            gateway=self.name,
            transaction_id=_txn(_field(fields, "pp_TxnRefNo", self.name), self.name),
            reference=_field(fields, "pp_BillReference", self.name),
            amount=_rupees(_field(fields, "pp_Amount", self.name), self.name, paisa=True),
            paid_at=paid_at,
            succeeded=fields.get("pp_ResponseCode") == "000",
        )


class Easypaisa:
    """Easypaisa: the wallet's payment notice, JSON signed as a whole.

    {"storeId", "orderId": PSID, "transactionId", "transactionAmount": "5000.00",
    "transactionStatus": "PAID" | "FAILED", "transactionDateTime", "notifiedAt" (ISO times)}.
    """

    name = "easypaisa"
    label = "Easypaisa (wallet app or retailer, bill payment with the PSID)"

    def verify(
        self, headers: Mapping[str, str], body: bytes, *, secret: bytes, now: datetime, window: timedelta
    ) -> GatewayPayment:
        _check(mac(secret, body), _header(headers, "X-Easypaisa-Signature", self.name), "base64", self.name)
        data = _json(body, self.name)
        _fresh(_moment(_field(data, "notifiedAt", self.name), None, self.name), now, window, self.name)
        return GatewayPayment(
            gateway=self.name,
            transaction_id=_txn(_field(data, "transactionId", self.name), self.name),
            reference=_field(data, "orderId", self.name),
            amount=_rupees(_field(data, "transactionAmount", self.name), self.name, paisa=False),
            paid_at=_moment(_field(data, "transactionDateTime", self.name), None, self.name),
            succeeded=data.get("transactionStatus") == "PAID",
        )


class Raast:
    """Raast: an instant payment to the merchant QR on the notice, reported by the acquiring bank.

    {"endToEndId", "transactionStatus": "ACSC" (settled) | "RJCT", "amount": {"value": "5000.00",
    "currency": "PKR"}, "remittanceInformation": PSID, "acceptedAt" (ISO time)}.
    """

    name = "raast"
    label = "Raast (scan the QR code on the notice in any banking app)"

    def verify(
        self, headers: Mapping[str, str], body: bytes, *, secret: bytes, now: datetime, window: timedelta
    ) -> GatewayPayment:
        parts = dict(
            part.strip().partition("=")[::2]
            for part in _header(headers, "Raast-Signature", self.name).split(",")
        )
        stamp = parts.get("t", "")
        _check(mac(secret, stamp.encode() + b"." + body), parts.get("v1", ""), "hex", self.name)
        _fresh(_unix(stamp, self.name), now, window, self.name)
        data = _json(body, self.name)
        amount = data.get("amount")
        if not isinstance(amount, dict) or amount.get("currency") != "PKR":
            raise InvalidInput("the raast callback's amount is not in PKR")
        return GatewayPayment(
            gateway=self.name,
            transaction_id=_txn(_field(data, "endToEndId", self.name), self.name),
            reference=_field(data, "remittanceInformation", self.name),
            amount=_rupees(_field(amount, "value", self.name), self.name, paisa=False),
            paid_at=_moment(_field(data, "acceptedAt", self.name), None, self.name),
            succeeded=data.get("transactionStatus") == "ACSC",
        )


GATEWAYS: dict[str, Gateway] = {g.name: g for g in (OneBill(), JazzCash(), Easypaisa(), Raast())}


def parse_secrets(value: str) -> dict[str, bytes]:
    """Returns each gateway's secret from `name=secret,name=secret` (SAFECITY_PAYMENT_GATEWAY_SECRETS)."""
    found: dict[str, bytes] = {}
    for part in (p.strip() for p in value.split(",") if p.strip()):
        name, _, secret = part.partition("=")
        name = name.strip().lower()
        if name not in GATEWAYS:
            raise InvalidInput(
                f"SAFECITY_PAYMENT_GATEWAY_SECRETS names an unknown gateway {name!r}",
                hint=f"use {', '.join(GATEWAYS)}",
            )
        if len(secret.strip()) < 16:
            raise InvalidInput(
                f"the {name} secret in SAFECITY_PAYMENT_GATEWAY_SECRETS is shorter than 16 characters",
                hint="use the secret the gateway issued",
            )
        found[name] = secret.strip().encode()
    return found
