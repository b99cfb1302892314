"""Ids: 26 base32 characters, ordered by time, the same encoding as a plain division would give."""

from __future__ import annotations

import random
import time

from safecity.core import ids


def _by_division(value: int) -> str:
    chars = []
    for _ in range(26):
        value, rem = divmod(value, 32)
        chars.append(ids._ALPHABET[rem])
    return "".join(reversed(chars))


def test_ids_encode_time_then_randomness_in_base32(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    for _ in range(2000):
        millis, noise = rng.getrandbits(48), rng.getrandbits(80)
        monkeypatch.setattr(ids.time, "time", lambda m=millis: m / 1000 + 0.0001)
        monkeypatch.setattr(ids.os, "urandom", lambda n, v=noise: v.to_bytes(n, "big"))
        assert ids.new_id() == _by_division((millis << 80) | noise)


def test_ids_sort_by_time_and_do_not_repeat() -> None:
    first = [ids.new_id() for _ in range(1000)]
    time.sleep(0.002)
    later = ids.new_id()
    assert len(set(first)) == 1000 and all(len(i) == 26 for i in first)
    assert all(later > i for i in first)
