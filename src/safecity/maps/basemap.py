"""The map drawn where no tiles file is given: Karachi's land from Natural Earth and its neighbourhoods.

The land outline is committed (`data/karachi_land.geojson`, made by `scripts/make_basemap.py` from
Natural Earth's public-domain 1:10m polygon); the neighbourhood names and points come from PyPI
`pak-geodata` (MIT) at run time. Both are served as one GeoJSON collection for the pages to draw under
the cameras.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import pak_geodata

CITY = "karachi"
LAND = "karachi_land.geojson"
NEIGHBOURHOOD_SOURCE = f"pak-geodata {pak_geodata.__version__}"


@lru_cache(maxsize=1)
def base_layer() -> dict[str, Any]:
    """Returns the base layer as a GeoJSON FeatureCollection: land polygons, then neighbourhood points."""
    land = json.loads(resources.files("safecity.maps").joinpath("data", LAND).read_text())
    features: list[dict[str, Any]] = list(land["features"])
    for area in pak_geodata.get_areas_by_city(CITY):
        if area.coordinates is None:
            continue
        features.append(
            {
                "type": "Feature",
                "properties": {"kind": "neighbourhood", "name": area.name, "area_type": area.type or ""},
                "geometry": {"type": "Point", "coordinates": [area.coordinates.lng, area.coordinates.lat]},
            }
        )
    return {"type": "FeatureCollection", "features": features}


@lru_cache(maxsize=1)
def base_layer_bytes() -> bytes:
    """Returns the base layer as the JSON the app serves."""
    return json.dumps(base_layer(), separators=(",", ":")).encode()


def city_bounds() -> tuple[float, float, float, float]:
    """Returns west, south, east, north of the city the base layer shows."""
    city = pak_geodata.get_city_by_id(CITY)
    if city is None or city.bounds is None:  # the package always has Karachi; this says so if it stops
        raise LookupError(f"pak-geodata {pak_geodata.__version__} has no bounds for {CITY}")
    b = city.bounds
    return (b.min_lng, b.min_lat, b.max_lng, b.max_lat)
