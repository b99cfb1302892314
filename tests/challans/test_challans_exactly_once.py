"""Challans, notices and SMS happen once however many `serve` processes run, and start-up never dies of it.

Each "process" here is a thread with its own engine (and context), as each `serve` has; they race on
the real database. The SMS gateway is a real HTTP server on a loopback port.
"""

from __future__ import annotations

import json
import socket
import socketserver
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from safecity.challans import delivery, notices_queue, service
from safecity.challans.consumer import catch_up
from safecity.challans.models import Challan, ChallanCounter, Delivery
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.db import Database
from safecity.core.ids import new_id
from safecity.core.media import MediaStore
from safecity.enforcement.models import Violation
from safecity.settings import Settings
from tests.enforcement.court import frames, prepare

ISSUED = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)


def registry(plates: int) -> str:
    rows = [
        f"KHI{n:04d},Owner {n},42101{n:08d},House {n} Clifton,Suzuki Mehran,white,0300{n:07d},"
        for n in range(plates)
    ]
    return "plate,owner,cnic,address,make,colour,phone,email\n" + "\n".join(rows) + "\n"


def approve(session: Session, count: int, *, plates: int = 50) -> list[str]:
    """Imports a registry and files `count` approved, court-ready violations across its plates; returns
    their ids."""
    assert not service.import_registry(session, registry(plates), actor="test").errors
    media = MediaStore(Path(tempfile.mkdtemp()) / "media")
    calibration = prepare(session, media, "cam-1", at=ISSUED - timedelta(hours=2))
    (frame,) = frames(media)[:1]
    evidence = {
        "frames_after": [frame],
        "refs": [frame],
        "images": {"verified": {frame: True}},
        "calibration": {"id": calibration},
    }
    rows = [
        {
            "id": new_id(),
            "offence": "speeding",
            "plate": f"KHI{n % plates:04d}",
            "camera_id": "cam-1",
            "at": ISSUED - timedelta(hours=1, seconds=n),
            "status": "approved",
            "measured": 92.0,
            "limit": 60.0,
            "unit": "km/h",
            "evidence": evidence,
            "detail": {},
            "source_key": f"violation-{n}",
            "dedup_key": f"speeding:cam-1:{n}",
            "created_at": ISSUED - timedelta(minutes=30, seconds=-n),
        }
        for n in range(count)
    ]
    session.execute(insert(Violation), rows)
    return [r["id"] for r in rows]


def process(url: str, data_dir: Path) -> Context:
    """A context of its own, as one `serve` process has (media on the shared volume `data_dir`)."""
    return Context.create(Settings(data_dir=data_dir, database_url=url))


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Runs the calls at the same instant, one thread each; returns their results (raising any error)."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


# --- one challan per violation ---------------------------------------------------------------------


@pytest.mark.city
@pytest.mark.parametrize("first, second", [("event", "event"), ("sweep", "event"), ("sweep", "sweep")])
def test_two_processes_issue_one_challan_per_violation(pg_url: str, first: str, second: str) -> None:
    processes = [Database(pg_url) for _ in range(2)]
    processes[0].migrate()
    with processes[0].session() as session:
        violation_ids = approve(session, 1)
    both_issued = threading.Barrier(2, timeout=1.0)

    def issue(n: int, how: str) -> int:
        # Each holds its transaction open until the other has issued too (or a second has passed), so
        # a read-then-insert would have both insert.
        with processes[n].session() as session:
            if how == "event":
                report = service.issue_for_violations(session, violation_ids, now=ISSUED)
            else:
                report = service.issue_pending(session, now=ISSUED)
            with suppress(threading.BrokenBarrierError):
                both_issued.wait()
        return report.issued

    try:
        issued = race(lambda: issue(0, first), lambda: issue(1, second))
        with processes[0].session() as session:
            challans = session.scalar(select(func.count()).select_from(Challan))
            last_number = session.scalar(select(ChallanCounter.last))
            status = session.scalar(select(Violation.status))
    finally:
        for db in processes:
            db.dispose()
    assert sorted(issued) == [0, 1]
    assert challans == 1 and last_number == 1  # no challan number wasted on the loser
    assert status == "issued"


