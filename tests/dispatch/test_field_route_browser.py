"""The officer's phone in headless Chromium with the operator's road file: the route is drawn along the
streets, solid, and the note says so."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from safecity.settings import Settings
from tests.browser import LiveServer
from tests.conftest import PASSWORD, auth_headers, make_user
from tests.dispatch.test_field_route import CORNER, LYARI, SADDAR
from tests.maps.road_files import street, write_roads

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    roads = write_roads(tmp_path / "karachi-roads.geojson", street(LYARI, CORNER), street(CORNER, SADDAR))
    return Settings(data_dir=tmp_path / "data", road_graph=roads)


def test_the_officers_map_draws_the_route_along_the_streets(
    live_server: LiveServer, chromium: Any, alert_id: str
) -> None:
    ctx, url = live_server.ctx, live_server.url
    make_user(ctx, "patrol_officer", "pc.rana")
    phone = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    tab = phone.new_page()
    tab.set_default_timeout(60_000)
    try:
        tab.goto(url + "/login")
        tab.fill("#username", "pc.rana")
        tab.fill("#password", PASSWORD)
        tab.click("#sign-in")
        tab.wait_for_url(re.compile(r".*/$"))
        tab.goto(url + "/field")
        tab.select_option("#unit-select", "PU-2")
        tab.click("#start-shift")
        tab.wait_for_selector("#on-shift:not([hidden])")
        sent = httpx.post(
            url + "/api/dispatch",
            json={"unit_id": "PU-2", "alert_id": alert_id},
            headers=auth_headers(ctx, "operator"),
        )
        assert sent.status_code == 201, sent.text
        tab.wait_for_selector("#incident-map path.field-route:not(.field-straight)")
        assert tab.locator("#incident-map path.field-straight").count() == 0
        assert "Along the streets" in tab.inner_text("#map-note")
        assert "km by road" in tab.inner_text("#route")
        # The line bends at the corner: its path has more than the two ends of a straight line.
        drawn = tab.get_attribute("#incident-map path.field-route", "d") or ""
        assert drawn.count("L") >= 2, drawn
    finally:
        phone.close()
