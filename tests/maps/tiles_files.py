"""Tiny tiles files the map tests make for themselves: each tile a PNG whose colour names its z/x/y."""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
from pathlib import Path

from PIL import Image


def tile_png(z: int, x: int, y: int) -> bytes:
    """A 256-pixel PNG coloured (z, x, y) * 40: which tile came back is read off its pixel."""
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), (z * 40, x * 40, y * 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def make_mbtiles(
    path: Path,
    tiles: list[tuple[int, int, int]],
    *,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Writes an MBTiles file holding `tiles` (XYZ z/x/y; stored with MBTiles' TMS rows)."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
    db.execute(
        "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)"
    )
    defaults = {"name": "test city", "format": "png", "attribution": "© test map makers"}
    db.executemany("INSERT INTO metadata VALUES (?, ?)", list({**defaults, **(metadata or {})}.items()))
    db.executemany(
        "INSERT INTO tiles VALUES (?, ?, ?, ?)",
        [(z, x, 2**z - 1 - y, tile_png(z, x, y)) for z, x, y in tiles],
    )
    db.commit()
    db.close()
    return path


def colour_of(png: bytes) -> tuple[int, int, int]:
    """The colour of a tile made by `tile_png`."""
    pixel = Image.open(io.BytesIO(png)).convert("RGB").getpixel((10, 10))
    assert isinstance(pixel, tuple)
    return (int(pixel[0]), int(pixel[1]), int(pixel[2]))


# Vector tiles: a hand-encoded Mapbox Vector Tile (https://github.com/mapbox/vector-tile-spec, v2), one
# feature per layer, so the tests need no encoder package.
OPENMAPTILES = {
    "water": {"class": "ocean"},
    "park": {"class": "park"},
    "building": {},
    "transportation": {"class": "primary"},
    "boundary": {"admin_level": "4"},
}
PROTOMAPS = {
    "earth": {"kind": "earth"},
    "water": {"kind": "ocean"},
    "buildings": {"kind": "building"},
    "roads": {"kind": "major_road", "kind_detail": "primary"},
    "places": {"kind": "neighbourhood", "name": "Saddar"},
}
EXTENT = 4096
POLYGON_LAYERS = {"water", "park", "building", "earth", "buildings", "landuse", "landcover"}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _packed(values: list[int]) -> bytes:
    return b"".join(_varint(v) for v in values)


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 31)


def _command(command: int, count: int) -> int:
    return command | count << 3


def mvt_tile(layers: dict[str, dict[str, str]]) -> bytes:
    """An MVT tile with one feature per layer: a square over the whole tile, or a diagonal road."""
    square = (
        [_command(1, 1), 0, 0, _command(2, 3)]
        + [_zigzag(d) for d in (EXTENT, 0, 0, EXTENT, -EXTENT, 0)]
        + [_command(7, 1)]
    )
    diagonal = [_command(1, 1), 0, _zigzag(EXTENT), _command(2, 1), _zigzag(EXTENT), _zigzag(-EXTENT)]
    tile = b""
    for name, properties in layers.items():
        keys, values = list(properties), list(properties.values())
        polygon = name in POLYGON_LAYERS
        feature = (
            _field(1, 1)
            + _field(2, _packed([n for i in range(len(keys)) for n in (i, i)]))
            + _field(3, 3 if polygon else 2)
            + _field(4, _packed(square if polygon else diagonal))
        )
        layer = (
            _field(15, 2)
            + _field(1, name.encode())
            + _field(2, feature)
            + b"".join(_field(3, key.encode()) for key in keys)
            + b"".join(_field(4, _field(1, value.encode())) for value in values)
            + _field(5, EXTENT)
        )
        tile += _field(3, layer)
    return tile


def make_vector_mbtiles(
    path: Path,
    tiles: list[tuple[int, int, int]],
    layers: dict[str, dict[str, str]],
    *,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Writes a vector MBTiles file as planetiler does: gzipped MVT tiles, `vector_layers` in `json`."""
    vector_layers = [
        {"id": name, "fields": {key: "String" for key in props}} for name, props in layers.items()
    ]
    defaults = {
        "name": "test city",
        "format": "pbf",
        "attribution": "© OpenStreetMap contributors",
        "json": json.dumps({"vector_layers": vector_layers}),
    }
    make_mbtiles(path, [], metadata={**defaults, **(metadata or {})})
    db = sqlite3.connect(path)
    data = gzip.compress(mvt_tile(layers), mtime=0)
    db.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)", [(z, x, 2**z - 1 - y, data) for z, x, y in tiles])
    db.commit()
    db.close()
    return path