def test_concurrent_startup_catch_up_never_fails(any_db_url: str, tmp_path: Path) -> None:
    backlog = 2_400
    processes = [process(any_db_url, tmp_path / "shared") for _ in range(2)]
    try:
        with processes[0].db.session() as session:
            approve(session, backlog)
        issued = race(*(lambda ctx=ctx: catch_up(ctx, batch=400) for ctx in processes))
        with processes[0].db.session() as session:
            numbers = set(session.scalars(select(Challan.number)))
            last_number = session.scalar(select(ChallanCounter.last))
            statuses = Counter(session.scalars(select(Violation.status)))
    finally:
        for ctx in processes:
            ctx.db.dispose()
    assert sum(issued) == backlog
    assert {int(number.rsplit("-", 1)[1]) for number in numbers} == set(range(1, backlog + 1))
    assert last_number == backlog  # every number handed out is on a challan
    assert statuses == {"issued": backlog}


# --- notices and SMS through the work queue --------------------------------------------------------


class Gateway:
    """An SMS gateway on a loopback port: records every request, and delivers each idempotency key once."""

    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.receipts: dict[str, str] = {}
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real gateway offers

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(delay_s)
                key = self.headers.get("Idempotency-Key") or ""
                with gateway.lock:
                    gateway.requests.append({"key": key, "body": body, "peer": self.client_address})
                    receipt = gateway.receipts.setdefault(key, f"sms-{len(gateway.receipts) + 1}")
                out = receipt.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    server = Gateway(delay_s=0.01)
    yield server
    server.close()


def issue_with_sms(ctx: Context, count: int, gateway: str) -> None:
    """Issues `count` challans (each to be posted and sent by SMS) under rules sending SMS to `gateway`."""
    with ctx.db.session() as session:
        rules = service.get_rules(session)
        configured = rules.delivery.model_copy(update={"sms_gateway_url": gateway})
        service.set_rules(session, rules.model_copy(update={"delivery": configured}), actor="test")
        approve(session, count)
        assert service.issue_pending(session, now=ISSUED).issued == count


def drain(work: Callable[[], dict[str, int]]) -> int:
    """Runs queue turns until one finds nothing to do; returns how many deliveries it sent."""
    sent = 0
    while True:
        counts = work()
        sent += counts["sent"]
        if not any(counts.values()):
            return sent


def sum_turns(turn: Callable[[], int]) -> int:
    """Runs render turns until one renders nothing; returns how many notices it rendered."""
    total = 0
    while done := turn():
        total += done
    return total


def test_issuing_only_queues_the_notice_and_the_queue_renders_it(ctx: Context, gateway: Gateway) -> None:
    issue_with_sms(ctx, 3, gateway.url)
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).where(Challan.notice_ref.is_not(None))) == 0
    try:
        # Text messages need no PDF: they go before any notice is rendered; the posted notices wait.
        assert notices_queue.send_due_deliveries(ctx) == {"sent": 3, "failed": 0, "gave_up": 0}
        assert len(gateway.requests) == 3
        assert not list((ctx.settings.data_dir / "outbox" / "post").glob("*.pdf"))
        assert notices_queue.render_due_notices(ctx, 2) == 2
        assert notices_queue.render_due_notices(ctx, 2) == 1
        assert notices_queue.send_due_deliveries(ctx) == {"sent": 3, "failed": 0, "gave_up": 0}
    finally:
        notices_queue.close(ctx)
    assert len(gateway.requests) == 3
    assert len(list((ctx.settings.data_dir / "outbox" / "post").glob("*.pdf"))) == 3


@pytest.mark.city
def test_two_renderers_render_each_notice_once(pg_url: str, tmp_path: Path) -> None:
    processes = [process(pg_url, tmp_path / "shared") for _ in range(2)]
    try:
        with processes[0].db.session() as session:
            approve(session, 30)
            service.issue_pending(session, now=ISSUED)
        rendered = race(
            *(
                lambda ctx=ctx: sum_turns(lambda: notices_queue.render_due_notices(ctx, 4))
                for ctx in processes
            )
        )
        with processes[0].db.session() as session:
            missing = session.scalar(select(func.count()).where(Challan.notice_ref.is_(None)))
    finally:
        for ctx in processes:
            ctx.db.dispose()
    assert sum(rendered) == 30 and all(rendered) and missing == 0


@pytest.mark.city
def test_two_senders_send_each_sms_once(pg_url: str, tmp_path: Path, gateway: Gateway) -> None:
    processes = [process(pg_url, tmp_path / "shared") for _ in range(2)]
    try:
        issue_with_sms(processes[0], 40, gateway.url)
        notices_queue.render_due_notices(processes[0], 100)
        sent = race(
            *(lambda ctx=ctx: drain(lambda: notices_queue.send_due_deliveries(ctx, 5)) for ctx in processes)
        )
        with processes[0].db.session() as session:
            statuses = Counter(session.scalars(select(Delivery.status)))
    finally:
        for ctx in processes:
            notices_queue.close(ctx)
            ctx.db.dispose()
    assert sum(sent) == 80 and all(sent)  # 40 posted, 40 SMS, shared between the two
    assert statuses == {"sent": 80}
    per_key = Counter(r["key"] for r in gateway.requests)
    assert len(per_key) == 40 and set(per_key.values()) == {1}


