"""Payments, recorded only from a verified source: a gateway's signed callback or a cashier's receipt.

Nothing a citizen types marks a challan paid. A payment names the challan by its PSID (the 1Bill slip
id printed on the notice, also in the Raast QR code) or its number, must match the amount due when it
was made to the rupee, and is recorded once per gateway transaction or receipt: the same notice again
changes nothing, and the same id for another challan or amount is refused.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from safecity.audit import service as audit
from safecity.challans import service as challans
from safecity.challans.models import Challan, DriverFlag, Payment
from safecity.challans.payments.gateways import GATEWAYS, Gateway, parse_secrets
from safecity.challans.payments.models import CallbackOut, CounterPaymentIn, GatewayPayment, PaymentOut
from safecity.core.clock import format_day, format_moment, utcnow
from safecity.core.db import get_by
from safecity.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from safecity.settings import Settings

#: A payment dated this far ahead of our clock is refused (the clocks disagree, or the notice lies).
_CLOCK_SKEW = timedelta(minutes=5)


def find_challan(session: Session, reference: str) -> Challan | None:
    """Returns the challan a payer quoted (its PSID, or its number), if there is one."""
    ref = reference.strip().upper()
    return get_by(session, Challan, psid=ref) if ref.isdigit() else get_by(session, Challan, number=ref)


def challan_for(session: Session, reference: str) -> Challan:
    """Returns the challan a payer quoted (its PSID, or its number), or raises NotFound."""
    challan = find_challan(session, reference)
    if challan is None:
        raise NotFound(
            f"no challan has the PSID or number {reference[:40]!r}: nothing was recorded",
            hint="refund the payer; the PSID is printed on the notice",
        )
    return challan


def record(
    session: Session,
    quoted: str,
    *,
    channel: str,
    reference: str,
    amount: int,
    paid_at: datetime,
    actor: str,
    detail: dict[str, object] | None = None,
) -> PaymentOut:
    """Records one verified payment of the challan `quoted` (PSID or number) exactly once, under
    `reference` (`<channel>:<transaction id or receipt>`)."""
    same = get_by(session, Payment, bank_ref=reference)
    found = find_challan(session, quoted)
    if same is not None:
        # A notice delivered again is recognised before anything else, whatever it names.
        if found is not None and same.challan_id == found.id and same.amount == amount:
            return PaymentOut(
                challan_number=found.number,
                reference=same.bank_ref,
                channel=same.channel,
                amount=same.amount,
                paid_at=same.paid_at,
                duplicate=True,
            )
        raise Conflict(
            f"{reference} was already recorded for another payment: nothing was recorded",
            hint="each transaction or receipt pays one challan once",
        )
    challan = found or challan_for(session, quoted)
    if paid_at > utcnow() + _CLOCK_SKEW:
        raise InvalidInput(f"the payment is dated in the future ({format_moment(paid_at)})")
    if challan.status == "paid":
        raise Conflict(
            f"challan {challan.number} was already paid on {format_day(challan.paid_at)}: "
            "nothing was recorded",
            hint="refund this payment",
        )
    if challan.status == "cancelled":
        raise Conflict(f"challan {challan.number} was cancelled on appeal; nothing is due", hint="refund it")
    if challan.status == "appealed":
        raise Conflict(f"challan {challan.number} is under appeal", hint="pay after the committee's decision")
    due = challans.amount_due(challan, challans.get_rules(session), paid_at)
    if amount != due:
        raise InvalidInput(
            f"Rs {amount} does not match the Rs {due} due on {format_day(paid_at)}: nothing was recorded",
            hint="refund the payment; the payer pays the amount the portal shows for the day",
        )
    try:
        with session.begin_nested():
            session.add(
                Payment(
                    challan_id=challan.id, bank_ref=reference, amount=amount, paid_at=paid_at, channel=channel
                )
            )
    except IntegrityError:
        raise Conflict(f"{reference} is being recorded already", hint="retry in a moment") from None
    result = session.execute(
        update(Challan)
        .where(Challan.id == challan.id, Challan.status == "unpaid")
        .values(status="paid", paid_at=paid_at, paid_amount=amount)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"challan {challan.number} changed while paying", hint="look it up again")
    session.execute(
        update(DriverFlag)
        .where(DriverFlag.challan_id == challan.id, DriverFlag.cleared_at.is_(None))
        .values(cleared_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.refresh(challan)
    audit.record(
        session,
        actor=actor,
        action="challan.pay",
        target=challan.number,
        detail={"reference": reference, "amount": amount, "due": due, "channel": channel, **(detail or {})},
    )
    return PaymentOut(
        challan_number=challan.number, reference=reference, channel=channel, amount=amount, paid_at=paid_at
    )


def gateway_secret(settings: Settings, name: str) -> tuple[Gateway, bytes]:
    """Returns a gateway and its secret; an unknown gateway is NotFound, one with no secret Forbidden."""
    gateway = GATEWAYS.get(name.lower())
    if gateway is None:
        raise NotFound(f"no payment gateway is called {name[:40]!r}", hint=f"use {', '.join(GATEWAYS)}")
    configured = settings.payment_gateway_secrets
    secret = parse_secrets(configured.get_secret_value()).get(gateway.name) if configured else None
    if secret is None:
        raise Forbidden(
            f"payments from {gateway.name} are not accepted here: no secret is configured for it",
            hint="add it to SAFECITY_PAYMENT_GATEWAY_SECRETS",
        )
    return gateway, secret


def record_callback(session: Session, payment: GatewayPayment) -> CallbackOut:
    """Records the payment a verified gateway callback reports (a failed transaction is only noted)."""
    if not payment.succeeded:
        return CallbackOut(recorded=False, detail=f"{payment.gateway} reports the transaction as not paid")
    out = record(
        session,
        payment.reference,
        channel=payment.gateway,
        reference=f"{payment.gateway}:{payment.transaction_id}",
        amount=payment.amount,
        paid_at=payment.paid_at,
        actor=f"gateway:{payment.gateway}",
    )
    return CallbackOut(recorded=True, payment=out)


def record_counter(session: Session, data: CounterPaymentIn, *, cashier: str) -> PaymentOut:
    """Records a payment a cashier took, under the receipt's number (audited with the cashier's name)."""
    return record(
        session,
        data.reference,
        channel="counter",
        reference=f"counter:{data.receipt.upper()}",
        amount=data.amount,
        paid_at=utcnow(),
        actor=cashier,
        detail={"receipt": data.receipt.upper()},
    )
