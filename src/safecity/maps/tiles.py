"""The operator's map tiles: raster or vector MBTiles (SQLite) or PMTiles files, read tile by tile.

`open_tiles(path)` checks a file and returns a `TileSet` that says what it holds (`TilesInfo`) and gives
one tile's bytes by web-map (XYZ) coordinates. Raster tiles are images Leaflet draws; vector tiles (MVT,
served as stored, usually gzipped) are drawn by MapLibre with the style in `maps/style.py`, which knows
the OpenMapTiles and Protomaps basemap layers. MapLibre Tiles (MLT) are refused.

    tiles = open_tiles(Path("karachi.mbtiles"))
    tiles.info.maxzoom, tiles.tile(12, 2810, 1748)
"""

from __future__ import annotations

import gzip
import json
import math
import mmap
import sqlite3
import threading
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from pydantic import BaseModel, Field

from safecity.core.errors import InvalidInput, NotFound
from safecity.maps.files import OperatorFile

RASTER = ("png", "jpg", "webp")
TileFormat = Literal["png", "jpg", "webp", "pbf"]
MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "pbf": "application/x-protobuf"}
MAX_ZOOM = 24
HINT = (
    "give a .mbtiles or .pmtiles file of raster (PNG, JPEG, WebP) or vector (MVT) tiles, e.g. an "
    "OpenMapTiles or Protomaps extract of the city: README, 'The map'"
)
# The layers that tell the two vector schemas apart (both also have `water` and `landuse`).
SCHEMA_LAYERS = {
    "openmaptiles": {"transportation", "building", "place", "landcover", "park", "boundary", "waterway"},
    "protomaps": {"roads", "buildings", "places", "earth", "natural", "boundaries", "pois", "transit"},
}
Schema = Literal["openmaptiles", "protomaps"]


class TilesInfo(BaseModel):
    """What a tiles file holds, from its metadata (or, where that is silent, from its tiles)."""

    path: str = Field(title="File", description="The tiles file, as configured.")
    container: Literal["mbtiles", "pmtiles"] = Field(title="Container", description="The file's format.")
    format: TileFormat = Field(
        title="Tile format", description="The tiles' image type, or pbf for vector tiles (MVT)."
    )
    kind: Literal["raster", "vector"] = Field(
        default="raster", title="Kind", description="Images, or vector tiles that MapLibre draws."
    )
    vector_layers: list[str] = Field(
        default_factory=list, title="Vector layers", description="The layers a vector tile set holds."
    )
    schema_name: Schema | None = Field(
        default=None,
        title="Schema",
        description="The vector layer schema recognised (OpenMapTiles or Protomaps basemap); None: unknown.",
    )
    warning: str | None = Field(default=None, title="Warning", description="What will not be drawn, if any.")
    name: str = Field(default="", title="Name", description="The tile set's name in its metadata.")
    attribution: str = Field(default="", title="Attribution", description="Credit the map must show.")
    minzoom: int = Field(ge=0, le=MAX_ZOOM, title="Lowest zoom")
    maxzoom: int = Field(ge=0, le=MAX_ZOOM, title="Highest zoom")
    bounds: tuple[float, float, float, float] = Field(
        title="Bounds", description="West, south, east, north in degrees (WGS 84)."
    )
    tiles: int | None = Field(default=None, ge=0, title="Tiles", description="How many tiles it holds.")


class TileSet(Protocol):
    """An open tiles file."""

    info: TilesInfo

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """Returns the tile at web-map coordinates z/x/y (y down from the north), None where none is."""

    def close(self) -> None:
        """Releases the file."""


def open_tiles(path: Path) -> TileSet:
    """Opens an MBTiles or PMTiles file by what its first bytes say; InvalidInput when it is neither."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(16)
    except FileNotFoundError:
        raise InvalidInput(f"map tiles file {path} does not exist", hint=HINT) from None
    except IsADirectoryError:
        raise InvalidInput(f"map tiles file {path} is a folder, not a file", hint=HINT) from None
    except OSError as exc:
        raise InvalidInput(f"map tiles file {path} cannot be read: {exc.strerror}", hint=HINT) from None
    if magic.startswith(b"SQLite format 3\x00"):
        return MbTiles(path)
    if magic.startswith(b"PMTiles"):
        return PmTiles(path)
    raise InvalidInput(f"{path} is neither MBTiles (SQLite) nor PMTiles", hint=HINT)


def check_coordinates(z: int, x: int, y: int) -> None:
    """Raises NotFound for a tile outside the grid or the file's zoom levels."""
    if not 0 <= z <= MAX_ZOOM or not (0 <= x < 2**z and 0 <= y < 2**z):
        raise NotFound(f"tile {z}/{x}/{y} is outside the map", hint="x and y run from 0 to 2^z - 1")


