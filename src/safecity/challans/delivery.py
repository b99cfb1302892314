"""Notice delivery: post, SMS and e-mail adapters, a file adapter for tests and demos, and the text sent.

Issuing a challan queues one delivery per channel in the same transaction; the work queue in
`notices_queue.py` claims and sends them. Each adapter keeps its connection for the life of the
process (`AdapterPool`), and every message carries an idempotency key (its delivery's), so a
gateway recognises a message re-sent after a crash.
"""

from __future__ import annotations

import json
import smtplib
import threading
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import httpx

from safecity.challans import service
from safecity.challans.models import Challan, ChallanRules, DeliveryConfig
from safecity.core.clock import format_day, format_moment
from safecity.core.crypto import Cipher, seal_file


@dataclass(frozen=True)
class NoticeMessage:
    """What one delivery carries: the address, a short text, the notice PDF and its idempotency key."""

    channel: str
    address: str
    number: str
    text: str
    pdf: bytes
    key: str


class Adapter(Protocol):
    """Sends notices on one channel; `send` returns a receipt or raises, `close` lets go of connections."""

    def send(self, message: NoticeMessage) -> str: ...

    def close(self) -> None: ...


def delivery_key(delivery_id: int) -> str:
    """Returns the idempotency key of one delivery, the same on every attempt."""
    return f"challan-delivery-{delivery_id}"


def notice_text(challan: Challan, rules: ChallanRules, at: datetime, *, portal: str) -> str:
    """Returns the short text of a notice (the SMS itself; the body of the e-mail), sent at `at`.

    The amount and the day it holds until come from the challan clock, as on the notice and the portal.
    """
    due = service.amount_due(challan, rules, at)
    dates = service.clock_dates(challan, rules, at)
    until = next((d for d in (dates["discount_until"], dates["due_at"]) if at <= d), None)
    pay = f"Pay {rules.currency} {due:,}" + (f" by {format_day(until)}" if until else " now")
    return (
        f"e-Challan {challan.number}: {challan.plate}, {challan.offence.replace('_', ' ')} on "
        f"{format_moment(challan.offence_at)}. {pay}; see evidence or appeal at "
        f"{portal} (code {challan.verification_code})."
    )


class FileAdapter:
    """Writes each notice as a PDF plus a JSON envelope into a folder (tests, demos, print spools).

    Files are 0600 in a 0700 folder; with a cipher (the data folder's outbox) they are sealed under the
    data key like the media store, read back with `read_outbox_file`.
    """

    def __init__(self, folder: Path, *, cipher: Cipher | None = None) -> None:
        self.folder = Path(folder)
        self.cipher = cipher

    def send(self, message: NoticeMessage) -> str:
        stem = f"{message.number}-{message.channel}"
        if message.pdf:  # a text message has no notice attached
            self._write(self.folder / f"{stem}.pdf", message.pdf)
        envelope = {
            "channel": message.channel,
            "to": message.address,
            "number": message.number,
            "text": message.text,
            "idempotency_key": message.key,
        }
        self._write(self.folder / f"{stem}.json", json.dumps(envelope, indent=2).encode())
        return str(self.folder / f"{stem}.{'pdf' if message.pdf else 'json'}")

    def _write(self, path: Path, data: bytes) -> None:
        seal_file(path, data, purpose=outbox_purpose(path), sealer=self.cipher)

    def close(self) -> None:
        """Nothing to let go of."""


class PostAdapter(FileAdapter):
    """Posted notices: PDFs dropped in the printing house's spool folder, one per challan (not sealed:
    the printing house reads them; the folder is its to protect)."""


def outbox_purpose(path: Path) -> bytes:
    """Returns what a sealed outbox file is bound to: its own name (one cannot stand in for another)."""
    return b"outbox\x00" + path.name.encode()


def read_outbox_file(path: Path, cipher: Cipher) -> bytes:
    """Returns the content of a notice or envelope in the data folder's outbox."""
    return cipher.unseal(path.read_bytes(), purpose=outbox_purpose(path))


