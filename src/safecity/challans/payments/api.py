"""Payments over HTTP: the gateways' signed callbacks and the cashiers' counter."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from safecity.accounts.api import require
from safecity.accounts.service import Principal
from safecity.challans.payments import service
from safecity.challans.payments.models import CallbackOut, CounterPaymentIn, PaymentOut
from safecity.core.clock import utcnow
from safecity.core.errors import SafeCityError
from safecity.core.http import Ctx, DbSession, client_address

log = logging.getLogger(__name__)

router = APIRouter(tags=["payments"])

Cashier = Annotated[Principal, Depends(require("challans:cash"))]


async def raw_body(request: Request) -> bytes:
    """Returns the request's bytes as sent: a signature covers them, not a parsed copy."""
    return await request.body()


@router.post(
    "/api/payments/{gateway}/callback",
    response_model=CallbackOut,
    summary="A payment gateway's signed payment notice (1bill, jazzcash, easypaisa, raast)",
)
def gateway_callback(
    gateway: str,
    body: Annotated[bytes, Depends(raw_body)],
    request: Request,
    ctx: Ctx,
    response: Response,
) -> CallbackOut:
    """Records a payment only when the gateway's signature verifies, its timestamp is within the window,
    the challan exists and the amount is the one due; the same transaction again changes nothing."""
    window = timedelta(seconds=ctx.settings.payment_callback_window_s)
    try:
        # Verified before any transaction opens: forged notices never take the database's write lock.
        found, secret = service.gateway_secret(ctx.settings, gateway)
        payment = found.verify(request.headers, body, secret=secret, now=utcnow(), window=window)
        with ctx.db.session() as session:
            out = service.record_callback(session, payment)
    except SafeCityError as exc:
        log.warning("payment callback to %s from %s refused: %s", gateway[:20], client_address(request), exc)
        raise
    response.status_code = 201 if out.recorded and out.payment and not out.payment.duplicate else 200
    return out


@router.post(
    "/api/challans/payments",
    response_model=PaymentOut,
    status_code=201,
    summary="Record a payment a cashier took, by its receipt number (once per receipt)",
)
def counter_payment(
    body: CounterPaymentIn, session: DbSession, principal: Cashier, response: Response
) -> PaymentOut:
    out = service.record_counter(session, body, cashier=principal.username)
    response.status_code = 200 if out.duplicate else 201
    return out