def _format(value: str, path: Path) -> TileFormat:
    """Returns the tile format `value` names (pbf for MVT); InvalidInput for MLT or anything else."""
    value = value.strip().lower()
    value = {"jpeg": "jpg", "mvt": "pbf"}.get(value, value)
    if value == "mlt":
        raise InvalidInput(
            f"{path} holds MapLibre Tiles (MLT); the console draws MVT vector tiles or raster tiles",
            hint="make the extract with MVT tiles (planetiler's default, or a Protomaps build)",
        )
    if value == "png":
        return "png"
    if value == "jpg":
        return "jpg"
    if value == "webp":
        return "webp"
    if value == "pbf":
        return "pbf"
    raise InvalidInput(f"{path} says its tiles are {value or 'of no format'}", hint=HINT)


def _vector_layers(metadata: dict[str, Any], path: Path) -> list[str]:
    """Returns the layer ids in `vector_layers` (TileJSON), at the top of the metadata or in its `json`."""
    layers = metadata.get("vector_layers")
    if layers is None and metadata.get("json"):
        try:
            inner = json.loads(str(metadata["json"]))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path} has a metadata 'json' that is not JSON: {exc}", hint=HINT) from None
        layers = inner.get("vector_layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list) or not layers:
        raise InvalidInput(
            f"{path} holds vector tiles but its metadata names no vector_layers",
            hint="make the file with a tool that writes TileJSON metadata (planetiler, tippecanoe, pmtiles)",
        )
    names = [str(layer.get("id", "")) for layer in layers if isinstance(layer, dict)]
    return [name for name in names if name]


def recognise(layers: list[str]) -> tuple[Schema | None, str | None]:
    """Returns the schema `layers` follow and, where none is recognised, a warning for the operator."""
    present = set(layers)
    scores = {schema: len(present & names) for schema, names in SCHEMA_LAYERS.items()}
    best = max(scores, key=lambda schema: scores[schema])
    if scores[best]:
        return ("openmaptiles" if best == "openmaptiles" else "protomaps"), None
    return None, (
        f"vector layers {', '.join(layers)} follow neither OpenMapTiles nor the Protomaps basemap: "
        "only recognised layers (e.g. water) are drawn"
    )


def _vector_info(info: TilesInfo, metadata: dict[str, Any], path: Path) -> TilesInfo:
    """Returns `info` with what a vector tile set's metadata says about its layers."""
    layers = _vector_layers(metadata, path)
    schema, warning = recognise(layers)
    return info.model_copy(
        update={"kind": "vector", "vector_layers": layers, "schema_name": schema, "warning": warning}
    )


def _bounds_of_rows(
    z: int, columns: tuple[int, int], rows: tuple[int, int]
) -> tuple[float, float, float, float]:
    """Returns west, south, east, north covered by a range of tile columns and XYZ rows at zoom z."""

    def lon(x: int) -> float:
        return x / 2**z * 360.0 - 180.0

    def lat(y: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / 2**z))))

    return (lon(columns[0]), lat(rows[1] + 1), lon(columns[1] + 1), lat(rows[0]))


class MbTiles:
    """An MBTiles file (https://github.com/mapbox/mbtiles-spec), opened read-only.

    MBTiles numbers rows from the south (TMS); the web map numbers them from the north, so a request's
    y is flipped: row = 2^z - 1 - y.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
            self.info = self._read_info()
        except sqlite3.DatabaseError as exc:
            raise InvalidInput(f"{path} is not an MBTiles file: {exc}", hint=HINT) from None

    def _read_info(self) -> TilesInfo:
        tables = {
            row[0]
            for row in self._db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
        }
        missing = {"metadata", "tiles"} - tables
        if missing:
            raise InvalidInput(
                f"{self.path} is an SQLite file without the MBTiles table(s) {', '.join(sorted(missing))}",
                hint=HINT,
            )
        meta = {str(k): str(v) for k, v in self._db.execute("SELECT name, value FROM metadata")}
        count, low, high = self._db.execute(
            "SELECT count(*), min(zoom_level), max(zoom_level) FROM tiles"
        ).fetchone()
        if not count:
            raise InvalidInput(f"{self.path} holds no tiles", hint=HINT)
        tile_format = _format(meta.get("format") or self._sniff(), self.path)
        minzoom = _zoom(meta.get("minzoom"), low, self.path)
        maxzoom = _zoom(meta.get("maxzoom"), high, self.path)
        bounds = _parse_bounds(meta.get("bounds"), self.path) or self._bounds_from_tiles(low)
        info = TilesInfo(
            path=str(self.path),
            container="mbtiles",
            format=tile_format,
            name=meta.get("name", ""),
            attribution=meta.get("attribution", ""),
            minzoom=minzoom,
            maxzoom=max(minzoom, maxzoom),
            bounds=bounds,
            tiles=int(count),
        )
        return _vector_info(info, meta, self.path) if tile_format == "pbf" else info

    def _sniff(self) -> str:
        """Returns the first tile's image type (older files leave `format` out of the metadata)."""
        (data,) = self._db.execute("SELECT tile_data FROM tiles LIMIT 1").fetchone()
        return _image_type(bytes(data))

    def _bounds_from_tiles(self, z: int) -> tuple[float, float, float, float]:
        x0, x1, r0, r1 = self._db.execute(
            "SELECT min(tile_column), max(tile_column), min(tile_row), max(tile_row) FROM tiles "
            "WHERE zoom_level = ?",
            (z,),
        ).fetchone()
        flip = 2**z - 1
        return _bounds_of_rows(z, (x0, x1), (flip - r1, flip - r0))

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        check_coordinates(z, x, y)
        with self._lock:
            row = self._db.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
                (z, x, 2**z - 1 - y),
            ).fetchone()
        return bytes(row[0]) if row else None

    def close(self) -> None:
        self._db.close()


