"""One challan clock, printed alike everywhere: notice PDF, SMS, portal, staff API, at any hour of issue.

Deadlines are whole days in the display zone (Asia/Karachi): "half price until 19 Dec" holds until
midnight in Karachi, 19:00 UTC. Notices name the centre's public address, never a guessed localhost.
"""

from __future__ import annotations

import base64
import logging
import re
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from safecity.challans import delivery, notice, notices_queue, service
from safecity.challans.models import Challan, Vehicle
from safecity.core.context import Context
from safecity.core.errors import InvalidInput
from safecity.settings import Settings, load_settings
from tests.challans.test_challan_lifecycle import REGISTRY, approved_violation
from tests.conftest import auth_headers

PUBLIC = "https://echallan.example.gov.pk"
CNIC = "42101-1234567-1"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", public_base_url=PUBLIC + "/")


def issue_at(ctx: Context, issued: datetime, key: str = "v1") -> Challan:
    with ctx.db.session() as session:
        if not session.get(Vehicle, "ABC123"):
            service.import_registry(session, REGISTRY, actor="test")
        approved_violation(session, key, media=ctx.media)
        [number] = service.issue_pending(session, now=issued).numbers
        return service.get_challan(session, number)


def pdf_text(pdf: bytes) -> str:
    """Returns the text a reportlab PDF draws (its content streams: ASCII85, then zlib)."""
    lines = []
    for raw in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        raw = raw.strip()
        if raw.endswith(b"~>"):
            raw = base64.a85decode(raw[:-2])
        try:
            content = zlib.decompress(raw)
        except zlib.error:
            continue  # an image
        lines += [
            t.decode("latin-1").replace("\\(", "(").replace("\\)", ")")
            for t in re.findall(rb"\((.*?)\) Tj", content)
        ]
    return "\n".join(lines)


def notice_of(ctx: Context, number: str) -> str:
    with ctx.db.session() as session:
        ref = notice.render_notice(session, ctx.media, number, portal=notice.portal_address(ctx.settings))
    return pdf_text(ctx.media.get(ref))


# 00:30 and 04:30 on 6 Dec in Karachi are the same local day; 23:30 on 5 Dec is the day before.
@pytest.mark.parametrize(
    ("issued", "half_until", "due", "karachi_day"),
    [
        (datetime(2025, 12, 5, 19, 30, tzinfo=UTC), "19 Dec 2025", "26 Dec 2025", 19),
        (datetime(2025, 12, 5, 23, 30, tzinfo=UTC), "19 Dec 2025", "26 Dec 2025", 19),
        (datetime(2025, 12, 5, 18, 30, tzinfo=UTC), "18 Dec 2025", "25 Dec 2025", 18),
    ],
)
def test_the_notice_the_sms_the_portal_and_the_staff_api_name_the_same_days(
    ctx: Context, client: TestClient, issued: datetime, half_until: str, due: str, karachi_day: int
) -> None:
    challan = issue_at(ctx, issued)
    text = notice_of(ctx, challan.number)
    assert f"Rs 5,000 if paid by {half_until} (50% off)" in text
    assert f"Rs 10,000 if paid by {due} (due date)" in text
    assert f"Appeal by {due} at the portal" in text  # 21 days to appeal, as to pay
    assert not re.search(r"\bUTC\b", text)  # a time in UTC; a random code such as WWPMUTCV4A is not one
    # The offence (08:00 UTC on 1 Jun, the helper's) is printed in Karachi's time, saying so.
    assert "When 01 Jun 2025, 13:00:00 PKT" in text.replace("\n", " ")

    end_of_discount = datetime(2025, 12, karachi_day, 18, 59, 59, 999_999, tzinfo=UTC)  # midnight in Karachi
    found = client.post("/api/portal/lookup", json={"plate": "ABC123", "cnic": CNIC}).json()
    [seen] = found["challans"]
    assert datetime.fromisoformat(seen["discount_until"]) == end_of_discount
    assert datetime.fromisoformat(seen["due_at"]) == end_of_discount + timedelta(days=7)
    staff = client.get(f"/api/challans/{challan.number}", headers=auth_headers(ctx, "admin")).json()
    assert (staff["discount_until"], staff["due_at"]) == (seen["discount_until"], seen["due_at"])

    with ctx.db.session() as session:
        rules = service.get_rules(session)
        stored = service.get_challan(session, challan.number)
        # The day named is the whole day: the last microsecond still has the discount, midnight not.
        assert service.amount_due(stored, rules, end_of_discount) == 5_000
        assert service.amount_due(stored, rules, end_of_discount + timedelta(microseconds=1)) == 10_000
        # The portal shows the same dates whatever hour it is asked at, either side of Karachi's midnight.
        for hour in (19, 23):
            asked = datetime(2025, 12, 10, hour, 30, tzinfo=UTC)
            view = service.citizen_view(session, stored, rules, asked)
            assert view.discount_until == end_of_discount
        sms = delivery.notice_text(stored, rules, issued, portal=notice.portal_address(ctx.settings))
        late = delivery.notice_text(stored, rules, end_of_discount + timedelta(days=30), portal=PUBLIC)
    assert f"Pay Rs 5,000 by {half_until};" in sms and f"{PUBLIC}/portal (code" in sms
    assert "Pay Rs 20,000 now;" in late


