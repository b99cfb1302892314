"""A challan's life: registry, issue, fine clock, payment exactly once, appeals, flags, notice, outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from safecity.challans import delivery, notice, notices_queue, service
from safecity.challans.consumer import handle_approved
from safecity.challans.models import AppealIn, Challan, DecisionIn, Payment, Vehicle
from safecity.challans.payments import service as payments
from safecity.core.context import Context
from safecity.core.db import Database
from safecity.core.errors import Conflict, InvalidInput, NotFound
from safecity.core.media import MediaStore
from safecity.enforcement import service as enforcement
from safecity.enforcement.models import Violation
from tests.enforcement.court import prepare, ready_candidate

ISSUED = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
REGISTRY = (
    "plate,owner,cnic,address,make,colour,phone,email\n"
    "ABC123,Ali Khan,42101-1234567-1,House 1 Clifton,Toyota Corolla,white,03001234567,ali@example.pk\n"
    "KHB777,Sara Ahmed,4220176543212,Flat 4 Gulshan Karachi,Honda CD70,red,,\n"
)


def approved_violation(
    session: Session, key: str, *, media: MediaStore, plate: str = "ABC123", offence: str = "speeding"
) -> str:
    at = ISSUED - timedelta(hours=1)
    calibration = prepare(session, media, f"cam-{key}", at=at, junction=f"J-{key}")
    violation, _ = enforcement.record_candidate(
        session,
        ready_candidate(
            media,
            key,
            camera_id=f"cam-{key}",
            at=at,
            offence=offence,
            plate=plate,
            calibration_id=calibration,
            detail={"junction": f"J-{key}"} if offence == "red_light" else {},
        ),
        media=media,
    )
    violation.status = "approved"
    session.flush()
    return violation.id


def issue_one(ctx: Context, key: str = "v1", plate: str = "ABC123") -> Challan:
    with ctx.db.session() as session:
        if not session.get(Vehicle, "ABC123"):
            assert not service.import_registry(session, REGISTRY, actor="test").errors
        approved_violation(session, key, plate=plate, media=ctx.media)
        report = service.issue_pending(session, now=ISSUED)
        assert report.issued == 1
        return service.get_challan(session, report.numbers[0])


def test_a_registry_csv_with_broken_rows_is_reported_by_line_and_nothing_is_imported(ctx: Context) -> None:
    broken = REGISTRY + "BAD 1,No Cnic,12345,Somewhere,Suzuki,blue,,\nABC123,Twice,42101-1234567-1,x,y,z,,\n"
    with ctx.db.session() as session:
        report = service.import_registry(session, broken, actor="test")
        assert report.created == 0
        assert report.errors[0].startswith("line 4: cnic")
        assert report.errors[1] == "line 5: plate ABC123 repeats line 2"
        assert session.scalar(select(func.count()).select_from(Vehicle)) == 0
        with pytest.raises(InvalidInput, match="lacks the column"):
            service.import_registry(session, "plate,owner\nA1,B\n", actor="test")
        assert service.import_registry(session, REGISTRY, actor="test").created == 2
        assert service.import_registry(session, REGISTRY, actor="test").updated == 2


def test_issue_takes_the_owner_from_the_registry_and_the_fine_from_the_schedule(ctx: Context) -> None:
    challan = issue_one(ctx)
    assert challan.number == "KHI-2025-00000001"
    assert (challan.owner, challan.cnic, challan.fine, challan.points) == (
        "Ali Khan",
        "4210112345671",
        10_000,
        6,
    )
    assert challan.evidence["measured"] == 92.0 and challan.evidence["clock_source"]
    with ctx.db.session() as session:
        channels = {d for (d,) in session.execute(select(service.Delivery.channel))}
        assert channels == {"post", "sms", "email"}


def test_a_plate_not_in_the_registry_is_held_with_the_reason_until_the_registry_has_it(ctx: Context) -> None:
    with ctx.db.session() as session:
        vid = approved_violation(session, "unknown", plate="ZZZ999", media=ctx.media)
        report = service.issue_pending(session, now=ISSUED)
        assert (
            report.issued == 0 and report.held_reasons[vid] == "plate ZZZ999 is not in the vehicle registry"
        )
        assert enforcement.get_violation(session, vid).status == "unissuable"
        service.import_registry(
            session, REGISTRY + "ZZZ999,Late Owner,4210199999999,Malir,Suzuki,grey,,\n", actor="t"
        )
        assert service.issue_pending(session, now=ISSUED).issued == 1


def test_the_fine_is_halved_for_14_days_due_in_21_and_doubled_from_day_22(ctx: Context) -> None:
    challan = issue_one(ctx)
    with ctx.db.session() as session:
        rules = service.get_rules(session)
    due = [
        service.amount_due(challan, rules, ISSUED + timedelta(days=d, hours=1))
        for d in (0, 13, 14, 20, 21, 60)
    ]
    assert due == [5_000, 5_000, 10_000, 10_000, 20_000, 20_000]


def test_redelivered_approval_issues_one_challan(ctx: Context) -> None:
    from safecity.enforcement.models import ViolationApproved

    with ctx.db.session() as session:
        service.import_registry(session, REGISTRY, actor="test")
        vid = approved_violation(session, "v-event", media=ctx.media)
    event = ViolationApproved(
        key=f"violation_approved:{vid}", violation_id=vid, offence="speeding", plate="ABC123"
    )
    handle_approved(ctx, event)
    handle_approved(ctx, event.model_copy())
    handle_approved(ctx, event.model_copy(update={"key": "another-key-same-violation"}))
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Challan)) == 1
        (challan,) = session.scalars(select(Challan))
        assert challan.notice_ref is None  # rendering and sending are the work queue's, off the intake path
        assert session.get(Violation, vid).status == "issued"  # type: ignore[union-attr]
    assert ctx.counters["challans"] == 1
    assert notices_queue.render_due_notices(ctx) == 1
    assert notices_queue.send_due_deliveries(ctx) == {"sent": 3, "failed": 0, "gave_up": 0}
    assert notices_queue.render_due_notices(ctx) == 0
    assert notices_queue.send_due_deliveries(ctx) == {"sent": 0, "failed": 0, "gave_up": 0}
    sent = sorted(p.name for p in (ctx.settings.data_dir / "outbox").rglob("*.pdf"))
    assert sent == [f"{challan.number}-email.pdf", f"{challan.number}-post.pdf", f"{challan.number}-sms.pdf"]


def pay(session: Session, number: str, ref: str, amount: int, days: float = 1) -> object:
    """Records a payment as a verified 1Bill callback would (the gateway's transaction id `ref`)."""
    return payments.record(
        session,
        number,
        channel="1bill",
        reference=f"1bill:{ref}",
        amount=amount,
        paid_at=ISSUED + timedelta(days=days),
        actor="gateway:1bill",
    )


def test_a_payment_is_recorded_exactly_once_by_transaction_id(ctx: Context) -> None:
    challan = issue_one(ctx)
    with ctx.db.session() as session:
        with pytest.raises(NotFound):
            pay(session, "KHI-2025-99999999", "HBL-1", 5_000)
        with pytest.raises(InvalidInput, match="does not match the Rs 20000 due"):
            pay(session, challan.number, "HBL-0", 10_000, days=30)
        first = pay(session, challan.number, "HBL-1", 5_000)
        again = pay(session, challan.number, "HBL-1", 5_000)
        assert not first.duplicate and again.duplicate  # type: ignore[attr-defined]
        with pytest.raises(Conflict, match="already paid"):
            pay(session, challan.number, "HBL-2", 5_000)
        with pytest.raises(Conflict, match="already recorded"):
            pay(session, "KHI-2025-00000002", "HBL-1", 9_000)
        assert session.scalar(select(func.count()).select_from(Payment)) == 1
        assert service.get_challan(session, challan.number).status == "paid"


def test_an_appeal_pauses_the_clock_and_the_committee_decision_is_on_record(ctx: Context) -> None:
    challan = issue_one(ctx)
    grounds = AppealIn(grounds="The car was sold a month before; transfer papers attached.")
    with ctx.db.session() as session:
        service.file_appeal(
            session, challan.number, grounds, actor="citizen", now=ISSUED + timedelta(days=10)
        )
        with pytest.raises(Conflict, match="under appeal"):
            pay(session, challan.number, "HBL-9", 10_000, days=11)
        decision = DecisionIn(
            decision="dismissed", reason="Transfer not registered with excise", committee=["SSP", "DSP"]
        )
        appeal = service.decide_appeal(
            session, challan.number, decision, actor="ssp", now=ISSUED + timedelta(days=40)
        )
        assert appeal.status == "dismissed" and appeal.committee == ["SSP", "DSP"] and appeal.reason
        paused = service.get_challan(session, challan.number)
        rules = service.get_rules(session)
        # 41 days after issue, minus 30 paused: day 12, still inside the discount.
        assert service.amount_due(paused, rules, ISSUED + timedelta(days=41)) == 5_000
        with pytest.raises(Conflict, match="already decided"):
            service.decide_appeal(session, challan.number, decision, actor="ssp")


def test_an_upheld_appeal_cancels_the_challan_and_an_appeal_after_the_deadline_is_refused(
    ctx: Context,
) -> None:
    first = issue_one(ctx, "v1")
    second = issue_one(ctx, "v2", plate="KHB777")
    grounds = AppealIn(grounds="My vehicle was parked at home; the plate was cloned.")
    upheld = DecisionIn(decision="upheld", reason="Cloned plate confirmed by ANPR history", committee=["SSP"])
    with ctx.db.session() as session:
        service.file_appeal(session, first.number, grounds, actor="citizen", now=ISSUED + timedelta(days=3))
        service.decide_appeal(session, first.number, upheld, actor="ssp", now=ISSUED + timedelta(days=9))
        assert service.get_challan(session, first.number).status == "cancelled"
        with pytest.raises(Conflict, match=r"appeal period .* ended"):
            service.file_appeal(
                session, second.number, grounds, actor="citizen", now=ISSUED + timedelta(days=22)
            )


def test_licence_is_flagged_after_three_months_unpaid_and_cnic_after_six(ctx: Context) -> None:
    challan = issue_one(ctx)
    with ctx.db.session() as session:
        assert service.sweep_flags(session, now=ISSUED + timedelta(days=89)) == {"licence": 0, "cnic": 0}
        assert service.sweep_flags(session, now=ISSUED + timedelta(days=91)) == {"licence": 1, "cnic": 0}
        assert service.sweep_flags(session, now=ISSUED + timedelta(days=120)) == {"licence": 0, "cnic": 0}
        assert service.sweep_flags(session, now=ISSUED + timedelta(days=181)) == {"licence": 0, "cnic": 1}
        kinds = sorted(f.kind for f in service.list_flags(session, cnic=challan.cnic))
        assert kinds == ["cnic_block", "licence_suspension"]
        pay(session, challan.number, "HBL-LATE", 20_000, days=182)
        assert service.list_flags(session, cnic=challan.cnic) == []


def test_thirty_demerit_points_in_a_year_flag_the_licence(ctx: Context) -> None:
    with ctx.db.session() as session:
        service.import_registry(session, REGISTRY, actor="test")
        for n in range(5):
            approved_violation(session, f"rl-{n}", offence="red_light", media=ctx.media)  # 6 points each
        service.issue_pending(session, now=ISSUED)
        assert service.points_for(session, "42101-1234567-1", now=ISSUED) == 30
        (flag,) = service.list_flags(session, cnic="4210112345671")
        assert flag.kind == "licence_suspension" and "30 demerit points" in flag.cause


def test_the_notice_is_a_pdf_with_the_evidence_photo_and_the_verification_code(ctx: Context) -> None:
    photo = ctx.media.put_image(np.full((240, 320, 3), 120, np.uint8))
    with ctx.db.session() as session:
        service.import_registry(session, REGISTRY, actor="test")
        vid = approved_violation(session, "photo", media=ctx.media)
        violation = session.get(Violation, vid)
        assert violation is not None
        # This photo is the evidence now, checked against the store as the gate asks.
        pictures = {"frames_before": [], "frames_after": [photo], "refs": [photo]}
        violation.evidence = {**violation.evidence, **pictures, "images": {"verified": {photo: True}}}
        number = service.issue_pending(session, now=ISSUED).numbers[0]
        ref = notice.render_notice(session, ctx.media, number, portal=notice.portal_address(ctx.settings))
        challan = service.get_challan(session, number)
        assert service.verify_code(session, challan.verification_code.lower())["number"] == number
        with pytest.raises(NotFound, match="forged"):
            service.verify_code(session, "NOTACODE12")
    pdf = ctx.media.get(ref)
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Subtype /Image") >= 2  # the photo and the QR code


class Refusing:
    def send(self, message: delivery.NoticeMessage) -> str:
        raise ConnectionError("SMSC refused the connection")

    def close(self) -> None:
        pass


def test_the_outbox_retries_a_failing_channel_and_gives_up_after_the_limit(
    ctx: Context, tmp_path: Path
) -> None:
    issue_one(ctx)
    adapters: dict[str, delivery.Adapter] = {
        "post": delivery.FileAdapter(tmp_path / "post"),
        "sms": Refusing(),
        "email": Refusing(),
    }
    # The text message goes at once; post and e-mail wait for their notice PDF.
    assert notices_queue.send_due_deliveries(ctx, adapters=adapters) == {"sent": 0, "failed": 1, "gave_up": 0}
    notices_queue.render_due_notices(ctx)
    assert notices_queue.send_due_deliveries(ctx, adapters=adapters) == {"sent": 1, "failed": 2, "gave_up": 0}
    for _ in range(3):  # the SMS reaches its fifth and last try in the third round
        notices_queue.send_due_deliveries(ctx, adapters=adapters)
    assert notices_queue.send_due_deliveries(ctx, adapters=adapters) == {"sent": 0, "failed": 0, "gave_up": 1}
    assert notices_queue.send_due_deliveries(ctx, adapters=adapters) == {"sent": 0, "failed": 0, "gave_up": 0}
    with ctx.db.session() as session:
        errors = {
            d.last_error
            for d in session.scalars(select(service.Delivery).where(service.Delivery.channel == "sms"))
        }
        assert errors == {"ConnectionError: SMSC refused the connection"}
    assert len(list((tmp_path / "post").glob("*.pdf"))) == 1


def test_issue_and_payment_exactly_once_on_each_database(any_db_url: str, tmp_path: Path) -> None:
    db = Database(any_db_url)
    db.migrate()
    try:
        with db.session() as session:
            service.import_registry(session, REGISTRY, actor="test")
            vid = approved_violation(session, "pg-1", media=MediaStore(tmp_path / "media"))
            number = service.issue_for_violations(session, [vid], now=ISSUED).numbers[0]
            assert service.issue_for_violations(session, [vid], now=ISSUED).issued == 0
            pay(session, number, "MCB-77", 5_000)
            assert pay(session, number, "MCB-77", 5_000).duplicate  # type: ignore[attr-defined]
            assert session.scalar(select(func.count()).select_from(Challan)) == 1
            assert [
                c.number for c in service.find_for_citizen(session, plate="ABC123", cnic="4210112345671")
            ] == [number]
    finally:
        db.dispose()


def test_daily_figures_count_challans_issued_and_paid_per_day(ctx: Context) -> None:
    challan = issue_one(ctx)
    with ctx.db.session() as session:
        pay(session, challan.number, "HBL-9", 5_000, days=2)
        days = service.daily_counts(session, days=5, now=ISSUED + timedelta(days=3))
    assert [d["day"] for d in days][-4:] == [
        (ISSUED + timedelta(days=n)).date().isoformat() for n in range(4)
    ]
    assert days[-4]["issued"] == 1 and sum(d["issued"] for d in days) == 1
    assert days[-2]["paid"] == 1 and sum(d["paid"] for d in days) == 1


def test_the_notice_worker_process_sends_what_the_centre_issued_and_stops_cleanly(
    ctx: Context, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    challan = issue_one(ctx)
    env = {**os.environ, "SAFECITY_DATA_DIR": str(ctx.settings.data_dir)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "safecity.cli", "challans", "notice-worker", "--every", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    outbox = ctx.settings.data_dir / "outbox"
    try:
        # Generous: on a loaded machine the process may take long to start (the loop ends once sent).
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and len(list(outbox.rglob(f"{challan.number}-*.json"))) < 3:
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, output
    assert sorted(p.parent.name for p in outbox.rglob(f"{challan.number}-*.json")) == ["email", "post", "sms"]
    assert "1 notices rendered, 3 deliveries sent" in output
