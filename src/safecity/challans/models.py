"""E-challans: the vehicle registry, challans and their fine schedule, payments, appeals, notices, flags.

The fine schedule defaults to Karachi's rules: a minimum fine of Rs 5,000; half off when paid within
14 days; due in 21; doubled from day 22; an appeal pauses the clock; the licence is flagged for
suspension after 3 months unpaid and the CNIC after 6; 30 demerit points in a year suspend the licence.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import JSON, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.clock import utcnow
from safecity.core.db import Base

CHALLAN_STATES = ("unpaid", "appealed", "paid", "cancelled")
CNIC_RE = re.compile(r"^\d{13}$")


def normalise_plate(value: str) -> str:
    """Returns a plate as stored: capitals, no spaces or dashes."""
    return re.sub(r"[\s\-]", "", value).upper()


def normalise_cnic(value: str) -> str:
    """Returns a CNIC as 13 digits (dashes dropped); raises ValueError when it is not one."""
    digits = re.sub(r"[\s\-]", "", value)
    if not CNIC_RE.match(digits):
        raise ValueError("a CNIC is 13 digits, e.g. 42101-1234567-1")
    return digits


class Vehicle(Base):
    """A registered vehicle and its owner, as imported from the excise department's registry."""

    __tablename__ = "vehicles"

    plate: Mapped[str] = mapped_column(String(20), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    cnic: Mapped[str] = mapped_column(String(13), index=True)
    address: Mapped[str] = mapped_column(String(500))
    make: Mapped[str] = mapped_column(String(100), default="")
    colour: Mapped[str] = mapped_column(String(50), default="")
    phone: Mapped[str] = mapped_column(String(20), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Challan(Base):
    """A fine issued for one violation, addressed to the owner on record when it was issued."""

    __tablename__ = "challans"
    __table_args__ = (
        Index("ix_challans_plate_cnic", "plate", "cnic"),
        Index("ix_challans_status_issued", "status", "issued_at"),
        # Only challans still waiting for their notice: the work queue's look-up stays small.
        Index(
            "ix_challans_notice_due",
            "issued_at",
            postgresql_where=text("notice_ref IS NULL"),
            sqlite_where=text("notice_ref IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    violation_id: Mapped[str] = mapped_column(String(32), unique=True)
    plate: Mapped[str] = mapped_column(String(20))
    cnic: Mapped[str] = mapped_column(String(13), index=True)
    owner: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(500))
    offence: Mapped[str] = mapped_column(String(32))
    camera_id: Mapped[str | None] = mapped_column(String(64))
    offence_at: Mapped[datetime]
    issued_at: Mapped[datetime]
    fine: Mapped[int]
    points: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default="unpaid")
    paused_s: Mapped[float] = mapped_column(default=0.0)
    clock_paused_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    paid_amount: Mapped[int | None]
    verification_code: Mapped[str] = mapped_column(String(16), unique=True)
    # The 1Bill payment slip id (PSID) every bank, wallet and Raast payment names: one per challan.
    psid: Mapped[str | None] = mapped_column(String(24), unique=True)
    notice_ref: Mapped[str | None] = mapped_column(String(120))
    notice_claimed_by: Mapped[str | None] = mapped_column(String(200))
    notice_claimed_at: Mapped[datetime | None]
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    licence_flagged_at: Mapped[datetime | None]
    cnic_flagged_at: Mapped[datetime | None]


class ChallanCounter(Base):
    """The last challan number handed out per year (numbers are allocated in blocks)."""

    __tablename__ = "challan_counters"

    year: Mapped[int] = mapped_column(primary_key=True)
    last: Mapped[int] = mapped_column(default=0)


class Payment(Base):
    """A payment from a verified source: a gateway's signed callback or a cashier's receipt.

    `bank_ref` is `<channel>:<the gateway's transaction id or the receipt number>` and unique, so a
    payment is recorded exactly once however often it is reported.
    """

    __tablename__ = "challan_payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    challan_id: Mapped[str] = mapped_column(String(32), index=True)
    bank_ref: Mapped[str] = mapped_column(String(64), unique=True)
    amount: Mapped[int]
    paid_at: Mapped[datetime]
    channel: Mapped[str] = mapped_column(String(32), default="bank")
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Appeal(Base):
    """A citizen's appeal and the committee's decision, with its reason."""

    __tablename__ = "challan_appeals"

    id: Mapped[int] = mapped_column(primary_key=True)
    challan_id: Mapped[str] = mapped_column(String(32), unique=True)
    filed_at: Mapped[datetime]
    grounds: Mapped[str] = mapped_column(String(2000))
    contact: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(100))
    committee: Mapped[list[str]] = mapped_column(JSON, default=list)
    reason: Mapped[str] = mapped_column(String(2000), default="")


class Delivery(Base):
    """One notice to send on one channel (post, SMS, e-mail): a work queue, retried until sent.

    queued → sending (claimed by one process, `claimed_by`, `claimed_at`) → sent, or back to queued
    after a failure, or failed after the last attempt; a claim older than the claim timeout (its
    process stopped) is taken again.
    """

    __tablename__ = "challan_deliveries"
    __table_args__ = (
        UniqueConstraint("challan_id", "channel", name="uq_challan_deliveries_channel"),
        Index("ix_challan_deliveries_status", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    challan_id: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    receipt: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None]


class DriverFlag(Base):
    """A licence-suspension or CNIC-block flag raised against an owner, and why."""

    __tablename__ = "challan_flags"
    __table_args__ = (UniqueConstraint("cnic", "kind", "cause", name="uq_challan_flags_cause"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cnic: Mapped[str] = mapped_column(String(13), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    cause: Mapped[str] = mapped_column(String(100))
    challan_id: Mapped[str | None] = mapped_column(String(32), index=True)
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    cleared_at: Mapped[datetime | None]


class ChallanRulesSetting(Base):
    """The one row holding the fine schedule and delivery settings in force (JSON of ChallanRules)."""

    __tablename__ = "challan_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_by: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PortalGrant(Base):
    """A short-lived citizen access: the plate and CNIC a look-up proved, behind a random token."""

    __tablename__ = "portal_grants"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    plate: Mapped[str] = mapped_column(String(20))
    cnic: Mapped[str] = mapped_column(String(13))
    expires_at: Mapped[datetime] = mapped_column(index=True)


class PortalAttempt(Base):
    """One citizen look-up, kept an hour for rate limiting by client address and by plate.

    `client` is the caller's address (IPv6 by its /64); `matched` whether the plate and CNIC found a
    challan: only look-ups that found nothing count against an address or a plate.
    """

    __tablename__ = "portal_attempts"
    __table_args__ = (
        Index("ix_portal_attempts_client_at", "client", "at"),
        Index("ix_portal_attempts_plate_at", "plate", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client: Mapped[str] = mapped_column(String(64))
    plate: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    matched: Mapped[bool] = mapped_column(default=False, server_default="0")


# --- configuration ---------------------------------------------------------------------------------


#: The largest fine a schedule may set (rupees) and the longest period it may name (days): larger ones
#: are typing mistakes, and dates that far ahead cannot be reckoned with.
MAX_FINE, MAX_DAYS = 10_000_000, 36_500


class OffenceFine(BaseModel):
    """The fine and demerit points for one offence."""

    model_config = ConfigDict(extra="forbid")

    fine: int = Field(ge=0, le=MAX_FINE, title="Fine (Rs)", description="Base fine in rupees.")
    by_class: dict[str, Annotated[int, Field(ge=0, le=MAX_FINE)]] = Field(
        default_factory=dict, title="Fine by class", description="Rupees per vehicle class, where it differs."
    )
    points: int = Field(default=0, ge=0, le=30, title="Demerit points", description="Points on the licence.")
    label: str = Field(default="", max_length=100, title="Label", description="How the notice names it.")

    def fine_for(self, vehicle_class: str | None) -> int:
        """Returns the fine for a vehicle class."""
        return self.by_class.get(vehicle_class or "", self.fine)


def _karachi_offences() -> dict[str, OffenceFine]:
    return {
        "red_light": OffenceFine(
            fine=10_000, by_class={"bike": 5_000}, points=6, label="Signal violation (red light)"
        ),
        "speeding": OffenceFine(
            fine=10_000, by_class={"bike": 5_000}, points=6, label="Over-speeding (spot speed)"
        ),
        "section_speeding": OffenceFine(
            fine=10_000,
            by_class={"bike": 5_000},
            points=6,
            label="Over-speeding (average speed over a section)",
        ),
        "unregistered": OffenceFine(fine=10_000, points=0, label="Driving an unregistered vehicle"),
        "no_seat_belt": OffenceFine(fine=5_000, points=2, label="Driving without a seat belt"),
        "no_helmet": OffenceFine(fine=5_000, points=2, label="Riding without a helmet"),
    }


class DeliveryConfig(BaseModel):
    """Where notices go on each channel; unset channels write files under the data folder's outbox."""

    model_config = ConfigDict(extra="forbid")

    post_spool_dir: str | None = Field(
        default=None, title="Post spool", description="Folder the printing house collects PDFs from."
    )
    sms_gateway_url: str | None = Field(
        default=None,
        title="SMS gateway",
        description=(
            "HTTP endpoint taking JSON {to, text, idempotency_key} (an SMSC bridge); the key is also "
            "sent as the Idempotency-Key header, so a message re-sent after a crash is recognised."
        ),
    )
    smtp_host: str | None = Field(
        default=None, title="SMTP host", description="Mail relay for e-mailed notices."
    )
    smtp_port: int = Field(default=25, ge=1, le=65535, title="SMTP port")
    mail_from: str = Field(
        default="echallan@traffic.sindh.gov.pk", title="From", description="Sender address."
    )
    max_attempts: int = Field(default=5, ge=1, le=50, title="Attempts", description="Tries before giving up.")
    claim_timeout_s: int = Field(
        default=300,
        ge=30,
        le=86_400,
        title="Claim timeout",
        description="Seconds before a notice or delivery claimed by a process that stopped is taken again.",
    )


class PaymentConfig(BaseModel):
    """How challans are paid: 1Bill slip ids, and the Raast merchant account printed as a QR code."""

    model_config = ConfigDict(extra="forbid")

    biller_code: str = Field(
        default="1001",
        pattern=r"^\d{4,5}$",
        title="1Bill biller code",
        description="The biller's code at 1LINK: the first digits of every PSID.",
    )
    raast_merchant_id: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[A-Za-z0-9]+$",
        title="Raast merchant",
        description="The Raast merchant id (or IBAN) of the account fines are paid into; set, the notice "
        "carries a Raast QR code that names the challan's PSID.",
    )
    merchant_name: str = Field(default="Traffic Police e-Challan", max_length=25, title="Merchant name")
    merchant_city: str = Field(default="Karachi", max_length=15, title="Merchant city")


class ChallanRules(BaseModel):
    """The fine schedule and its clock, with Karachi's rules as the default."""

    model_config = ConfigDict(extra="forbid")

    currency: str = Field(default="Rs", max_length=8, title="Currency")
    number_prefix: str = Field(
        default="KHI",
        pattern=r"^[A-Z]{2,6}$",
        title="Number prefix",
        description="Challan numbers: KHI-2025-…",
    )
    minimum_fine: int = Field(
        default=5_000, ge=0, le=MAX_FINE, title="Minimum fine", description="No fine may be lower."
    )
    discount_days: int = Field(
        default=14, ge=0, le=365, title="Discount period", description="Days at a discount."
    )
    discount_pct: int = Field(
        default=50, ge=0, le=100, title="Discount", description="Percent off in that period."
    )
    due_days: int = Field(default=21, ge=1, le=365, title="Due in", description="Days until the fine is due.")
    late_multiplier: float = Field(
        default=2.0,
        ge=1,
        le=10,
        title="Late multiplier",
        description="Fine multiplier from the day after due.",
    )
    appeal_days: int = Field(
        default=21,
        ge=1,
        le=365,
        title="Appeal period",
        description="Days (clock days) within which to appeal.",
    )
    licence_flag_days: int = Field(
        default=90,
        ge=1,
        le=MAX_DAYS,
        title="Licence flag after",
        description="Unpaid days before the licence is flagged.",
    )
    cnic_flag_days: int = Field(
        default=180,
        ge=1,
        le=MAX_DAYS,
        title="CNIC flag after",
        description="Unpaid days before the CNIC is flagged.",
    )
    points_limit: int = Field(
        default=30, ge=1, le=10_000, title="Points limit", description="Points that suspend a licence."
    )
    points_window_days: int = Field(
        default=365, ge=1, le=MAX_DAYS, title="Points window", description="Days points count."
    )
    portal_per_minute: int = Field(
        default=10, ge=1, le=1_000_000, title="Portal look-ups per minute", description="Per client address."
    )
    portal_failures_per_address_hour: int = Field(
        default=20,
        ge=1,
        le=1_000_000,
        title="Failed look-ups per address",
        description="Look-ups that found nothing one client address may make in an hour (IPv6: per /64).",
    )
    portal_per_plate_hour: int = Field(
        default=30,
        ge=1,
        le=1_000_000,
        title="Failed look-ups per plate",
        description="Look-ups of one plate that found nothing in an hour, from any address, after which "
        "each address waits the plate delay between its look-ups of that plate. Never a block: the owner "
        "with the right CNIC gets in from any address that has not just tried it.",
    )
    portal_plate_delay_s: int = Field(
        default=30,
        ge=1,
        le=600,
        title="Plate delay",
        description="Seconds an address waits between look-ups of a plate that many failed look-ups named.",
    )
    offences: dict[str, OffenceFine] = Field(default_factory=_karachi_offences, title="Offences")
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig, title="Delivery")
    payments: PaymentConfig = Field(default_factory=PaymentConfig, title="Payments")

    @model_validator(mode="after")
    def _consistent(self) -> ChallanRules:
        for name, offence in self.offences.items():
            for amount in (offence.fine, *offence.by_class.values()):
                if amount < self.minimum_fine:
                    raise ValueError(
                        f"fine for {name} (Rs {amount}) is below the minimum of Rs {self.minimum_fine}"
                    )
        if self.discount_days > self.due_days:
            raise ValueError("the discount period cannot be longer than the time until due")
        if self.cnic_flag_days < self.licence_flag_days:
            raise ValueError("the CNIC is flagged after the licence, not before")
        return self


# --- schemas ---------------------------------------------------------------------------------------


class VehicleIn(BaseModel):
    """One registry row: plate, owner, CNIC, address, make, colour (phone and e-mail optional)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    plate: str = Field(min_length=2, max_length=20, title="Plate")
    owner: str = Field(min_length=1, max_length=200, title="Owner")
    cnic: str = Field(title="CNIC", description="13 digits, dashes allowed.")
    address: str = Field(min_length=1, max_length=500, title="Address")
    make: str = Field(default="", max_length=100, title="Make")
    colour: str = Field(default="", max_length=50, title="Colour")
    phone: str = Field(default="", max_length=20, pattern=r"^(\+?\d{10,15})?$", title="Phone")
    email: str = Field(default="", max_length=200, pattern=r"^([^@\s]+@[^@\s]+\.[^@\s]+)?$", title="E-mail")

    @field_validator("plate")
    @classmethod
    def _plate(cls, value: str) -> str:
        plate = normalise_plate(value)
        if not re.fullmatch(r"[A-Z0-9]{2,12}", plate):
            raise ValueError("a plate is 2 to 12 letters and digits")
        return plate

    @field_validator("cnic")
    @classmethod
    def _cnic(cls, value: str) -> str:
        return normalise_cnic(value)


class ImportReport(BaseModel):
    """What a registry import did; any error means nothing was written."""

    created: int = 0
    updated: int = 0
    errors: list[str] = Field(default_factory=list)


class IssueReport(BaseModel):
    """What one issue run did."""

    issued: int = 0
    held: int = 0
    numbers: list[str] = Field(default_factory=list)
    held_reasons: dict[str, str] = Field(default_factory=dict)


class ChallanOut(BaseModel):
    """A challan as shown to staff."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    number: str
    violation_id: str
    plate: str
    cnic: str
    owner: str
    address: str
    offence: str
    camera_id: str | None
    offence_at: datetime
    issued_at: datetime
    fine: int
    points: int
    status: str
    paid_at: datetime | None
    paid_amount: int | None
    verification_code: str
    psid: str | None = None
    notice_ref: str | None
    evidence: dict[str, Any]
    licence_flagged_at: datetime | None
    cnic_flagged_at: datetime | None
    amount_due: int | None = None
    day: int | None = None
    discount_until: datetime | None = Field(
        default=None, description="Last moment of the discount: the end of a day in the display time zone."
    )
    due_at: datetime | None = Field(default=None, description="Last moment to pay the fine before it grows.")
    appeal_until: datetime | None = Field(default=None, description="Last moment to appeal.")


class CitizenChallan(BaseModel):
    """A challan as a citizen sees it: no other person's data, the amount due today and what comes next."""

    number: str
    plate: str
    offence: str
    offence_label: str
    offence_at: datetime
    issued_at: datetime
    status: str
    fine: int
    amount_due: int
    discount_until: datetime = Field(
        description="Last moment of the discount (UTC): the end of a day in the display time zone."
    )
    due_at: datetime = Field(description="Last moment to pay the fine before it grows (UTC).")
    appeal_until: datetime = Field(description="Last moment to appeal (UTC).")
    measured: float | None
    limit: float | None
    unit: str
    evidence: list[str]
    appeal: dict[str, Any] | None
    psid: str | None = Field(
        default=None, title="PSID", description="Pay with it by 1Bill in a bank or wallet app, or at a bank."
    )


class LookupIn(BaseModel):
    """A citizen's look-up: both the plate and the owner's CNIC are required."""

    model_config = ConfigDict(extra="forbid")

    plate: str = Field(min_length=2, max_length=20, title="Plate")
    cnic: str = Field(min_length=13, max_length=15, title="CNIC")


class LookupOut(BaseModel):
    """The same shape whether or not anything matched, so a look-up reveals nothing about others."""

    token: str = Field(title="Access", description="Send as X-Portal-Token to see evidence, pay or appeal.")
    expires_at: datetime
    challans: list[CitizenChallan]


class AppealIn(BaseModel):
    """A citizen's appeal."""

    model_config = ConfigDict(extra="forbid")

    grounds: str = Field(
        min_length=10, max_length=2000, title="Grounds", description="Why the challan is wrong."
    )
    contact: str = Field(
        default="", max_length=200, title="Contact", description="Phone or e-mail for the hearing."
    )


class DecisionIn(BaseModel):
    """The appeal committee's decision."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["upheld", "dismissed"] = Field(
        title="Decision",
        description="upheld: the appeal succeeds and the challan is cancelled; dismissed: it stands.",
    )
    reason: str = Field(min_length=5, max_length=2000, title="Reason")
    committee: list[str] = Field(
        min_length=1, max_length=9, title="Committee", description="Members who decided."
    )


class AppealOut(BaseModel):
    """An appeal and its decision."""

    model_config = ConfigDict(from_attributes=True)

    challan_id: str
    filed_at: datetime
    grounds: str
    status: str
    decided_at: datetime | None
    decided_by: str | None
    committee: list[str]
    reason: str


class FlagOut(BaseModel):
    """A flag against an owner's licence or CNIC."""

    model_config = ConfigDict(from_attributes=True)

    cnic: str
    kind: str
    cause: str
    challan_id: str | None
    raised_at: datetime
    cleared_at: datetime | None
