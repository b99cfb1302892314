"""Notice delivery through an outbox: post, SMS and e-mail adapters, and a file adapter for tests and demos.

Issuing a challan queues one delivery per channel in the same transaction; `deliver_pending` sends
them, records each receipt or error, and retries failures on the next run up to a limit.
"""

from __future__ import annotations

import json
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from safecity.challans import notice, service
from safecity.challans.models import Challan, Delivery, DeliveryConfig
from safecity.core.clock import utcnow
from safecity.core.media import MediaStore


@dataclass(frozen=True)
class NoticeMessage:
    """What one delivery carries: the address, a short text and the notice PDF."""

    channel: str
    address: str
    number: str
    text: str
    pdf: bytes


class Adapter(Protocol):
    """Sends one notice on one channel; returns a receipt or raises on failure."""

    def send(self, message: NoticeMessage) -> str: ...


class FileAdapter:
    """Writes each notice as a PDF plus a JSON envelope into a folder (tests, demos, print spools)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def send(self, message: NoticeMessage) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = f"{message.number}-{message.channel}"
        (self.folder / f"{stem}.pdf").write_bytes(message.pdf)
        envelope = {
            "channel": message.channel,
            "to": message.address,
            "number": message.number,
            "text": message.text,
        }
        (self.folder / f"{stem}.json").write_text(json.dumps(envelope, indent=2))
        return str(self.folder / f"{stem}.pdf")


class PostAdapter(FileAdapter):
    """Posted notices: PDFs dropped in the printing house's spool folder, one per challan."""


class SmsAdapter:
    """SMS through an HTTP bridge to the operator's SMSC: POST JSON {to, text}."""

    def __init__(self, gateway_url: str, *, timeout: float = 10.0) -> None:
        self.gateway_url = gateway_url
        self.timeout = timeout

    def send(self, message: NoticeMessage) -> str:
        response = httpx.post(
            self.gateway_url, json={"to": message.address, "text": message.text}, timeout=self.timeout
        )
        response.raise_for_status()
        return response.text[:200] or f"HTTP {response.status_code}"


class EmailAdapter:
    """E-mail through an SMTP relay, with the notice attached."""

    def __init__(self, host: str, port: int, sender: str) -> None:
        self.host, self.port, self.sender = host, port, sender

    def send(self, message: NoticeMessage) -> str:
        mail = EmailMessage()
        mail["From"], mail["To"] = self.sender, message.address
        mail["Subject"] = f"e-Challan {message.number}"
        mail.set_content(message.text)
        mail.add_attachment(
            message.pdf, maintype="application", subtype="pdf", filename=f"{message.number}.pdf"
        )
        with smtplib.SMTP(self.host, self.port, timeout=15) as smtp:
            smtp.send_message(mail)
        return f"smtp {self.host}"


def adapters_from_config(config: DeliveryConfig, data_dir: Path) -> dict[str, Adapter]:
    """Returns an adapter per channel: the configured service, or files under data_dir/outbox."""
    outbox = Path(data_dir) / "outbox"
    post: Adapter = (
        PostAdapter(Path(config.post_spool_dir)) if config.post_spool_dir else FileAdapter(outbox / "post")
    )
    sms: Adapter = (
        SmsAdapter(config.sms_gateway_url) if config.sms_gateway_url else FileAdapter(outbox / "sms")
    )
    email: Adapter = (
        EmailAdapter(config.smtp_host, config.smtp_port, config.mail_from)
        if config.smtp_host
        else FileAdapter(outbox / "email")
    )
    return {"post": post, "sms": sms, "email": email}


def deliver_pending(
    session: Session, media: MediaStore, adapters: dict[str, Adapter], *, limit: int = 500
) -> dict[str, int]:
    """Sends queued deliveries (rendering notices that are missing); returns counts of sent and failed."""
    rules = service.get_rules(session)
    counts = {"sent": 0, "failed": 0, "gave_up": 0}
    queued = session.scalars(
        select(Delivery).where(Delivery.status == "queued").order_by(Delivery.id).limit(limit)
    ).all()
    for delivery in queued:
        challan = session.get(Challan, delivery.challan_id)
        if challan is None:
            delivery.status, delivery.last_error = "failed", "the challan no longer exists"
            counts["gave_up"] += 1
            continue
        if challan.notice_ref is None:
            notice.render_notice(session, media, challan.number)
        assert challan.notice_ref is not None
        due = service.amount_due(challan, rules, utcnow())
        text = (
            f"e-Challan {challan.number}: {challan.plate}, {challan.offence.replace('_', ' ')} on "
            f"{challan.offence_at:%d %b %Y}. Pay {rules.currency} {due:,} now; see evidence or appeal at "
            f"{rules.delivery.portal_url} (code {challan.verification_code})."
        )
        adapter = adapters.get(delivery.channel)
        delivery.attempts += 1
        try:
            if adapter is None:
                raise RuntimeError(f"no adapter for channel {delivery.channel}")
            receipt = adapter.send(
                NoticeMessage(
                    delivery.channel, delivery.address, challan.number, text, media.get(challan.notice_ref)
                )
            )
        except Exception as exc:  # any adapter failure is recorded on the delivery and retried
            delivery.last_error = f"{type(exc).__name__}: {exc}"[:500]
            if delivery.attempts >= rules.delivery.max_attempts:
                delivery.status = "failed"
                counts["gave_up"] += 1
            else:
                counts["failed"] += 1
            continue
        delivery.status, delivery.receipt, delivery.sent_at, delivery.last_error = (
            "sent",
            receipt[:200],
            utcnow(),
            "",
        )
        counts["sent"] += 1
    return counts
