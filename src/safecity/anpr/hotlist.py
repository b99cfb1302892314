"""Matching plate reads against a hot list: exact, a few OCR look-alikes away, or one edit away.

An OCR engine mistakes O for 0, I for 1, B for 8 and so on, so a stolen car read as `LEA452I` must
still match `LEA4521`. Every plate gets a *class key* in which each look-alike character is replaced
by its class's canonical character; plates that differ only by look-alikes share a key, so one dict
look-up finds them however long the list. Edit distance 1 (a dropped, added or changed character)
uses a deletion neighbourhood: a plate and each of its one-character deletions index the plate, and
two plates one edit apart always share one of those keys.

    >>> index = HotlistIndex([("e1", "LEA4521")])
    >>> [(m.plate, m.kind, m.distance) for m in index.lookup("LEA452I", max_confusions=1)]
    [('LEA4521', 'confusion', 1)]
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

# Characters an OCR engine confuses on plates; each group maps to its first member.
CONFUSION_GROUPS: tuple[str, ...] = ("0ODQU", "1IJL", "2Z", "5S", "6G", "8B", "7T", "4A")

_CANON: dict[str, str] = {ch: group[0] for group in CONFUSION_GROUPS for ch in group}

MatchKind = Literal["exact", "confusion", "edit"]


def class_key(plate: str) -> str:
    """Returns the plate with every look-alike character replaced by its class's canonical one."""
    return "".join(_CANON.get(ch, ch) for ch in plate)


def _deletions(plate: str) -> set[str]:
    return {plate, *(plate[:i] + plate[i + 1 :] for i in range(len(plate)))}


def _within_one_edit(a: str, b: str) -> bool:
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


@dataclass(frozen=True)
class Match:
    """A listed plate a read matches: which entries hold it, how it matched and how many characters differ."""

    plate: str
    entry_ids: tuple[str, ...]
    kind: MatchKind
    distance: int


class HotlistIndex:
    """An in-memory index of listed plates answering exact, look-alike and one-edit queries in microseconds.

    Built from `(entry_id, plate)` pairs; several entries (lists) may hold one plate. The deletion
    neighbourhood for edit distance is built on first use only, since most installations leave it off.
    """

    def __init__(self, entries: Iterable[tuple[str, str]]) -> None:
        self._by_plate: dict[str, list[str]] = defaultdict(list)
        for entry_id, plate in entries:
            self._by_plate[plate].append(entry_id)
        self._by_key: dict[str, list[str]] = defaultdict(list)
        for plate in self._by_plate:
            self._by_key[class_key(plate)].append(plate)
        self._by_deletion: dict[str, list[str]] | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._by_plate)

    def lookup(self, plate: str, *, max_confusions: int = 1, edit_distance: bool = False) -> list[Match]:
        """Returns the listed plates `plate` matches, exact first, then look-alikes, then one-edit ones."""
        found: dict[str, Match] = {}
        if plate in self._by_plate:
            found[plate] = Match(plate, tuple(self._by_plate[plate]), "exact", 0)
        if max_confusions > 0:
            for listed in self._by_key.get(class_key(plate), ()):
                if listed in found or len(listed) != len(plate):
                    continue
                differ = sum(a != b for a, b in zip(listed, plate, strict=True))
                if differ <= max_confusions:
                    found[listed] = Match(listed, tuple(self._by_plate[listed]), "confusion", differ)
        if edit_distance:
            neighbours = self._deletion_index()
            for key in _deletions(plate):
                for listed in neighbours.get(key, ()):
                    if listed not in found and _within_one_edit(listed, plate):
                        found[listed] = Match(listed, tuple(self._by_plate[listed]), "edit", 1)
        order = {"exact": 0, "confusion": 1, "edit": 2}
        return sorted(found.values(), key=lambda m: (order[m.kind], m.distance, m.plate))

    def _deletion_index(self) -> dict[str, list[str]]:
        with self._lock:
            if self._by_deletion is None:
                index: dict[str, list[str]] = defaultdict(list)
                for plate in self._by_plate:
                    for key in _deletions(plate):
                        index[key].append(plate)
                self._by_deletion = index
            return self._by_deletion


class IndexCache:
    """Keeps one built index per database, rebuilt only when the hot list's revision token changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._indexes: dict[str, tuple[str, HotlistIndex]] = {}

    def get(self, database: str, token: str) -> HotlistIndex | None:
        """Returns the cached index for `database` if it was built at revision `token`."""
        with self._lock:
            cached = self._indexes.get(database)
        return cached[1] if cached and cached[0] == token else None

    def put(self, database: str, token: str, index: HotlistIndex) -> None:
        """Remembers the index built for `database` at revision `token`."""
        with self._lock:
            self._indexes[database] = (token, index)
