"""An operator's vector tiles (MVT in MBTiles or PMTiles): what `map check` says, how tiles are served
and the MapLibre style that draws only the layers a file holds."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pmtiles.convert import mbtiles_to_pmtiles
from typer.testing import CliRunner

from safecity.cli import app
from safecity.core.context import Context
from safecity.core.errors import InvalidInput
from safecity.maps.tiles import open_tiles
from safecity.server import create_app
from safecity.settings import Settings
from tests.conftest import auth_headers
from tests.maps.tiles_files import OPENMAPTILES, PROTOMAPS, make_mbtiles, make_vector_mbtiles, mvt_tile

TILES = [(0, 0, 0), (1, 1, 0), (2, 2, 1)]
AREA = {"bounds": "66.8,24.7,67.4,25.2", "minzoom": "0", "maxzoom": "2"}


def _serve(tmp_path: Path, tiles: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    ctx = Context.create(Settings(data_dir=tmp_path / "data", map_tiles=tiles))
    with TestClient(create_app(ctx, consumers=False)) as client:
        yield client, auth_headers(ctx, "operator")
    ctx.db.dispose()


@pytest.fixture
def openmaptiles(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    yield from _serve(
        tmp_path, make_vector_mbtiles(tmp_path / "k.mbtiles", TILES, OPENMAPTILES, metadata=AREA)
    )


def test_an_openmaptiles_mbtiles_file_is_vector_with_its_layers(tmp_path: Path) -> None:
    tiles = open_tiles(make_vector_mbtiles(tmp_path / "k.mbtiles", TILES, OPENMAPTILES, metadata=AREA))
    info = tiles.info
    assert (info.kind, info.format, info.schema_name, info.warning) == ("vector", "pbf", "openmaptiles", None)
    assert info.vector_layers == ["water", "park", "building", "transportation", "boundary"]
    assert gzip.decompress(tiles.tile(1, 1, 0) or b"") == mvt_tile(OPENMAPTILES)  # as stored: gzipped
    tiles.close()


def test_a_protomaps_pmtiles_file_is_vector_and_its_tiles_stay_gzipped(tmp_path: Path) -> None:
    mbtiles = make_vector_mbtiles(tmp_path / "k.mbtiles", TILES, PROTOMAPS, metadata=AREA)
    mbtiles_to_pmtiles(str(mbtiles), str(tmp_path / "k.pmtiles"), maxzoom=2)
    tiles = open_tiles(tmp_path / "k.pmtiles")
    assert (tiles.info.container, tiles.info.kind, tiles.info.schema_name) == (
        "pmtiles",
        "vector",
        "protomaps",
    )
    assert "earth" in tiles.info.vector_layers and "roads" in tiles.info.vector_layers
    data = tiles.tile(2, 2, 1) or b""
    assert data[:2] == b"\x1f\x8b" and gzip.decompress(data) == mvt_tile(PROTOMAPS)
    tiles.close()


def test_check_reports_vector_layers_and_schema(tmp_path: Path) -> None:
    path = make_vector_mbtiles(tmp_path / "k.mbtiles", TILES, PROTOMAPS, metadata=AREA)
    result = CliRunner().invoke(app, ["map", "check", str(path)])
    said = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "mbtiles, vector pbf tiles" in said and "Protomaps basemap" in said
    assert "earth, water, buildings, roads, places" in said and "0/0/0 found" in said
    report = json.loads(CliRunner().invoke(app, ["map", "check", "--json", str(path)]).stdout)
    assert report["kind"] == "vector" and report["schema_name"] == "protomaps" and report["warning"] is None


def test_a_vector_file_of_unknown_schema_is_accepted_with_a_warning(tmp_path: Path) -> None:
    layers = {"water": {"class": "lake"}, "cameras": {"kind": "anpr"}}
    path = make_vector_mbtiles(tmp_path / "k.mbtiles", TILES, layers, metadata=AREA)
    result = CliRunner().invoke(app, ["map", "check", str(path)])
    said = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "schema │ not recognised" in said
    assert "warning: vector layers water, cameras follow neither OpenMapTiles nor the Protomaps" in said
    assert "only recognised layers" in said


@pytest.mark.parametrize(
    ("metadata", "says"),
    [
        ({"format": "mlt"}, "holds MapLibre Tiles (MLT)"),
        ({"json": ""}, "its metadata names no vector_layers"),
        ({"json": "{not json"}, "metadata 'json' that is not JSON"),
        ({"json": '{"vector_layers": []}'}, "its metadata names no vector_layers"),
    ],
)
def test_mlt_and_vector_files_without_layers_are_refused_with_what_to_give(
    tmp_path: Path, metadata: dict[str, str], says: str
) -> None:
    path = make_vector_mbtiles(tmp_path / "k.mbtiles", TILES, OPENMAPTILES, metadata=metadata)
    with pytest.raises(InvalidInput, match=r"k\.mbtiles") as refused:
        open_tiles(path)
    assert says in str(refused.value) and refused.value.hint
    result = CliRunner().invoke(app, ["map", "check", str(path)])
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and says in said and "hint:" in said and "Traceback" not in said


def test_an_mlt_pmtiles_file_is_refused(tmp_path: Path) -> None:
    png = make_mbtiles(tmp_path / "k.mbtiles", TILES, metadata={**AREA, "format": "png"})
    mbtiles_to_pmtiles(str(png), str(tmp_path / "k.pmtiles"), maxzoom=2)
    raw = bytearray((tmp_path / "k.pmtiles").read_bytes())
    raw[99] = 6  # the header's tile type: MLT
    (tmp_path / "k.pmtiles").write_bytes(bytes(raw))
    with pytest.raises(InvalidInput, match="MapLibre Tiles"):
        open_tiles(tmp_path / "k.pmtiles")


def test_vector_tiles_are_served_as_stored_saying_gzip_and_protobuf(
    openmaptiles: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = openmaptiles
    answer = client.get("/map/tiles/1/1/0.pbf", headers=headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-protobuf"
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.content == mvt_tile(OPENMAPTILES)  # the client unpacked it, as a browser does
    again = client.get("/map/tiles/1/1/0.pbf", headers={**headers, "If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304
    assert client.get("/map/tiles/1/1/0.png", headers=headers).status_code == 404
    assert client.get("/map/tiles/1/1/1.pbf", headers=headers).status_code == 404


def test_the_pages_are_told_the_tiles_are_vector_and_where_the_style_is(
    openmaptiles: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = openmaptiles
    tiles = client.get("/api/map", headers=headers).json()["tiles"]
    assert tiles["kind"] == "vector" and tiles["style_url"] == "/map/style.json"
    assert tiles["url"] == "/map/tiles/{z}/{x}/{y}.pbf"


def test_the_style_draws_only_the_layers_the_file_holds(
    openmaptiles: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = openmaptiles
    assert client.get("/map/style.json").status_code == 401  # tiles and style: signed-in users only
    answer = client.get("/map/style.json", headers=headers)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    style = answer.json()
    assert style["version"] == 8 and "glyphs" not in style
    source = style["sources"]["city"]
    assert source["tiles"] == ["/map/tiles/{z}/{x}/{y}.pbf"]
    assert (source["minzoom"], source["maxzoom"]) == (0, 2)
    layers = style["layers"]
    named = {layer["source-layer"] for layer in layers if "source-layer" in layer}
    assert named == set(OPENMAPTILES)  # water, park, building, transportation, boundary: no landcover
    ids = [layer["id"] for layer in layers]
    assert ids[0] == "background" and "road-motorway" in ids and "road-service" in ids and "railway" in ids
    assert all(layer["type"] != "symbol" for layer in layers)  # no labels: no glyph fonts offline
    motorway = next(layer for layer in layers if layer["id"] == "road-motorway")
    assert motorway["paint"]["line-width"][:3] == ["interpolate", ["exponential", 1.5], ["zoom"]]


def test_a_protomaps_style_draws_the_earth_on_the_sea(tmp_path: Path) -> None:
    path = make_vector_mbtiles(tmp_path / "k.mbtiles", TILES, PROTOMAPS, metadata=AREA)
    for client, headers in _serve(tmp_path, path):
        style = client.get("/map/style.json", headers=headers).json()
        ids = [layer["id"] for layer in style["layers"]]
        assert ids[:3] == ["background", "earth", "water"] and "buildings" in ids and "boundaries" not in ids
        assert style["layers"][0]["paint"]["background-color"] == "#0c2a42"  # the console's sea


def test_a_raster_file_has_no_style(tmp_path: Path) -> None:
    path = make_mbtiles(tmp_path / "k.mbtiles", TILES, metadata=AREA)
    for client, headers in _serve(tmp_path, path):
        answer = client.get("/map/style.json", headers=headers)
        assert answer.status_code == 404 and "no vector map tiles" in answer.text
        assert client.get("/api/map", headers=headers).json()["tiles"]["kind"] == "raster"
