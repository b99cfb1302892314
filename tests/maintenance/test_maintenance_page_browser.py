"""The /maintenance page in headless Chromium: states, evidence, the history chart, a ticket's whole life."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from safecity.accounts.models import Role
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.maintenance import service
from tests.browser import LiveServer, sign_in
from tests.conftest import make_user
from tests.maintenance.maintenance_support import add_camera, health

pytestmark = pytest.mark.browser


def wait_for(check: Callable[[], bool], what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def open_faults(ctx: Context) -> int:
    with ctx.db.session() as session:
        return len(service.list_faults(session, open_only=True))


def test_a_supervisor_sees_a_covered_camera_with_its_evidence_and_works_its_ticket_to_the_end(
    ctx: Context, live_server: LiveServer, page: Any
) -> None:
    served, tab = live_server.url, page
    add_camera(ctx, "cam-saddar", name="Saddar Empress Market", district="South")
    add_camera(ctx, "cam-gulshan", name="Gulshan Chowrangi", district="East")
    picture = np.full((90, 160, 3), 40, np.uint8)
    frame_ref = ctx.media.put_image(picture)
    now = utcnow()
    for event in (
        health("cam-saddar", "online", now - timedelta(days=2)),
        health("cam-gulshan", "online", now - timedelta(days=3)),
        health("cam-saddar", "offline", now - timedelta(days=1, hours=2), detail="no picture for 6 s"),
        health("cam-saddar", "online", now - timedelta(days=1)),
        health(
            "cam-saddar", "covered", now - timedelta(minutes=30), detail="lens covered", frame_ref=frame_ref
        ),
    ):
        ctx.bus.publish_threadsafe(event)
    wait_for(lambda: open_faults(ctx) == 1, "the covered fault")
    supervisor = make_user(ctx, Role.supervisor, "sup.khan")
    make_user(ctx, Role.operator, "tech.ali")

    sign_in(tab, served, supervisor)
    tab.goto(served + "/maintenance")
    row = tab.locator('#mnt-camera-table tr[data-camera="cam-saddar"]')
    row.locator(".health.covered").wait_for()
    assert "lens covered" in row.inner_text()
    assert tab.locator('#mnt-camera-table tr[data-camera="cam-gulshan"] .health.online').count() == 1

    tab.check("#mnt-faulty-only")
    tab.wait_for_function("() => document.querySelectorAll('#mnt-camera-table tbody tr').length === 1")
    assert tab.locator("#mnt-camera-table tbody tr").get_attribute("data-camera") == "cam-saddar"

    evidence = tab.locator(".mnt-fault img")
    evidence.wait_for()
    tab.wait_for_function("() => document.querySelector('.mnt-fault img').naturalWidth === 160")

    tab.locator(".mnt-fault button", has_text="History").click()
    tab.locator("#mnt-chart rect.span.offline").first.wait_for()
    assert tab.locator("#mnt-chart rect.span.covered").count() >= 1
    assert tab.locator("#mnt-chart rect.mnt-bar").count() >= 3

    tab.locator(".mnt-fault button", has_text="Open ticket").click()
    tab.fill("#mnt-new-ticket input[name=description]", "clear the lens at Saddar")
    tab.click("#mnt-new-ticket button[type=submit]")
    card = tab.locator(".mnt-ticket.open")
    card.wait_for()
    assert "clear the lens at Saddar" in card.inner_text()

    card.locator("select[name=assignee]").select_option("tech.ali")
    card.locator("button.assign").click()
    assigned = tab.locator(".mnt-ticket.assigned")
    assigned.wait_for()
    assert "tech.ali" in assigned.inner_text()

    assigned.locator("button.close").click()  # no note yet: refused, in plain words
    tab.wait_for_function("() => document.querySelector('#mnt-ticket-status').textContent.includes('note')")
    tab.locator(".mnt-ticket.assigned input[name=note]").fill("cloth removed from the lens")
    tab.locator(".mnt-ticket.assigned button.close").click()
    tab.wait_for_function(
        "() => document.querySelector('#mnt-ticket-status').textContent === 'Ticket closed.'"
    )

    with ctx.db.session() as session:
        [ticket] = service.list_tickets(session)
        assert (ticket.status, ticket.assignee, ticket.close_note) == (
            "closed",
            "tech.ali",
            "cloth removed from the lens",
        )
        assert ticket.fault_id is not None
