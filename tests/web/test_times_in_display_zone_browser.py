"""Every page shows times in the display zone (Asia/Karachi), never raw UTC ISO strings or the browser's.

The browser here runs in New York time: a page that formats with the browser's own zone, or prints an
API timestamp as it came, shows up as a date or zone this test refuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from safecity.accounts.models import Role
from safecity.challans import service as challans
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.maintenance import service as maintenance
from safecity.maintenance.models import TicketIn
from safecity.settings import Settings
from tests.browser import CHROMIUM_ARGS, LiveServer, sign_in  # noqa: F401
from tests.challans.test_challan_lifecycle import REGISTRY, approved_violation
from tests.conftest import make_user
from tests.maintenance.maintenance_support import add_camera

pytestmark = pytest.mark.browser

PAGES = [
    "/",
    "/dispatch",
    "/wall",
    "/dashboard",
    "/plates",
    "/watchlists",
    "/violations",
    "/challans",
    "/recordings",
    "/cameras",
    "/maintenance",
    "/audit",
    "/users",
    "/account",
    "/portal",
]
# What leaks when a page skips lib.js when(): API timestamps as sent, or the browser's own zone and format.
RAW_UTC = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
BROWSER_ZONE = re.compile(r"\bGMT-[45]\b|\bE[SD]T\b|\d{1,2}/\d{1,2}/\d{4}|\b[AP]M\b")
# 5 Dec 19:30 UTC is 6 Dec 00:30 in Karachi (still 5 Dec in New York): the discount ends with 19 Dec.
ISSUED = datetime(2025, 12, 5, 19, 30, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", public_base_url="https://echallan.example.gov.pk")


@pytest.fixture
def new_york_tab(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1440, "height": 900}, timezone_id="America/New_York")
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.set_default_timeout(15_000)
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"script errors on the page: {errors}"


def seed(ctx: Context) -> str:
    """A challan, a camera with a fault and its ticket, and the audit rows they leave."""
    with ctx.db.session() as session:
        challans.import_registry(session, REGISTRY, actor="test")
        approved_violation(session, "v1", media=ctx.media)
        [number] = challans.issue_pending(session, now=ISSUED).numbers
    add_camera(ctx, "cam-1", name="Saddar Empress Market")
    with ctx.db.session() as session:
        outcome = maintenance.record_health(
            session,
            camera_id="cam-1",
            state="covered",
            detail="lens covered",
            since=utcnow() - timedelta(hours=3),
            event_key="k1",
        )
        assert outcome.opened is not None
        maintenance.open_ticket(
            session, TicketIn(fault_id=outcome.opened.id, description="clear the lens"), actor="t"
        )
    return number


def shown_text(tab: Any) -> str:
    """Returns what a person reads on the page: its text, less raw records shown as stored ([data-raw])."""
    return str(
        tab.evaluate(
            """() => { let text = document.body.innerText;
                 for (const raw of document.querySelectorAll('[data-raw]')) {
                   text = text.split(raw.innerText).join(' ');
                 }
                 return text; }"""
        )
    )


def test_no_page_shows_raw_utc_or_the_browsers_zone(
    ctx: Context, live_server: LiveServer, new_york_tab: Any
) -> None:
    number = seed(ctx)
    admin = make_user(ctx, Role.admin, "admin.khan")
    tab = new_york_tab
    sign_in(tab, live_server.url, admin)
    for path in PAGES:
        tab.goto(live_server.url + path)
        tab.wait_for_load_state("networkidle")
        text = shown_text(tab)
        assert not RAW_UTC.findall(text), f"{path} shows raw timestamps: {RAW_UTC.findall(text)}"
        assert not BROWSER_ZONE.findall(text), (
            f"{path} shows the browser's zone: {BROWSER_ZONE.findall(text)}"
        )
        assert tab.locator('meta[name="display-timezone"]').get_attribute("content") == "Asia/Karachi"

    tab.goto(live_server.url + "/challans")
    tab.locator("#chl-rows tr", has_text=number).click()
    detail = tab.locator(".chl-detail")
    detail.wait_for()
    assert "Half price until19 Dec 2025" in detail.inner_text().replace("\n", "").replace("\t", "")
    assert "01 Jun 2025, 13:00:00 GMT+5" in detail.inner_text()

    tab.goto(live_server.url + "/maintenance")
    ticket = tab.locator(".mnt-fault a.mnt-open-ticket")
    ticket.wait_for()
    assert ticket.inner_text().startswith("Ticket open: ")


def test_the_portal_prints_the_days_the_notice_prints(
    ctx: Context, live_server: LiveServer, new_york_tab: Any
) -> None:
    seed(ctx)
    tab = new_york_tab
    tab.goto(live_server.url + "/portal")
    tab.fill("#portal-lookup input[name=plate]", "ABC123")
    tab.fill("#portal-lookup input[name=cnic]", "42101-1234567-1")
    tab.click("#portal-lookup button[type=submit]")
    card = tab.locator(".portal-challan")
    card.wait_for()
    facts = dict(zip(card.locator("dt").all_inner_texts(), card.locator("dd").all_inner_texts(), strict=True))
    assert (facts["Half price until"], facts["Due by"], facts["Appeal by"]) == (
        "19 Dec 2025",
        "26 Dec 2025",
        "26 Dec 2025",
    )
    assert facts["When"] == "01 Jun 2025, 13:00:00 GMT+5"


def test_a_watch_list_request_reads_its_times_in_the_display_zone(
    ctx: Context, live_server: LiveServer, new_york_tab: Any
) -> None:
    admin = make_user(ctx, Role.admin, "admin.khan")
    tab = new_york_tab
    sign_in(tab, live_server.url, admin)
    tab.goto(live_server.url + "/watchlists")
    form = tab.locator("#entry-form")
    assert "Expires (Asia/Karachi)" in form.inner_text()
    form.locator("input[name=name]").fill("Test Person")
    form.locator("select[name=category]").select_option("event")
    form.locator("input[name=legal_basis]").fill("FIR 1/2026 PS Saddar")
    # Midnight on 1 Jan in Karachi is 19:00 UTC on 31 Dec (and 14:00 on 31 Dec in this New York browser).
    form.locator("input[name=expires_at]").fill("2027-01-01T00:00")
    form.locator("input[name=event_start]").fill("2026-12-31T18:30")
    form.locator("input[name=photos]").set_input_files(
        {"name": "face.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8\xff not really a face"}
    )
    # Keep the form fields the page sends (a multipart body's text is not visible from outside).
    tab.evaluate(
        """() => { const send = window.fetch; window.sentFields = [];
             window.fetch = (url, options) => {
               if (options && options.body instanceof FormData) {
                 window.sentFields.push(Object.fromEntries(
                   [...options.body.entries()].filter(([, value]) => typeof value === "string")));
               }
               return send(url, options);
             }; }"""
    )
    form.locator("button[type=submit]").click()
    tab.wait_for_function("() => window.sentFields.length > 0")
    [fields] = tab.evaluate("() => window.sentFields")
    assert fields["expires_at"] == "2026-12-31T19:00:00.000Z"
    assert fields["event_start"] == "2026-12-31T13:30:00.000Z"
