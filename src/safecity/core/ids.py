"""Identifiers: time-ordered, URL-safe, unique across hosts."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
# Every 10-bit value as its two characters: one look-up per pair instead of two divisions.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


def new_id() -> str:
    """Returns a 26-character time-ordered id (48-bit milliseconds + 80 random bits, base32)."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    # 26 characters carry 130 bits: the first takes the top 3, twelve pairs the next 120, the last 5.
    out = [_ALPHABET[value >> 125]]
    out += [_PAIRS[(value >> shift) & 0x3FF] for shift in range(115, 4, -10)]
    out.append(_ALPHABET[value & 31])
    return "".join(out)
