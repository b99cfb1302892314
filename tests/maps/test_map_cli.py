"""`safecity map check FILE` and `map roads FILE`: what a tiles or road file holds, or why it cannot
serve, in an operator's words."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from safecity.cli import app
from tests.maps.road_files import corner, street, write_roads
from tests.maps.tiles_files import make_mbtiles


def test_check_says_what_a_tiles_file_holds(tmp_path: Path) -> None:
    path = make_mbtiles(
        tmp_path / "karachi.mbtiles",
        [(0, 0, 0), (1, 1, 0), (2, 2, 1)],
        metadata={"bounds": "66.8,24.7,67.4,25.2", "minzoom": "0", "maxzoom": "2", "name": "Karachi"},
    )
    result = CliRunner().invoke(app, ["map", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "mbtiles, raster png tiles" in result.output and "0 to 2" in result.output
    assert "24.70000, 66.80000" in result.output and "25.20000, 67.40000" in result.output
    assert "0/0/0 found" in result.output and "SAFECITY_MAP_TILES=" in result.output
    as_json = CliRunner().invoke(app, ["map", "check", "--json", str(path)])
    report = json.loads(as_json.stdout)
    assert report["maxzoom"] == 2 and report["tiles"] == 3 and report["centre_tile_found"] is True


def test_check_refuses_what_is_not_a_tiles_file(tmp_path: Path) -> None:
    page = tmp_path / "karachi.mbtiles"
    page.write_text("<html>404 Not Found</html>")
    vector = make_mbtiles(tmp_path / "vector.mbtiles", [(0, 0, 0)], metadata={"format": "mlt"})
    for path, says in (
        (page, "is neither MBTiles (SQLite) nor PMTiles"),
        (vector, "holds MapLibre Tiles (MLT)"),
        (tmp_path / "absent.pmtiles", "does not exist"),
    ):
        result = CliRunner().invoke(app, ["map", "check", str(path)])
        said = " ".join(result.output.split())  # the error console wraps long lines
        assert result.exit_code == 1
        assert says in said and "hint:" in said and "Traceback" not in said


def test_roads_says_what_a_road_file_holds(tmp_path: Path) -> None:
    path = write_roads(
        tmp_path / "karachi-roads.geojson",
        street(corner(0, 0), corner(0, 1)),
        street(corner(0, 1), corner(1, 1), highway="primary", oneway="yes"),
        street(corner(0, 0), corner(1, 1), highway="footway"),
    )
    result = CliRunner().invoke(app, ["map", "roads", str(path)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "2 roads of 3 features" in said and "│ nodes │ 11" in said and "│ edges │ 15 " in said
    assert "km residential │ 0.20" in said and "km primary │ 0.22" in said
    assert "1, the largest 100.0% of the nodes" in said
    assert "24.86000, 67.01000" in said and "24.86200, 67.01200" in said
    assert "SAFECITY_ROAD_GRAPH=" in said
    report = json.loads(CliRunner().invoke(app, ["map", "roads", "--json", str(path)]).stdout)
    assert report["nodes"] == 11 and report["components"] == 1 and report["km_by_class"]["primary"] == 0.22


def test_roads_refuses_a_bad_file_naming_the_feature(tmp_path: Path) -> None:
    path = write_roads(
        tmp_path / "roads.geojson", street(corner(0, 0), corner(0, 1)), street((24.86, 200.0), (24.86, 67.0))
    )
    result = CliRunner().invoke(app, ["map", "roads", str(path)])
    said = " ".join(result.output.split())
    assert (
        result.exit_code != 0 and "feature 1: the point [200.0, 24.86] is not longitude then latitude" in said
    )
    assert "osmium export" in said
