"""`safecity map check FILE`: what a tiles file holds, or why it cannot serve, in an operator's words."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from safecity.cli import app
from tests.maps.tiles_files import make_mbtiles


def test_check_says_what_a_tiles_file_holds(tmp_path: Path) -> None:
    path = make_mbtiles(
        tmp_path / "karachi.mbtiles",
        [(0, 0, 0), (1, 1, 0), (2, 2, 1)],
        metadata={"bounds": "66.8,24.7,67.4,25.2", "minzoom": "0", "maxzoom": "2", "name": "Karachi"},
    )
    result = CliRunner().invoke(app, ["map", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "mbtiles, png tiles" in result.output and "0 to 2" in result.output
    assert "24.70000, 66.80000" in result.output and "25.20000, 67.40000" in result.output
    assert "0/0/0 found" in result.output and "SAFECITY_MAP_TILES=" in result.output
    as_json = CliRunner().invoke(app, ["map", "check", "--json", str(path)])
    report = json.loads(as_json.stdout)
    assert report["maxzoom"] == 2 and report["tiles"] == 3 and report["centre_tile_found"] is True


def test_check_refuses_what_is_not_a_tiles_file(tmp_path: Path) -> None:
    page = tmp_path / "karachi.mbtiles"
    page.write_text("<html>404 Not Found</html>")
    vector = make_mbtiles(tmp_path / "vector.mbtiles", [(0, 0, 0)], metadata={"format": "pbf"})
    for path, says in (
        (page, "is neither MBTiles (SQLite) nor PMTiles"),
        (vector, "holds vector tiles (pbf)"),
        (tmp_path / "absent.pmtiles", "does not exist"),
    ):
        result = CliRunner().invoke(app, ["map", "check", str(path)])
        said = " ".join(result.output.split())  # the error console wraps long lines
        assert result.exit_code == 1
        assert says in said and "hint:" in said and "Traceback" not in said