class PmTiles:
    """A PMTiles v3 file (https://github.com/protomaps/PMTiles), mapped into memory.

    Raster tiles are served unpacked; vector tiles as stored (gzipped, as the HTTP answer says).
    """

    def __init__(self, path: Path) -> None:
        from pmtiles.reader import Reader

        self.path = path
        self._file: IO[bytes] = path.open("rb")
        try:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            self._reader = Reader(lambda offset, length: self._map[offset : offset + length])
            header = self._reader.header()
            metadata = self._reader.metadata()
        except Exception as exc:  # the reader raises bare errors of its own for a damaged file
            self._file.close()
            raise InvalidInput(f"{path} is not a readable PMTiles v3 file: {exc!r}", hint=HINT) from None
        try:
            self.info = self._read_info(header, metadata)
        except InvalidInput:
            self.close()
            raise

    def _read_info(self, header: dict[str, Any], metadata: dict[str, Any]) -> TilesInfo:
        from pmtiles.tile import Compression, TileType

        names = {TileType.PNG: "png", TileType.JPEG: "jpg", TileType.WEBP: "webp", TileType.MVT: "mvt"}
        tile_type = header["tile_type"]
        tile_format = _format(names.get(tile_type, str(tile_type.name).lower()), self.path)
        compression = header["tile_compression"]
        if tile_format == "pbf" and compression not in (Compression.GZIP, Compression.NONE):
            raise InvalidInput(
                f"{self.path} holds vector tiles compressed with {compression.name.lower()}; "
                "browsers take gzip",
                hint="convert it with gzip tiles, e.g. `pmtiles convert` of a planetiler MBTiles file",
            )
        # Vector tiles go to the browser as stored, saying they are gzipped; images are unpacked here.
        self._unpack = compression == Compression.GZIP and tile_format != "pbf"
        e7 = 10_000_000
        info = TilesInfo(
            path=str(self.path),
            container="pmtiles",
            format=tile_format,
            name=str(metadata.get("name", "")),
            attribution=str(metadata.get("attribution", "")),
            minzoom=header["min_zoom"],
            maxzoom=max(header["min_zoom"], header["max_zoom"]),
            bounds=(
                header["min_lon_e7"] / e7,
                header["min_lat_e7"] / e7,
                header["max_lon_e7"] / e7,
                header["max_lat_e7"] / e7,
            ),
            tiles=header["addressed_tiles_count"] or None,
        )
        return _vector_info(info, metadata, self.path) if tile_format == "pbf" else info

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        check_coordinates(z, x, y)
        data = self._reader.get(z, x, y)
        if not data:
            return None
        return gzip.decompress(data) if self._unpack else bytes(data)

    def close(self) -> None:
        self._map.close()
        self._file.close()


def _image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "pbf" if data[:2] == b"\x1f\x8b" else ""


def _zoom(value: str | None, seen: int, path: Path) -> int:
    """Returns a zoom level from metadata, else the one the tiles show; InvalidInput when out of range."""
    try:
        zoom = int(float(value)) if value else int(seen)
    except ValueError:
        raise InvalidInput(f"{path} has a zoom level '{value}' that is not a number", hint=HINT) from None
    if not 0 <= zoom <= MAX_ZOOM:
        raise InvalidInput(f"{path} has zoom level {zoom}; SafeCity serves 0 to {MAX_ZOOM}", hint=HINT)
    return zoom


def _parse_bounds(value: str | None, path: Path) -> tuple[float, float, float, float] | None:
    if not value:
        return None
    try:
        west, south, east, north = (float(part) for part in value.split(","))
    except ValueError:
        raise InvalidInput(
            f"{path} has bounds '{value}'; MBTiles bounds are 'west,south,east,north' in degrees", hint=HINT
        ) from None
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise InvalidInput(f"{path} has bounds '{value}' that enclose no area on the globe", hint=HINT)
    return (west, south, east, north)


_configured = OperatorFile(open_tiles, what="map tiles file")


def configured(path: Path | None) -> tuple[TileSet | None, str | None]:
    """Returns the configured tiles (kept open; reopened when the file changes) and what is wrong, if any.

    A bad file never stops the console: its maps fall back to the packaged base layer and say why.
    """
    return _configured.get(path)
