"""What payments carry: a gateway's verified notice, a cashier's receipt, and the recorded payment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

CHANNELS = ("1bill", "jazzcash", "easypaisa", "raast", "counter")


@dataclass(frozen=True)
class GatewayPayment:
    """A payment a gateway vouched for with a valid signature, in the gateway's own words made plain."""

    gateway: str
    transaction_id: str  # the gateway's id: a payment is recorded once per id
    reference: str  # what the payer quoted: the challan's PSID (or its number)
    amount: int  # rupees
    paid_at: datetime
    succeeded: bool  # a failed or cancelled transaction is acknowledged, never recorded


class CounterPaymentIn(BaseModel):
    """A payment a cashier took at a counter, entered with the receipt's number."""

    model_config = ConfigDict(extra="forbid")

    reference: str = Field(
        min_length=4, max_length=32, title="Challan", description="The challan's number or its PSID."
    )
    receipt: str = Field(
        min_length=4,
        max_length=32,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9/-]*$",
        title="Receipt number",
        description="The number printed on the receipt handed to the payer; one receipt pays one challan.",
    )
    amount: int = Field(
        gt=0, le=100_000_000, title="Amount (Rs)", description="Exactly the amount due today."
    )


class PaymentOut(BaseModel):
    """A recorded payment; `duplicate` is true when this transaction or receipt had been recorded before."""

    challan_number: str = Field(title="Challan")
    reference: str = Field(title="Reference", description="<channel>:<transaction id or receipt number>.")
    channel: str = Field(title="Channel", description="1bill, jazzcash, easypaisa, raast or counter.")
    amount: int = Field(title="Amount (Rs)")
    paid_at: datetime = Field(title="Paid at")
    duplicate: bool = Field(default=False, title="Recorded before")


class CallbackOut(BaseModel):
    """What a gateway is told: whether its notice recorded a payment (a failed transaction does not)."""

    recorded: bool
    payment: PaymentOut | None = None
    detail: str = ""
