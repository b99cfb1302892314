"""The map over HTTP: tiles by XYZ from the operator's file, the packaged base layer, what pages are told."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from safecity.core.context import Context
from safecity.server import create_app
from safecity.settings import Settings
from tests.conftest import auth_headers
from tests.maps.tiles_files import colour_of, make_mbtiles


def _client(tmp_path: Path, tiles: Path | None) -> Iterator[tuple[TestClient, dict[str, str]]]:
    ctx = Context.create(Settings(data_dir=tmp_path / "data", map_tiles=tiles))
    with TestClient(create_app(ctx, consumers=False)) as client:
        yield client, auth_headers(ctx, "operator")
    ctx.db.dispose()


@pytest.fixture
def with_tiles(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    path = make_mbtiles(
        tmp_path / "karachi.mbtiles",
        [(0, 0, 0), (1, 1, 0), (2, 2, 1)],
        metadata={"bounds": "66.8,24.7,67.4,25.2", "minzoom": "0", "maxzoom": "2"},
    )
    yield from _client(tmp_path, path)


@pytest.fixture
def without_tiles(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    yield from _client(tmp_path, None)


def test_a_tile_is_served_by_its_web_map_row_with_caching_headers(
    with_tiles: tuple[TestClient, dict],
) -> None:
    client, headers = with_tiles
    answer = client.get("/map/tiles/1/1/0.png", headers=headers)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert colour_of(answer.content) == (40, 40, 0)
    assert answer.headers["cache-control"] == "private, max-age=86400"
    again = client.get("/map/tiles/1/1/0.png", headers={**headers, "If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_a_missing_tile_is_404_and_bad_coordinates_are_refused(with_tiles: tuple[TestClient, dict]) -> None:
    client, headers = with_tiles
    missing = client.get("/map/tiles/1/1/1.png", headers=headers)
    assert missing.status_code == 404 and "no tile 1/1/1" in missing.json()["detail"]
    assert client.get("/map/tiles/1/2/0.png", headers=headers).status_code == 404  # x beyond 2^z - 1
    assert (
        client.get("/map/tiles/1/1/0.jpg", headers=headers).json()["detail"] == "the tiles are png, not jpg"
    )
    for bad in (
        "/map/tiles/-1/0/0.png",
        "/map/tiles/99/0/0.png",
        "/map/tiles/a/0/0.png",
        "/map/tiles/1/0/0.gif",
    ):
        answer = client.get(bad, headers=headers)
        assert answer.status_code == 422, bad
    traversal = client.get("/map/tiles/1/0/..%2F..%2Fkarachi.mbtiles", headers=headers)
    assert traversal.status_code in (404, 422)
    assert client.get("/map/tiles/../../../etc/passwd", headers=headers).status_code == 404


def test_the_pages_are_told_the_tiles_zooms_and_bounds(with_tiles: tuple[TestClient, dict]) -> None:
    client, headers = with_tiles
    described = client.get("/api/map", headers=headers).json()
    assert described["tiles"] == {
        "url": "/map/tiles/{z}/{x}/{y}.png",
        "minzoom": 0,
        "maxzoom": 2,
        "bounds": [66.8, 24.7, 67.4, 25.2],
        "attribution": "© test map makers",
        "kind": "raster",
        "style_url": None,
    }
    assert described["problem"] is None and described["bounds"] == [66.8, 24.7, 67.4, 25.2]


def test_tiles_need_a_signed_in_user(with_tiles: tuple[TestClient, dict]) -> None:
    client, _ = with_tiles
    assert client.get("/map/tiles/1/1/0.png").status_code == 401
    assert client.get("/map/base.geojson").status_code == 401


def test_without_a_tiles_file_the_base_layer_shows_karachi(without_tiles: tuple[TestClient, dict]) -> None:
    client, headers = without_tiles
    described = client.get("/api/map", headers=headers).json()
    assert described["tiles"] is None and described["problem"] is None
    west, south, east, north = described["bounds"]
    assert west < 67.0 < east and south < 24.86 < north  # Karachi's Saddar
    assert client.get("/map/tiles/0/0/0.png", headers=headers).status_code == 404
    base = client.get(described["base_url"], headers=headers)
    assert base.headers["content-type"] == "application/geo+json"
    features = base.json()["features"]
    land = [f for f in features if f["properties"]["kind"] == "land"]
    names = {f["properties"]["name"] for f in features if f["properties"]["kind"] == "neighbourhood"}
    assert land and land[0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert {"Clifton Block 2", "Saddar"} <= names and len(names) > 40


def test_a_broken_tiles_file_leaves_the_base_layer_and_says_why(tmp_path: Path) -> None:
    broken = tmp_path / "karachi.mbtiles"
    broken.write_text("<html>an error page saved as the map</html>")
    for client, headers in _client(tmp_path, broken):
        described = client.get("/api/map", headers=headers).json()
        assert described["tiles"] is None and "neither MBTiles" in described["problem"]
        answer = client.get("/map/tiles/0/0/0.png", headers=headers)
        assert answer.status_code == 404 and "neither MBTiles" in answer.json()["hint"]
