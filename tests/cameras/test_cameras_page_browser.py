"""In headless Chromium: a camera's configuration edited through the form its schema builds, errors beside
the field, each save a version in the history; a reader sees the form but cannot change it."""

from __future__ import annotations

from typing import Any

import pytest

from safecity.accounts.models import Role
from safecity.cameras import service
from safecity.cameras.models import CameraIn
from safecity.core.context import Context
from tests.browser import LiveServer, sign_in
from tests.conftest import make_user

pytestmark = pytest.mark.browser

CAM = {
    "id": "khi-s-anpr-01",
    "name": "Saddar, Empress Market",
    "kind": "anpr",
    "district": "South",
    "latitude": 24.8607,
    "longitude": 67.0292,
    "stream_url": "rtsp://10.0.0.5/stream1",
    "analysis": {"speed_limit_kmh": 60},
    "zones": [{"name": "road", "polygon": [[0, 200], [640, 200], [640, 360], [0, 360]], "purpose": "roi"}],
}


def _open(page: Any, live_server: LiveServer, role: Role) -> None:
    with live_server.ctx.db.session() as session:
        service.create(session, CameraIn.model_validate(CAM), actor="test")
    sign_in(page, live_server.url, make_user(live_server.ctx, role))
    page.goto(f"{live_server.url}/cameras?camera={CAM['id']}")
    page.wait_for_function("() => document.querySelector('#cams-version').textContent.includes('v1')")


def test_an_admin_changes_settings_and_zones_sees_errors_beside_the_field_and_saves_a_version(
    ctx: Context, live_server: LiveServer, page: Any
) -> None:
    _open(page, live_server, Role.admin)
    assert page.input_value("#set-decode") == "all"
    assert page.input_value("#set-speed_limit_kmh") == "60"
    assert "Decoding" in page.inner_text("label[for=set-decode]")  # the schema's title and description
    assert "keyframes" in page.inner_text("label[for=set-decode] .hint")

    page.select_option("#set-decode", "keyframes")
    page.fill("#set-analysis_fps", "90")
    page.click("#cams-add-zone")
    page.fill("[data-field='zones.1.name']", "gate")
    page.select_option("[data-field='zones.1.purpose']", "restricted")
    page.fill("[data-field='zones.1.polygon']", "0,0 100,100 100,0 0,100")
    page.click("#cams-save")
    page.wait_for_function(
        "() => document.querySelector('#cams-save-status').textContent.startsWith('Not saved')"
    )
    assert "crosses itself" in page.inner_text("[data-error-for='zones.1.polygon']")
    assert page.get_attribute("[data-field='zones.1.polygon']", "aria-invalid") == "true"
    assert "less than or equal to 60" in page.inner_text("[data-error-for='analysis.analysis_fps']")
    with ctx.db.session() as session:
        assert service.get(session, CAM["id"]).config_version == 1  # nothing half-saved

    page.fill("#set-analysis_fps", "8")
    page.fill("[data-field='zones.1.polygon']", "0,0 100,0 100,100 0,100")
    page.click("#cams-save")
    page.wait_for_function(
        "() => document.querySelector('#cams-save-status').textContent.startsWith('Saved')"
    )
    assert page.inner_text("#cams-version") == "configuration v2"
    assert page.inner_text("[data-error-for='zones.1.polygon']") == ""
    newest = page.locator("#cams-history tbody tr").first
    assert newest.get_attribute("data-version") == "2"
    assert 'analysis.decode: "all" → "keyframes"' in newest.inner_text()
    assert "zones['gate']" in newest.inner_text()
    with ctx.db.session() as session:
        camera = service.get(session, CAM["id"])
        assert camera.settings.decode == "keyframes" and camera.settings.analysis_fps == 8
        assert camera.settings.speed_limit_kmh == 60
        assert [(z.name, z.purpose) for z in camera.config.zones] == [("road", "roi"), ("gate", "restricted")]


def test_a_reader_sees_the_configuration_and_its_history_but_cannot_change_it(
    live_server: LiveServer, page: Any
) -> None:
    _open(page, live_server, Role.auditor)
    assert page.is_disabled("#set-decode") and page.is_disabled("[data-field='zones.0.polygon']")
    assert page.is_hidden("#cams-save") and page.is_hidden("#cams-add-zone")
    assert page.locator("#cams-history tbody tr").count() == 1
    assert "zone roi" in page.inner_text("#cams-used-by")
