"""Reading an operator's tiles file: MBTiles' flipped rows, PMTiles, what the metadata says, bad files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pmtiles.convert import mbtiles_to_pmtiles

from safecity.core.errors import InvalidInput, NotFound
from safecity.maps.tiles import configured, open_tiles
from tests.maps.tiles_files import colour_of, make_mbtiles

KARACHI = [(0, 0, 0), (1, 1, 0), (2, 2, 1), (2, 3, 1)]


def test_an_mbtiles_tile_is_found_by_its_web_map_row_which_mbtiles_stores_flipped(tmp_path: Path) -> None:
    tiles = open_tiles(make_mbtiles(tmp_path / "city.mbtiles", KARACHI))
    assert colour_of(tiles.tile(1, 1, 0) or b"") == (40, 40, 0)  # north-east at zoom 1: TMS row 1
    assert colour_of(tiles.tile(2, 3, 1) or b"") == (80, 120, 40)
    assert tiles.tile(1, 1, 1) is None  # south-east: never stored
    tiles.close()


def test_the_metadata_gives_format_zooms_bounds_and_attribution(tmp_path: Path) -> None:
    path = make_mbtiles(
        tmp_path / "city.mbtiles",
        KARACHI,
        metadata={"bounds": "66.8,24.7,67.4,25.2", "minzoom": "0", "maxzoom": "2"},
    )
    info = open_tiles(path).info
    assert (info.container, info.format, info.minzoom, info.maxzoom) == ("mbtiles", "png", 0, 2)
    assert info.bounds == (66.8, 24.7, 67.4, 25.2)
    assert info.attribution == "© test map makers" and info.tiles == 4


def test_silent_metadata_is_read_off_the_tiles(tmp_path: Path) -> None:
    path = make_mbtiles(tmp_path / "city.mbtiles", [(2, 2, 1), (2, 3, 1), (3, 5, 3)], metadata={"format": ""})
    info = open_tiles(path).info
    assert (info.format, info.minzoom, info.maxzoom) == ("png", 2, 3)
    west, south, east, north = info.bounds  # tiles 2/2..3/1: east of Greenwich, 0 to 66.5 N
    assert (west, east) == (0.0, 180.0) and south == pytest.approx(0.0, abs=1e-9)
    assert north == pytest.approx(66.513, abs=1e-3)


def test_a_pmtiles_file_serves_the_same_tiles(tmp_path: Path) -> None:
    bounds = {"bounds": "66.8,24.7,67.4,25.2", "minzoom": "0", "maxzoom": "2", "center": "67.1,24.9,1"}
    mbtiles = make_mbtiles(tmp_path / "city.mbtiles", KARACHI, metadata=bounds)
    mbtiles_to_pmtiles(str(mbtiles), str(tmp_path / "city.pmtiles"), maxzoom=2)
    tiles = open_tiles(tmp_path / "city.pmtiles")
    assert (tiles.info.container, tiles.info.format, tiles.info.maxzoom) == ("pmtiles", "png", 2)
    assert tiles.info.bounds == pytest.approx((66.8, 24.7, 67.4, 25.2))
    assert colour_of(tiles.tile(1, 1, 0) or b"") == (40, 40, 0)
    assert tiles.tile(1, 1, 1) is None
    tiles.close()


def test_a_tile_outside_the_grid_is_not_found(tmp_path: Path) -> None:
    tiles = open_tiles(make_mbtiles(tmp_path / "city.mbtiles", KARACHI))
    with pytest.raises(NotFound, match="outside the map"):
        tiles.tile(1, 2, 0)
    with pytest.raises(NotFound):
        tiles.tile(25, 0, 0)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"<html>not a map</html>", "neither MBTiles"),
        (b"", "neither MBTiles"),
        (b"PMTiles\x03" + b"\x00" * 20, "not a readable PMTiles"),
        (b"SQLite format 3\x00" + b"\x00" * 200, "not an MBTiles file"),
    ],
)
def test_a_file_that_is_not_a_tiles_file_is_refused_with_what_to_give(
    tmp_path: Path, content: bytes, says: str
) -> None:
    path = tmp_path / "city.mbtiles"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=says) as refused:
        open_tiles(path)
    assert ".mbtiles or .pmtiles file of raster (PNG, JPEG, WebP) or vector (MVT)" in (
        refused.value.hint or ""
    )


def test_an_sqlite_file_without_tiles_tables_and_mlt_tiles_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE cameras (id TEXT)").connection.commit()
    with pytest.raises(InvalidInput, match="without the MBTiles table"):
        open_tiles(other)
    mlt = make_mbtiles(tmp_path / "vector.mbtiles", KARACHI, metadata={"format": "mlt"})
    with pytest.raises(InvalidInput, match=r"MapLibre Tiles \(MLT\)") as refused:
        open_tiles(mlt)
    assert "MVT" in (refused.value.hint or "")
    bad_bounds = make_mbtiles(tmp_path / "bounds.mbtiles", KARACHI, metadata={"bounds": "67.4,24.7,66.8"})
    with pytest.raises(InvalidInput, match="west,south,east,north"):
        open_tiles(bad_bounds)


def test_a_configured_file_that_fails_is_reported_and_a_replaced_one_is_reopened(tmp_path: Path) -> None:
    path = tmp_path / "city.mbtiles"
    path.write_text("not yet")
    tiles, problem = configured(path)
    assert tiles is None and problem is not None and "neither MBTiles" in problem
    path.unlink()
    make_mbtiles(path, KARACHI)
    tiles, problem = configured(path)
    assert tiles is not None and problem is None and tiles.info.tiles == 4
    assert configured(None) == (None, None)