def test_an_appeal_moves_every_deadline_by_the_whole_days_it_paused_the_clock(ctx: Context) -> None:
    challan = issue_at(ctx, datetime(2025, 12, 5, 19, 30, tzinfo=UTC))
    from safecity.challans.models import AppealIn, DecisionIn

    with ctx.db.session() as session:
        grounds = AppealIn(grounds="The car was sold before the offence; papers attached.")
        service.file_appeal(
            session, challan.number, grounds, actor="citizen", now=datetime(2025, 12, 8, 6, tzinfo=UTC)
        )
        dismissed = DecisionIn(decision="dismissed", reason="Transfer not registered", committee=["SSP"])
        # Paused 2 days and 3 hours: the citizen gets 3 whole days more, never less than the pause.
        service.decide_appeal(
            session, challan.number, dismissed, actor="ssp", now=datetime(2025, 12, 10, 9, tzinfo=UTC)
        )
        stored = service.get_challan(session, challan.number)
        rules = service.get_rules(session)
        dates = service.clock_dates(stored, rules, datetime(2025, 12, 12, tzinfo=UTC))
    assert dates["discount_until"] == datetime(2025, 12, 22, 18, 59, 59, 999_999, tzinfo=UTC)
    assert "if paid by 22 Dec 2025 (50% off)" in notice_of(ctx, challan.number)


def test_notices_print_the_public_address_and_a_city_without_one_renders_nothing(ctx: Context) -> None:
    challan = issue_at(ctx, datetime(2025, 12, 5, 19, 30, tzinfo=UTC))
    text = notice_of(ctx, challan.number)
    assert f"appeal at {PUBLIC}/portal" in text and "localhost" not in text

    ctx.settings = ctx.settings.model_copy(update={"bus": "nats", "public_base_url": None})
    with pytest.raises(InvalidInput, match="public_base_url is not set") as refused:
        notices_queue.render_due_notices(ctx)
    assert "SAFECITY_PUBLIC_BASE_URL" in str(refused.value.hint)
    with pytest.raises(InvalidInput, match="public_base_url is not set"):
        notices_queue.send_due_deliveries(ctx)
    with ctx.db.session() as session:
        fresh = session.scalars(select(Challan).where(Challan.id == challan.id)).one()
        assert fresh.notice_claimed_by is None  # refused before claiming anything


def test_embedded_without_a_public_address_prints_its_own_and_says_so_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path / "data", port=8123)
    with caplog.at_level(logging.WARNING, logger="safecity.challans.notice"):
        assert notice.check_portal_address(settings) == "http://127.0.0.1:8123/portal"
    assert "public_base_url is not set" in caplog.text and "SAFECITY_PUBLIC_BASE_URL" in caplog.text


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("display_timezone", "Asia/Karach", "unknown time zone 'Asia/Karach'"),
        ("display_timezone", "PKT+5", "unknown time zone"),
        ("public_base_url", "echallan.example.gov.pk", "not an absolute http(s) address"),
        ("public_base_url", "ftp://echallan.example.gov.pk", "not an absolute http(s) address"),
        ("public_base_url", "https://", "not an absolute http(s) address"),
        ("public_base_url", "https://echallan.example.gov.pk:99999", "not an absolute http(s) address"),
        ("public_base_url", "https://echallan.example.gov.pk/?x=1", "not an absolute http(s) address"),
    ],
)
def test_a_bad_zone_or_address_stops_start_up_naming_the_setting(
    name: str, value: str, complaint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"SAFECITY_{name.upper()}", value)
    with pytest.raises(InvalidInput, match=re.escape(complaint)) as refused:
        load_settings()
    assert f"{name} (SAFECITY_{name.upper()})" in str(refused.value)

    from safecity.cli import app

    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 1 and complaint in result.output.replace("\n", "")


def test_a_good_address_loses_its_trailing_slash_and_the_zone_its_spaces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAFECITY_PUBLIC_BASE_URL", "https://echallan.example.gov.pk/khi/")
    monkeypatch.setenv("SAFECITY_DISPLAY_TIMEZONE", " Asia/Dubai ")
    settings: Any = load_settings()
    assert (settings.public_base_url, settings.display_timezone) == (
        "https://echallan.example.gov.pk/khi",
        "Asia/Dubai",
    )
