"""The /plates page in headless Chromium: search a plate onto a map and a timeline, keep the hot list."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from safecity.anpr.models import PlateReadRow
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.ids import new_id
from tests.browser import LiveServer, sign_in
from tests.conftest import make_user

pytestmark = pytest.mark.browser


def seed(ctx: Context) -> None:
    now = utcnow()
    with ctx.db.session() as session:
        for camera_id, name, lat, lon in (
            ("cam-clifton", "Clifton Teen Talwar", 24.8138, 67.0300),
            ("cam-saddar", "Saddar Empress Market", 24.8607, 67.0299),
        ):
            data = CameraIn.model_validate(
                {
                    "id": camera_id,
                    "name": name,
                    "kind": "anpr",
                    "district": "South",
                    "latitude": lat,
                    "longitude": lon,
                }
            )
            cameras.create(session, data, actor="test")
        for minutes, camera_id, lat, lon in (
            (30, "cam-clifton", 24.8138, 67.03),
            (5, "cam-saddar", 24.8607, 67.0299),
        ):
            session.add(
                PlateReadRow(
                    id=new_id(),
                    event_key=f"seed:{minutes}",
                    plate="LEA4521",
                    confidence=0.93,
                    camera_id=camera_id,
                    latitude=lat,
                    longitude=lon,
                    at=now - timedelta(minutes=minutes),
                )
            )


def test_a_supervisor_searches_a_plate_and_lists_a_vehicle_from_the_page(
    ctx: Context, live_server: LiveServer, page: Any
) -> None:
    served, tab = live_server.url, page
    seed(ctx)
    make_user(ctx, "supervisor", username="sup.ali")
    sign_in(tab, served, "sup.ali")
    tab.goto(served + "/plates")
    tab.fill("#plate-search input[name=plate]", "LEA-4521")
    tab.fill("#plate-search input[name=reason]", "case 17/24")
    tab.click("#plate-search button[type=submit]")
    tab.wait_for_selector("#anpr-reads tbody tr")
    assert tab.locator("#anpr-reads tbody tr").count() == 2
    assert tab.locator("#anpr-map path.anpr-camera").count() == 2
    assert tab.locator("#anpr-map path.route").count() == 1
    assert tab.locator("#anpr-map .anpr-label", has_text="Saddar Empress Market").count() == 1
    assert tab.locator("#anpr-timeline circle").count() == 2
    assert "2 read(s) at 2 camera(s)" in tab.inner_text("#search-status")

    tab.fill("#hotlist-add input[name=plate]", "bkr 8090")
    tab.select_option("#hotlist-add select[name=list_name]", "wanted")
    tab.fill("#hotlist-add input[name=reason]", "robbery suspect, FIR 88/24")
    tab.click("#hotlist-add button[type=submit]")
    tab.wait_for_selector("#hotlist tbody tr:has-text('BKR8090')")
    assert "wanted" in tab.inner_text("#hotlist tbody tr:has-text('BKR8090')")
    assert "sup.ali" in tab.inner_text("#hotlist tbody tr:has-text('BKR8090')")
    tab.screenshot(path="/tmp/anpr_plates.png", full_page=True)  # for a person to look at after a run