def test_sms_gateway_receives_an_idempotency_key(ctx: Context, gateway: Gateway) -> None:
    issue_with_sms(ctx, 5, gateway.url)
    notices_queue.render_due_notices(ctx)
    try:
        notices_queue.send_due_deliveries(ctx)
    finally:
        notices_queue.close(ctx)
    with ctx.db.session() as session:
        sms = session.scalars(select(Delivery).where(Delivery.channel == "sms").order_by(Delivery.id)).all()
    keys = [delivery.delivery_key(d.id) for d in sms]
    assert [r["key"] for r in gateway.requests] == keys
    assert [r["body"]["idempotency_key"] for r in gateway.requests] == keys
    assert [d.receipt for d in sms] == ["sms-1", "sms-2", "sms-3", "sms-4", "sms-5"]
    assert len({r["peer"] for r in gateway.requests}) == 1  # one pooled connection, not one per message


class Crash(BaseException):
    """The process dies between the gateway's answer and the record of it."""


class SendsThenCrashes:
    def __init__(self, sms: delivery.Adapter) -> None:
        self.sms = sms

    def send(self, message: delivery.NoticeMessage) -> str:
        self.sms.send(message)
        raise Crash

    def close(self) -> None:
        self.sms.close()


def test_a_claim_left_by_a_crashed_sender_is_taken_again_with_the_same_key(
    ctx: Context, gateway: Gateway, tmp_path: Path
) -> None:
    issue_with_sms(ctx, 1, gateway.url)
    notices_queue.render_due_notices(ctx)
    crashing = SendsThenCrashes(delivery.SmsAdapter(gateway.url))
    with pytest.raises(Crash):
        notices_queue.send_due_deliveries(
            ctx, adapters={"post": delivery.FileAdapter(tmp_path / "post"), "sms": crashing}
        )
    crashing.close()
    try:
        # Still claimed by the dead sender: nobody takes it until the claim times out.
        assert notices_queue.send_due_deliveries(ctx) == {"sent": 0, "failed": 0, "gave_up": 0}
        later = utcnow() + timedelta(seconds=301)
        assert notices_queue.send_due_deliveries(ctx, now=later) == {"sent": 2, "failed": 0, "gave_up": 0}
    finally:
        notices_queue.close(ctx)
    with ctx.db.session() as session:
        sms = session.scalars(select(Delivery).where(Delivery.channel == "sms")).one()
    assert [r["key"] for r in gateway.requests] == [delivery.delivery_key(sms.id)] * 2
    assert len(gateway.receipts) == 1 and sms.receipt == "sms-1"  # the gateway sent one SMS
    assert sms.attempts == 2


class Relay:
    """An SMTP relay on a loopback port that keeps every message and can hang up on its clients."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.connections = 0
        self.open: list[socketserver.StreamRequestHandler] = []
        relay = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                relay.connections += 1
                relay.open.append(self)
                self.reply("220 relay.test ESMTP")
                while line := self.rfile.readline():
                    verb = line.decode().strip().split(" ")[0].upper()
                    if verb == "DATA":
                        self.reply("354 end with <CR><LF>.<CR><LF>")
                        body = b"".join(iter(self.rfile.readline, b".\r\n"))
                        relay.messages.append(body)
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 relay.test")

            def reply(self, text: str) -> None:
                self.wfile.write(f"{text}\r\n".encode())

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hang_up(self) -> None:
        for handler in self.open:
            with suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
        self.open.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_email_reuses_one_smtp_connection_and_makes_a_new_one_when_the_relay_hangs_up() -> None:
    relay = Relay()
    mail = delivery.EmailAdapter("127.0.0.1", relay.port, "echallan@traffic.sindh.gov.pk")

    def send(n: int) -> None:
        key = delivery.delivery_key(n)
        mail.send(
            delivery.NoticeMessage("email", "ali@example.pk", f"KHI-2025-{n:08d}", "Pay now", b"%PDF", key)
        )

    try:
        for n in (1, 2, 3):
            send(n)
        assert relay.connections == 1 and len(relay.messages) == 3
        relay.hang_up()
        send(4)
        assert relay.connections == 2 and len(relay.messages) == 4
    finally:
        mail.close()
        relay.close()
    assert b"Message-ID: <challan-delivery-4@traffic.sindh.gov.pk>" in relay.messages[3]