class SmsAdapter:
    """SMS through an HTTP bridge to the operator's SMSC: POST JSON {to, text, idempotency_key}.

    One pooled client per adapter: connections and the TLS context are made once, not per message.
    """

    def __init__(self, gateway_url: str, *, timeout: float = 10.0) -> None:
        self.gateway_url = gateway_url
        self.client = httpx.Client(timeout=timeout, limits=httpx.Limits(max_keepalive_connections=4))

    def send(self, message: NoticeMessage) -> str:
        response = self.client.post(
            self.gateway_url,
            json={"to": message.address, "text": message.text, "idempotency_key": message.key},
            headers={"Idempotency-Key": message.key},
        )
        response.raise_for_status()
        return response.text[:200] or f"HTTP {response.status_code}"

    def close(self) -> None:
        self.client.close()


class EmailAdapter:
    """E-mail through an SMTP relay, with the notice attached, over one connection kept open.

    The connection is checked (NOOP) before each message and made again when the relay has dropped
    it; a message that fails mid-send is not retried here but on the queue's next turn, under the
    same Message-ID.
    """

    def __init__(self, host: str, port: int, sender: str) -> None:
        self.host, self.port, self.sender = host, port, sender
        self._smtp: smtplib.SMTP | None = None
        self._lock = threading.Lock()  # smtplib is not thread-safe

    def send(self, message: NoticeMessage) -> str:
        mail = EmailMessage()
        mail["From"], mail["To"] = self.sender, message.address
        mail["Subject"] = f"e-Challan {message.number}"
        mail["Message-ID"] = f"<{message.key}@{self.sender.rpartition('@')[2] or 'safecity'}>"
        mail.set_content(message.text)
        mail.add_attachment(
            message.pdf, maintype="application", subtype="pdf", filename=f"{message.number}.pdf"
        )
        with self._lock:
            smtp = self._connection()
            try:
                smtp.send_message(mail)
            except (smtplib.SMTPException, OSError):
                self._drop()
                raise
        return f"smtp {self.host}"

    def close(self) -> None:
        with self._lock:
            if self._smtp is not None:
                with suppress(smtplib.SMTPException, OSError):  # the relay may have hung up already
                    self._smtp.quit()
                self._drop()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            try:
                alive = self._smtp.noop()[0] == 250
            except (smtplib.SMTPException, OSError):
                alive = False
            if not alive:
                self._drop()
        if self._smtp is None:
            self._smtp = smtplib.SMTP(self.host, self.port, timeout=15)
        return self._smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None


def adapters_from_config(
    config: DeliveryConfig, data_dir: Path, cipher: Cipher | None = None
) -> dict[str, Adapter]:
    """Returns an adapter per channel: the configured service, or sealed files under data_dir/outbox."""
    outbox = Path(data_dir) / "outbox"
    post: Adapter = (
        PostAdapter(Path(config.post_spool_dir))
        if config.post_spool_dir
        else FileAdapter(outbox / "post", cipher=cipher)
    )
    sms: Adapter = (
        SmsAdapter(config.sms_gateway_url)
        if config.sms_gateway_url
        else FileAdapter(outbox / "sms", cipher=cipher)
    )
    email: Adapter = (
        EmailAdapter(config.smtp_host, config.smtp_port, config.mail_from)
        if config.smtp_host
        else FileAdapter(outbox / "email", cipher=cipher)
    )
    return {"post": post, "sms": sms, "email": email}


class AdapterPool:
    """A process's adapters for the delivery settings in force: remade when they change, closed at exit."""

    def __init__(self, data_dir: Path, cipher: Cipher | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.cipher = cipher
        self._settings: str | None = None
        self._adapters: dict[str, Adapter] = {}
        self._lock = threading.Lock()

    def adapters(self, config: DeliveryConfig) -> dict[str, Adapter]:
        """Returns the adapters for `config`, made once and kept while the settings stay the same."""
        settings = config.model_dump_json()
        with self._lock:
            if settings != self._settings:
                self._close_adapters()
                self._adapters = adapters_from_config(config, self.data_dir, self.cipher)
                self._settings = settings
            return self._adapters

    def close(self) -> None:
        """Closes every adapter's connections; the next use makes them again."""
        with self._lock:
            self._close_adapters()
            self._adapters, self._settings = {}, None

    def _close_adapters(self) -> None:
        for adapter in self._adapters.values():
            adapter.close()
