"""The console's map over an operator's vector tiles in headless Chromium: MapLibre from this server, its
style and tiles, nothing else; where the browser has no WebGL, the packaged base layer and a note why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from safecity.settings import Settings
from tests.browser import LiveServer, sign_in
from tests.conftest import make_user
from tests.maps.tiles_files import OPENMAPTILES, PROTOMAPS, make_vector_mbtiles

pytestmark = pytest.mark.browser


@pytest.fixture(params=["openmaptiles", "protomaps"])
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    tiles = make_vector_mbtiles(
        tmp_path / "karachi.mbtiles",
        [(0, 0, 0), (1, 1, 0), (2, 2, 1)],
        OPENMAPTILES if request.param == "openmaptiles" else PROTOMAPS,
        metadata={"bounds": "-180,-85,180,85", "minzoom": "0", "maxzoom": "2"},
    )
    return Settings(data_dir=tmp_path / "data", map_tiles=tiles)


def test_the_dashboard_draws_vector_tiles_with_maplibre_from_this_server_or_says_why_not(
    live_server: LiveServer, page: Any
) -> None:
    make_user(live_server.ctx, "operator", "amna")
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    refused: list[str] = []
    page.on(
        "console",
        lambda message: refused.append(message.text) if "Content Security" in message.text else None,
    )
    complaints: list[str] = []  # MapLibre reports a bad style or tile on the console, not as a page error
    page.on("console", lambda message: complaints.append(message.text) if message.type == "error" else None)

    sign_in(page, live_server.url, "amna")
    page.wait_for_selector("body[data-ready=yes]")
    page.wait_for_selector("#map[data-vector]")
    how = page.get_attribute("#map", "data-vector")
    webgl = page.evaluate(
        "() => { const c = document.createElement('canvas');"
        " return !!(c.getContext('webgl2') || c.getContext('webgl')); }"
    )
    print(f"vector map: {how} (WebGL {'present' if webgl else 'absent'} in this Chromium)")
    if how == "drawn":
        page.locator("#map canvas.maplibregl-canvas").wait_for()
        deadline = 100
        while deadline and not any(url.endswith(".pbf") for url in requests):  # from MapLibre's worker
            page.wait_for_timeout(100)
            deadline -= 1
        seen = list(requests)
        assert any(url.endswith("/map/style.json") for url in seen), seen
        assert any(url.endswith(".pbf") and "/map/tiles/" in url for url in seen), seen
        assert any("/static/vendor/maplibre/maplibre-gl.mjs" in url for url in seen), seen
        assert page.locator("#map .map-problem").count() == 0
        assert "OpenStreetMap contributors" in page.inner_text("#map .leaflet-control-attribution")
        assert complaints == [], complaints
    else:
        assert how == "fallback" and not webgl
        assert "Vector map not drawn: this browser has no WebGL" in page.inner_text("#map .map-problem")
        page.locator("#map path.land").wait_for(state="attached")  # the packaged coast instead
        assert not any("/static/vendor/maplibre/" in url for url in requests)  # loaded only when it can draw
    page.locator("#map .place-label span").first.wait_for(state="attached")  # names: the packaged ones
    page.screenshot(path="/tmp/safecity_map_vector.png")

    outside = [url for url in requests if not url.startswith((live_server.url, "data:", "blob:"))]
    assert outside == [], f"the page reached outside the server: {outside}"
    assert refused == [], f"the Content Security Policy refused: {refused}"
    assert errors == [], f"the page failed: {errors}"


def test_without_webgl_the_map_keeps_the_packaged_base_layer_and_says_why(
    live_server: LiveServer, page: Any
) -> None:
    make_user(live_server.ctx, "operator", "bilal")
    page.add_init_script(  # a browser with its GPU switched off: no WebGL context to be had
        "const get = HTMLCanvasElement.prototype.getContext;"
        "HTMLCanvasElement.prototype.getContext = function (kind, ...rest) {"
        " return String(kind).startsWith('webgl') ? null : get.call(this, kind, ...rest); };"
    )
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_server.url, "bilal")
    page.wait_for_selector("body[data-ready=yes]")
    page.wait_for_selector("#map[data-vector=fallback]")
    problem = page.inner_text("#map .map-problem")
    assert "Vector map not drawn: this browser has no WebGL; showing the packaged base layer" in problem
    page.locator("#map path.land").wait_for(state="attached")
    page.locator("#map .place-label span").first.wait_for(state="attached")
    assert not any("/static/vendor/maplibre/" in url for url in requests)  # loaded only when it can draw
    assert errors == [], f"the page failed: {errors}"
