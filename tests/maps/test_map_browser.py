"""The console's map in headless Chromium: Leaflet from this server, the operator's tiles, nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from safecity.alerts import service as alerts
from safecity.cameras import service as cameras
from safecity.cameras.models import Camera, CameraIn
from safecity.core.context import Context
from safecity.dispatch import service as dispatch
from safecity.settings import Settings
from tests.browser import LiveServer, sign_in
from tests.conftest import make_user
from tests.maps.tiles_files import make_mbtiles

pytestmark = pytest.mark.browser

# Zooms 0 to 2 only: Leaflet stretches the zoom-2 tile that holds Karachi (2/2/1) over the closer view.
TILES = [(0, 0, 0), (1, 1, 0), (2, 2, 1)]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    tiles = make_mbtiles(
        tmp_path / "karachi.mbtiles",
        TILES,
        metadata={"bounds": "-180,-85,180,85", "minzoom": "0", "maxzoom": "2", "attribution": "© test tiles"},
    )
    return Settings(data_dir=tmp_path / "data", map_tiles=tiles)


def _city(ctx: Context) -> None:
    with ctx.db.session() as session:
        for cam_id, name, lat, lon in (
            ("cam-saddar", "Saddar Empress Market", 24.8607, 67.0299),
            ("cam-clifton", "Clifton Teen Talwar", 24.8138, 67.0300),
        ):
            data = CameraIn(id=cam_id, name=name, kind="anpr", district="South", latitude=lat, longitude=lon)
            cameras.create(session, data, actor="test")
        dispatch.create_unit(session, unit_id="PU-7", callsign="Saddar-7", latitude=24.865, longitude=67.025)


def test_the_dashboard_map_draws_the_operators_tiles_and_reaches_nothing_outside(
    live_server: LiveServer, page: Any
) -> None:
    _city(live_server.ctx)
    make_user(live_server.ctx, "operator", "amna")
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    refused: list[str] = []
    page.on(
        "console",
        lambda message: refused.append(message.text) if "Content Security" in message.text else None,
    )
    tiles: list[tuple[str, int]] = []
    page.on("response", lambda r: tiles.append((r.url, r.status)) if "/map/tiles/" in r.url else None)

    sign_in(page, live_server.url, "amna")
    page.wait_for_selector("body[data-ready=yes]")
    page.locator("#map.leaflet-container img.leaflet-tile-loaded").first.wait_for()
    assert (
        f"{live_server.url}/map/tiles/2/2/1.png",
        200,
    ) in tiles  # Karachi's tile, y counted from the north
    assert (
        page.locator("#map .leaflet-land-pane path.land").count() == 1
    )  # the packaged coast, under the tiles
    under = page.evaluate(
        "() => Number(getComputedStyle(document.querySelector('#map .leaflet-land-pane')).zIndex)"
        " < Number(getComputedStyle(document.querySelector('#map .leaflet-tile-pane')).zIndex)"
    )
    assert under
    assert "© test tiles" in page.inner_text("#map .leaflet-control-attribution")
    assert page.locator("#map [data-unit-id='PU-7']").count() == 1
    page.screenshot(path="/tmp/safecity_map_tiles.png")

    outside = [url for url in requests if not url.startswith((live_server.url, "data:", "blob:"))]
    assert outside == [], f"the page reached outside the server: {outside}"
    assert refused == [], f"the Content Security Policy refused: {refused}"

    saddar = page.locator("#map a[data-camera-id='cam-saddar']")
    assert saddar.get_attribute("href") == "/live/cam-saddar"
    saddar.click()  # one click: the camera's live view
    page.wait_for_url(f"{live_server.url}/live/cam-saddar")


def test_without_tiles_the_map_shows_the_coast_and_neighbourhood_names(
    live_server: LiveServer, page: Any, tmp_path: Path
) -> None:
    (tmp_path / "karachi.mbtiles").write_text("an error page saved as the map")  # the operator's mistake
    _city(live_server.ctx)
    with live_server.ctx.db.session() as session:
        alert, _ = alerts.raise_alert(
            session,
            kind="hotlist",
            priority=1,
            title="Stolen vehicle LEA4521 at Saddar Empress Market",
            source_key="read-1",
            dedup_key="hotlist:LEA4521",
            camera_id="cam-saddar",
            evidence={"plate": "LEA4521"},
            detail={},
        )
    make_user(live_server.ctx, "operator", "bilal")
    sign_in(page, live_server.url, "bilal")
    page.goto(live_server.url + "/dispatch")
    page.wait_for_selector("body[data-ready=yes]")
    page.locator("#map path.land").wait_for()
    names = page.locator("#map .place-label:not(.crowded) span")
    names.first.wait_for()
    shown = set(names.all_inner_texts())
    assert shown & {"Saddar", "Clifton Block 2", "Burns Road", "Kharadar"}, shown
    assert "Map tiles not used" in page.inner_text("#map .map-problem")
    assert "neither MBTiles" in page.inner_text("#map .map-problem")
    assert page.locator("#map img.leaflet-tile").count() == 0
    page.click(f"#map [data-alert-id='{alert.id}']")  # the alert on the map is chosen for dispatch
    page.locator("#candidates-for", has_text="Stolen vehicle LEA4521").wait_for()
    page.locator("#candidates .candidate[data-unit-id='PU-7']").wait_for()
    page.screenshot(path="/tmp/safecity_map_base.png")


def test_a_city_of_cameras_is_drawn_as_dots_and_one_click_opens_a_cameras_live_view(
    live_server: LiveServer, page: Any
) -> None:
    ctx = live_server.ctx
    with ctx.db.session() as session:  # a 41 x 41 grid over central Karachi: 1,681 cameras
        for row in range(41):
            for column in range(41):
                centre = row == column == 20
                session.add(
                    Camera(
                        id="cam-centre" if centre else f"khi-{row:02d}-{column:02d}",
                        name="Tower Chowk" if centre else f"Camera {row}/{column}",
                        kind="anpr",
                        district="South",
                        latitude=24.80 + row * 0.005,
                        longitude=66.98 + column * 0.005,
                    )
                )
    make_user(ctx, "operator", "sana")
    sign_in(page, live_server.url, "sana")
    page.wait_for_selector("body[data-ready=yes]")
    page.locator("#map canvas").wait_for()
    assert page.locator("#map [data-camera-id]").count() == 0  # no link per camera: dots on a canvas
    box = page.locator("#map").bounding_box()
    assert box is not None
    page.wait_for_timeout(500)  # the map frames the cameras: the grid's centre at the map's centre
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url(f"{live_server.url}/live/cam-centre")
