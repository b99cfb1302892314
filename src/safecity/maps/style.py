"""The MapLibre style for an operator's vector tiles, built from what the file holds.

One style serves both schemas the console knows, OpenMapTiles (planetiler's default) and the Protomaps
basemap: land, water, parks, buildings, roads by class with widths by zoom, railways and boundaries, in
the console's colours. It names only layers the file has, so MapLibre never asks for a missing one.
There are no text labels: MapLibre draws text from glyph PBF fonts, and no package we may vendor ships
them; neighbourhood names come from the packaged base layer instead.

    style_for(tiles.info, tile_url="/map/tiles/{z}/{x}/{y}.pbf")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from safecity.maps.tiles import TilesInfo

SOURCE = "city"
# The console's map colours (web/static/app.css, `.city-map`): the sea and the packaged land.
SEA = "#0c2a42"
LAND = "#18222d"
PARK = "#1b3026"
BUILDING = "#243241"
BOUNDARY = "#4a7196"
RAIL = "#5b6b7c"

Expression = list[Any]


@dataclass(frozen=True)
class RoadClass:
    """How one class of road is drawn: colour and line width at zoom 10 and at zoom 18."""

    name: str
    colour: str
    width_z10: float
    width_z18: float


# Drawn in this order: the larger roads over the smaller ones.
ROAD_CLASSES = (
    RoadClass("service", "#2b3846", 0.0, 4.0),
    RoadClass("minor", "#34465a", 0.3, 8.0),
    RoadClass("secondary", "#4f6478", 0.8, 12.0),
    RoadClass("primary", "#8a7a4a", 1.2, 16.0),
    RoadClass("trunk", "#a07c3c", 1.5, 18.0),
    RoadClass("motorway", "#c98a3a", 2.0, 20.0),
)


def _is(key: str, *values: str) -> Expression:
    """True where the feature's `key` is one of `values`."""
    return ["match", ["get", key], list(values), True, False]


# Which features of each schema are of each road class (OpenMapTiles `class`; Protomaps `kind` and
# `kind_detail`).
OPENMAPTILES_ROADS: dict[str, Expression] = {
    "service": _is("class", "service", "track"),
    "minor": _is("class", "minor", "tertiary"),
    "secondary": _is("class", "secondary"),
    "primary": _is("class", "primary"),
    "trunk": _is("class", "trunk"),
    "motorway": _is("class", "motorway"),
}
PROTOMAPS_ROADS: dict[str, Expression] = {
    "service": ["all", _is("kind", "minor_road"), _is("kind_detail", "service")],
    "minor": ["all", _is("kind", "minor_road"), ["!", _is("kind_detail", "service")]],
    "secondary": _is("kind", "medium_road"),
    "primary": ["all", _is("kind", "major_road"), ["!", _is("kind_detail", "trunk")]],
    "trunk": ["all", _is("kind", "major_road"), _is("kind_detail", "trunk")],
    "motorway": _is("kind", "highway"),
}


def _width(low: float, high: float) -> Expression:
    return ["interpolate", ["exponential", 1.5], ["zoom"], 10, low, 18, high]


def _fill(layer_id: str, source_layer: str, colour: str, where: Expression | None = None) -> dict[str, Any]:
    layer: dict[str, Any] = {
        "id": layer_id,
        "type": "fill",
        "source": SOURCE,
        "source-layer": source_layer,
        "paint": {"fill-color": colour},
    }
    if where is not None:
        layer["filter"] = where
    return layer


def _line(
    layer_id: str, source_layer: str, colour: str, width: Any, where: Expression | None = None, **paint: Any
) -> dict[str, Any]:
    layer: dict[str, Any] = {
        "id": layer_id,
        "type": "line",
        "source": SOURCE,
        "source-layer": source_layer,
        "layout": {"line-cap": "round", "line-join": "round"},
        "paint": {"line-color": colour, "line-width": width, **paint},
    }
    if where is not None:
        layer["filter"] = where
    return layer


def _roads(source_layer: str, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """One line layer per road class, from `source_layer`, each picked out by its filter."""
    return [
        _line(
            f"road-{road.name}",
            source_layer,
            road.colour,
            _width(road.width_z10, road.width_z18),
            filters[road.name],
        )
        for road in ROAD_CLASSES
    ]


def _openmaptiles_layers() -> list[dict[str, Any]]:
    parks = _is("class", "wood", "grass", "forest", "park", "meadow", "scrub")
    rail = _is("class", "rail", "transit")
    return [
        _fill("landcover", "landcover", PARK, parks),
        _fill("landuse-park", "landuse", PARK, _is("class", "park", "cemetery", "grass")),
        _fill("park", "park", PARK),
        _fill("water", "water", SEA),
        _line("waterway", "waterway", SEA, _width(0.5, 6)),
        _fill("building", "building", BUILDING),
        *_roads("transportation", OPENMAPTILES_ROADS),
        _line("railway", "transportation", RAIL, _width(0.5, 3), rail, **{"line-dasharray": [3, 2]}),
        _line("boundary", "boundary", BOUNDARY, 1, None, **{"line-dasharray": [4, 2]}),
    ]


def _protomaps_layers() -> list[dict[str, Any]]:
    parks = _is("kind", "park", "national_park", "nature_reserve", "forest", "wood", "grass", "cemetery")
    return [
        _fill("earth", "earth", LAND),
        _fill("landuse-park", "landuse", PARK, parks),
        _fill("natural", "natural", PARK, _is("kind", "wood", "forest", "grassland", "scrub")),
        _fill("water", "water", SEA),
        _fill("buildings", "buildings", BUILDING),
        *_roads("roads", PROTOMAPS_ROADS),
        _line("railway", "roads", RAIL, _width(0.5, 3), _is("kind", "rail"), **{"line-dasharray": [3, 2]}),
        _line("boundaries", "boundaries", BOUNDARY, 1, None, **{"line-dasharray": [4, 2]}),
    ]


def style_for(info: TilesInfo, *, tile_url: str) -> dict[str, Any]:
    """Returns a MapLibre style (v8) drawing the vector tile set `info` from `tile_url` ({z}/{x}/{y})."""
    present = set(info.vector_layers)
    # A Protomaps file draws its land (`earth`) over the sea; an OpenMapTiles file draws its water over
    # the land. A file of unknown schema gets what either would draw of its layers.
    protomaps = info.schema_name == "protomaps"
    if info.schema_name == "openmaptiles":
        candidates = _openmaptiles_layers()
    elif protomaps:
        candidates = _protomaps_layers()
    else:
        candidates = _openmaptiles_layers() + _protomaps_layers()
    layers: list[dict[str, Any]] = []
    seen: set[str] = set()
    for layer in candidates:
        if layer["source-layer"] in present and layer["id"] not in seen:
            seen.add(layer["id"])
            layers.append(layer)
    background = {
        "id": "background",
        "type": "background",
        "paint": {"background-color": SEA if protomaps else LAND},
    }
    source: dict[str, Any] = {
        "type": "vector",
        "tiles": [tile_url],
        "minzoom": info.minzoom,
        "maxzoom": info.maxzoom,
        "bounds": list(info.bounds),
    }  # no attribution here: the Leaflet map shows the file's (GET /api/map)
    return {
        "version": 8,
        "name": f"SafeCity: {info.name or 'city'} ({info.schema_name or 'unknown schema'})",
        "sources": {SOURCE: source},
        "layers": [background, *layers],
    }
