"""Small road files for tests: a few blocks of streets as `osmium export` writes them (GeoJSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SIDE = 0.002  # degrees between junctions: about 200 m
ORIGIN = (24.8600, 67.0100)


def corner(row: int, column: int) -> tuple[float, float]:
    """Returns the (lat, lon) of a junction of the grid, `row` blocks north and `column` east of ORIGIN."""
    return (round(ORIGIN[0] + row * SIDE, 7), round(ORIGIN[1] + column * SIDE, 7))


def street(*points: tuple[float, float], highway: str = "residential", **tags: str) -> dict[str, Any]:
    """A road through (lat, lon) points, in GeoJSON's [lon, lat] order, with OSM tags."""
    return {
        "type": "Feature",
        "properties": {"highway": highway, **tags},
        "geometry": {"type": "LineString", "coordinates": [[lon, lat] for lat, lon in points]},
    }


def write_roads(path: Path, *features: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(features)}))
    return path
