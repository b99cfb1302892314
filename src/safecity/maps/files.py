"""A file the operator gives (map tiles, a road graph): read once, read again when it changes.

    roads = OperatorFile(load_roads, what="road graph")
    graph, problem = roads.get(settings.road_graph)   # (None, None) when no file is set

A file that cannot be read never stops the console: `get` gives None and the reason (the InvalidInput's
words), logged once per version of the file, so the caller falls back and says why.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from safecity.core.errors import InvalidInput

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class _Read(Generic[T]):
    stamp: float
    value: T | None
    problem: str | None


class OperatorFile(Generic[T]):
    """What `load` makes of each configured path, kept until the file's modification time changes."""

    def __init__(self, load: Callable[[Path], T], *, what: str) -> None:
        self.load, self.what = load, what
        self._read: dict[str, _Read[T]] = {}
        self._lock = threading.Lock()

    def get(self, path: Path | None) -> tuple[T | None, str | None]:
        """Returns the file's value and None, or None and what is wrong with it; (None, None) for no file.

        The value read before is not closed here when the file changes: a request may still be using it.
        """
        if path is None:
            return None, None
        try:
            stamp = path.stat().st_mtime
        except OSError:
            stamp = -1.0
        with self._lock:
            known = self._read.get(str(path))
            if known is None or known.stamp != stamp:
                try:
                    known = _Read(stamp, self.load(path), None)
                except InvalidInput as exc:
                    known = _Read(stamp, None, str(exc))
                    log.warning("%s %s not used: %s", self.what, path, exc)
                self._read[str(path)] = known
            return known.value, known.problem
