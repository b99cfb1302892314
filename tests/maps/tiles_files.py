"""Tiny tiles files the map tests make for themselves: each tile a PNG whose colour names its z/x/y."""

from __future__ import annotations

import io
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
