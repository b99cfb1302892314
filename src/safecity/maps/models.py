"""What the pages are told about the map: where its tiles and base layer are, and what they cover."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class TilesOut(BaseModel):
    """The operator's tiles, as a map library asks for them."""

    url: str = Field(title="Tile URL", description="Template with {z}, {x} and {y}, on this server.")
    minzoom: int = Field(title="Lowest zoom")
    maxzoom: int = Field(title="Highest zoom")
    bounds: tuple[float, float, float, float] = Field(title="Bounds", description="West, south, east, north.")
    attribution: str = Field(title="Attribution", description="Credit the map shows (e.g. OpenStreetMap's).")
    kind: Literal["raster", "vector"] = Field(
        default="raster", title="Kind", description="Images Leaflet draws, or vector tiles MapLibre draws."
    )
    style_url: str | None = Field(
        default=None, title="Style", description="For vector tiles: the MapLibre style that draws them."
    )


class MapOut(BaseModel):
    """The map every page draws: tiles where the operator gave a file, the packaged base layer always."""

    tiles: TilesOut | None = Field(title="Tiles", description="None: no tiles file, or a file that failed.")
    problem: str | None = Field(
        default=None, title="Problem", description="Why the configured tiles file is not used."
    )
    base_url: str = Field(title="Base layer", description="GeoJSON: the coast and neighbourhood names.")
    base_attribution: str = Field(title="Base layer attribution")
    bounds: tuple[float, float, float, float] = Field(
        title="Bounds", description="West, south, east, north the map shows when it has nothing to fit."
    )
