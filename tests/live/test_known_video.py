"""The single-camera sockets' shared list of cameras with video: read once per RECHECK_S for the whole
process, a stale list given while a fresh one is read, and nothing (not an error) when it cannot be."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from safecity.live import sockets


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the database reads; each returns the cameras with video as `answers` says next."""
    done: list[int] = []

    def watchable(ctx: Any) -> dict[str, bool]:
        done.append(1)
        answer = ctx.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    monkeypatch.setattr(sockets, "watchable", watchable)
    return done


class _Ctx:
    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)


async def test_sockets_opening_together_share_one_read_and_later_ones_the_same_list(reads: list[int]) -> None:
    known = sockets.KnownVideo(_Ctx({"cam-1": True}))  # type: ignore[arg-type]
    lists = await asyncio.gather(*(known.get() for _ in range(5)))
    assert lists == [{"cam-1": True}] * 5
    assert await known.get() == {"cam-1": True}
    assert len(reads) == 1


async def test_a_stale_list_is_given_while_a_fresh_one_is_read(
    reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    known = sockets.KnownVideo(_Ctx({"cam-1": True}, {"cam-1": True, "cam-2": False}))  # type: ignore[arg-type]
    assert await known.get() == {"cam-1": True}
    monkeypatch.setattr(sockets, "RECHECK_S", 0.0)
    assert await known.get() == {"cam-1": True}  # the old list at once; the new one is being read
    await asyncio.sleep(0.05)
    assert await known.get() == {"cam-1": True, "cam-2": False}


async def test_a_list_that_cannot_be_read_is_empty_and_read_again_next_time(reads: list[int]) -> None:
    known = sockets.KnownVideo(_Ctx(OSError("database is away"), {"cam-1": False}))  # type: ignore[arg-type]
    assert await known.get() == {}  # each camera's own check then decides, and says why
    assert await known.get() == {"cam-1": False}
    assert len(reads) == 2
