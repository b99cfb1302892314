"""A time stamp drawn into a picture as blocks, to measure glass-to-glass latency of live video.

The synthetic cameras draw it when asked (`synthetic://…?stamp=1`); the benchmark reads it back from
the video the browser shows (bench/bench_live.py) and compares it with the browser's clock. 32 bits of
wall-clock milliseconds (modulo 2^32, about 49 days) and an 8-bit check, as two rows of twenty black or
white 16-pixel blocks in the top-left corner: large enough to survive H.264 at any sane quality.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BLOCK = 16
COLUMNS = 20
BITS = 40


def _bits(ms: int) -> list[int]:
    value = ms & 0xFFFFFFFF
    check = _check(value)
    word = (value << 8) | check
    return [(word >> (BITS - 1 - i)) & 1 for i in range(BITS)]


def stamp(image: npt.NDArray[np.uint8], ms: int) -> None:
    """Draws `ms` (wall-clock milliseconds) into the top-left corner of a BGR picture, in place."""
    for i, bit in enumerate(_bits(ms)):
        row, column = divmod(i, COLUMNS)
        y, x = row * BLOCK, column * BLOCK
        image[y : y + BLOCK, x : x + BLOCK] = 255 if bit else 0


def read(image: npt.NDArray[np.uint8]) -> int | None:
    """Returns the milliseconds (modulo 2^32) stamped in a BGR picture, or None when it does not check."""
    half = BLOCK // 2
    word = 0
    for i in range(BITS):
        row, column = divmod(i, COLUMNS)
        pixel = image[row * BLOCK + half, column * BLOCK + half]
        word = (word << 1) | int(int(np.mean(pixel)) >= 128)
    value, check = word >> 8, word & 0xFF
    return value if _check(value) == check else None


def _check(value: int) -> int:
    # Offset so that an all-black (or all-white) corner never reads as a valid stamp.
    return (sum(value.to_bytes(4, "big")) + 0xA5) & 0xFF
