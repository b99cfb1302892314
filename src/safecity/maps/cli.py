"""`safecity map check FILE` and `safecity map roads FILE`: what a tiles or road file holds before the
console is pointed at it."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table

from safecity.core.cliutil import console, friendly_errors, print_json
from safecity.maps.roads import load_roads
from safecity.maps.tiles import open_tiles

app = typer.Typer(help="The console's map: check a tiles file or a road file.", no_args_is_help=True)


@app.command("check")
@friendly_errors
def check_command(
    path: Path = typer.Argument(..., help="An .mbtiles or .pmtiles file of raster or vector (MVT) tiles"),
    json_output: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """Say what a tiles file holds (raster or vector, zooms, bounds, vector layers) and read a tile, or why
    it cannot serve."""
    tiles = open_tiles(path)
    try:
        info = tiles.info
        west, south, east, north = info.bounds
        centre = ((west + east) / 2, (south + north) / 2)
        probe = _tile_at(info.minzoom, *centre)
        readable = tiles.tile(info.minzoom, *probe) is not None
    finally:
        tiles.close()
    if json_output:
        print_json({**info.model_dump(mode="json"), "centre_tile_found": readable})
        return
    console.print(f"{path}: {info.container}, {info.kind} {info.format} tiles", soft_wrap=True)
    table = Table(show_header=False)
    table.add_row("name", info.name or "–")
    if info.kind == "vector":
        schemas = {"openmaptiles": "OpenMapTiles", "protomaps": "Protomaps basemap"}
        table.add_row("vector layers", ", ".join(info.vector_layers))
        table.add_row("schema", schemas[info.schema_name] if info.schema_name else "not recognised")
    table.add_row("zoom levels", f"{info.minzoom} to {info.maxzoom}")
    table.add_row("south-west", f"{south:.5f}, {west:.5f}")
    table.add_row("north-east", f"{north:.5f}, {east:.5f}")
    table.add_row("tiles", "–" if info.tiles is None else f"{info.tiles:,}")
    table.add_row(
        "attribution", info.attribution or "none: say whose map it is (© OpenStreetMap contributors)"
    )
    table.add_row(
        "centre tile", f"{info.minzoom}/{probe[0]}/{probe[1]} " + ("found" if readable else "missing")
    )
    console.print(table)
    if info.warning:
        console.print(f"warning: {info.warning}", style="yellow", soft_wrap=True, markup=False)
    console.print(f"serve it: SAFECITY_MAP_TILES={path.resolve()} safecity serve", soft_wrap=True)


@app.command("roads")
@friendly_errors
def roads_command(
    path: Path = typer.Argument(..., help="A GeoJSON FeatureCollection of the city's roads (OSM ways)"),
    json_output: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """Say what a road file holds (nodes, edges, km by class, connected parts, bounds), or why not."""
    info = load_roads(path).info
    if json_output:
        print_json(info.model_dump(mode="json"))
        return
    west, south, east, north = info.bounds
    console.print(f"{path}: {info.roads:,} roads of {info.features:,} features", soft_wrap=True)
    table = Table(show_header=False)
    table.add_row("nodes", f"{info.nodes:,}")
    table.add_row("edges", f"{info.edges:,} (one per direction a car may drive)")
    for kind, km in info.km_by_class.items():
        table.add_row(f"km {kind}", f"{km:,.2f}")
    table.add_row(
        "connected parts", f"{info.components:,}, the largest {info.largest_share:.1%} of the nodes"
    )
    table.add_row("south-west", f"{south:.5f}, {west:.5f}")
    table.add_row("north-east", f"{north:.5f}, {east:.5f}")
    console.print(table)
    console.print(f"route with it: SAFECITY_ROAD_GRAPH={path.resolve()} safecity serve", soft_wrap=True)


def _tile_at(z: int, lon: float, lat: float) -> tuple[int, int]:
    """Returns the XYZ column and row of the tile holding a point at zoom z."""
    n = 2**z
    x = min(n - 1, max(0, int((lon + 180.0) / 360.0 * n)))
    rad = math.radians(lat)
    y = min(n - 1, max(0, int((1.0 - math.asinh(math.tan(rad)) / math.pi) / 2.0 * n)))
    return x, y
