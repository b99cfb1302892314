"""The map over HTTP: its description for the pages, the packaged base layer, the operator's tiles and,
for vector tiles, the MapLibre style that draws them.

Tiles are served under /map (not /api) so that browsers may keep them: they show streets, not people.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from safecity.accounts.api import current_principal
from safecity.accounts.service import Principal
from safecity.core.errors import InvalidInput, NotFound
from safecity.core.http import Ctx
from safecity.maps import basemap, style, tiles
from safecity.maps.models import MapOut, TilesOut

router = APIRouter(tags=["map"])

SignedIn = Annotated[Principal, Depends(current_principal)]
TILE_NAME = re.compile(r"^(\d{1,8})\.(png|jpg|webp|pbf)$")
GZIP_MAGIC = b"\x1f\x8b"
TILE_PATH = "/map/tiles/{z}/{x}/{y}"
CACHE = "private, max-age=86400"
BASE_ATTRIBUTION = f"Coast: Natural Earth · places: {basemap.NEIGHBOURHOOD_SOURCE}"


@router.get("/api/map", summary="Where the maps' tiles and base layer are and what they cover")
def map_description(ctx: Ctx, _: SignedIn) -> MapOut:
    """The configured tiles (or why they are not used) and the packaged base layer."""
    found, problem = tiles.configured(ctx.settings.map_tiles)
    tiles_out = None
    bounds = basemap.city_bounds()
    if found is not None:
        info = found.info
        tiles_out = TilesOut(
            url=f"{TILE_PATH}.{info.format}",
            minzoom=info.minzoom,
            maxzoom=info.maxzoom,
            bounds=info.bounds,
            attribution=info.attribution,
            kind=info.kind,
            style_url="/map/style.json" if info.kind == "vector" else None,
        )
        bounds = info.bounds
    return MapOut(
        tiles=tiles_out,
        problem=problem,
        base_url="/map/base.geojson",
        base_attribution=BASE_ATTRIBUTION,
        bounds=bounds,
    )


@router.get("/map/base.geojson", summary="The packaged base layer: the coast and neighbourhood names")
def base_layer(request: Request, _: SignedIn) -> Response:
    """GeoJSON land polygons and neighbourhood points, the same for every caller."""
    return _cached(request, basemap.base_layer_bytes(), "application/geo+json")


@router.get("/map/style.json", summary="The MapLibre style that draws the operator's vector tiles")
def vector_style(request: Request, ctx: Ctx, _: SignedIn) -> Response:
    """Land, water, parks, buildings, roads, railways and boundaries of the layers the file holds."""
    found, problem = tiles.configured(ctx.settings.map_tiles)
    if found is None or found.info.kind != "vector":
        raise NotFound(
            "this server has no vector map tiles",
            hint=problem or "set map_tiles (SAFECITY_MAP_TILES) to a vector .mbtiles or .pmtiles file",
        )
    # A path, not a URL: behind a proxy this server does not know the scheme and host the browser uses.
    # The page makes it absolute (citymap.js, transformRequest) before MapLibre's worker fetches it.
    body = json.dumps(style.style_for(found.info, tile_url=TILE_PATH + ".pbf"), separators=(",", ":"))
    return _cached(request, body.encode(), "application/json")


@router.get(
    "/map/tiles/{z}/{x}/{name}",
    summary="One tile of the operator's tiles file (XYZ numbering; the y is flipped for MBTiles)",
    responses={
        200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}, "application/x-protobuf": {}}},
        304: {},
    },
)
def tile(
    request: Request,
    ctx: Ctx,
    _: SignedIn,
    z: Annotated[int, Path(ge=0, le=tiles.MAX_ZOOM, description="Zoom level")],
    x: Annotated[int, Path(ge=0, description="Column from the west")],
    name: Annotated[str, Path(max_length=16, description="Row from the north and tile type, e.g. 1748.png")],
) -> Response:
    """One tile's image or vector tile (as stored: gzipped ones say so); 404 where the file has none."""
    match = TILE_NAME.match(name)
    if match is None:
        raise InvalidInput(
            f"'{name}' is not a tile name", hint="ask for {z}/{x}/{y}.png, .jpg, .webp or .pbf"
        )
    y, ext = int(match.group(1)), match.group(2)
    found, problem = tiles.configured(ctx.settings.map_tiles)
    if found is None:
        raise NotFound(
            "this server has no map tiles",
            hint=problem or "set map_tiles (SAFECITY_MAP_TILES) to an .mbtiles or .pmtiles file",
        )
    if ext != found.info.format:
        raise NotFound(
            f"the tiles are {found.info.format}, not {ext}", hint=f"ask for {y}.{found.info.format}"
        )
    data = found.tile(z, x, y)
    if data is None:
        raise NotFound(f"the map has no tile {z}/{x}/{y}", hint="beyond its area or zoom levels")
    encoding = "gzip" if ext == "pbf" and data.startswith(GZIP_MAGIC) else None
    return _cached(request, data, tiles.MEDIA_TYPES[ext], encoding=encoding)


def _cached(request: Request, body: bytes, media_type: str, *, encoding: str | None = None) -> Response:
    """Answers `body` with an ETag and a day's private caching, or 304 when the browser has it."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE}
    if encoding:
        headers["Content-Encoding"] = encoding
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)
