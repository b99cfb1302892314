"""Votes the reads of one tracked vehicle across frames into one plate read.

A vehicle passing an ANPR camera is read in several frames, often differently (a character lost to
blur, an O taken for a 0). `PlateVoter` collects the reads per track and, when the track ends or
has not been seen for `timeout_s`, votes them character by character into one plate with a
confidence, keeps the sharpest crop, and says which way the vehicle moved.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from safecity.vision.plates.models import Box, PlateRead


@dataclass
class VotedPlate:
    """One vehicle's plate, voted from all its reads, with the best crop and its direction of travel."""

    track_id: Hashable
    plate: str
    confidence: float
    region: str
    box: Box
    crop: npt.NDArray[np.uint8] | None = field(repr=False)
    direction: str
    """`approaching` (plate grows or moves down the frame), `receding`, or `stationary`."""
    heading_deg: float | None
    """Direction of motion in the image, degrees clockwise from up (0 = up, 90 = right); None if still."""
    reads: int
    first_seen: float
    last_seen: float


@dataclass
class _Sighting:
    read: PlateRead
    time: float
    centre: tuple[float, float]


def _align(plate: str, length: int) -> str | None:
    """`plate` fitted to `length` by dropping one extra end character; None when it cannot be."""
    if len(plate) == length:
        return plate
    if len(plate) == length + 1:
        return plate[1:] if plate[0].isalpha() != plate[1].isalpha() else plate[:-1]
    return None


def vote(reads: list[PlateRead]) -> tuple[str, float, PlateRead]:
    """The plate voted from `reads`, its confidence (agreement times read confidence) and the best read.

    The length with the most confidence behind it wins; reads one character longer join the vote
    after dropping their stray end character; then each position takes the character with the
    most confidence behind it.
    """
    by_len: dict[int, float] = defaultdict(float)
    for r in reads:
        by_len[len(r.plate)] += r.confidence
    length = max(by_len, key=lambda k: (by_len[k], k))
    aligned = [(a, r) for r in reads if (a := _align(r.plate, length)) is not None]
    total = sum(r.confidence for r in reads) or 1.0
    chars: list[str] = []
    support: list[float] = []
    for i in range(length):
        weights: dict[str, float] = defaultdict(float)
        for a, r in aligned:
            weights[a[i]] += r.confidence
        ch = max(weights, key=lambda c: weights[c])
        chars.append(ch)
        support.append(weights[ch])
    plate = "".join(chars)
    agreeing = [r for a, r in aligned if a == plate] or [r for _, r in aligned]
    mean_conf = sum(r.confidence for r in agreeing) / len(agreeing)
    confidence = min(1.0, (sum(support) / length) / total) * mean_conf
    best = max(agreeing, key=lambda r: (r.confidence, r.box[2] * r.box[3]))
    return plate, round(confidence, 4), best


def direction_of(sightings: list[tuple[float, tuple[float, float], Box]]) -> tuple[str, float | None]:
    """Direction of travel from (time, centre, box) sightings: approaching/receding/stationary and heading."""
    if len(sightings) < 2:
        return "stationary", None
    first, last = sightings[0], sightings[-1]
    dx = last[1][0] - first[1][0]
    dy = last[1][1] - first[1][1]
    size0 = max(1.0, float(first[2][2]))
    size1 = max(1.0, float(last[2][2]))
    moved = math.hypot(dx, dy) > 0.5 * size0
    growth = size1 / size0
    heading = (math.degrees(math.atan2(dx, -dy)) % 360) if moved else None
    # The plate's apparent width is the surest sign: it grows as the vehicle nears the camera.
    if growth > 1.15:
        return "approaching", heading
    if growth < 1 / 1.15:
        return "receding", heading
    if not moved:
        return "stationary", None
    return ("approaching" if dy > 0 else "receding"), heading


class PlateVoter:
    """Collects plate reads per track and emits one voted read per vehicle.

    voter = PlateVoter(timeout_s=2.0)
    voter.add(track_id, read, frame_time, centre)
    for plate in voter.expire(now):
        publish(plate)
    """

    def __init__(self, timeout_s: float = 2.0, min_reads: int = 1) -> None:
        self.timeout_s = timeout_s
        self.min_reads = min_reads
        self._tracks: dict[Hashable, list[_Sighting]] = {}

    def add(
        self,
        track_id: Hashable,
        read: PlateRead,
        frame_time: float,
        centre: tuple[float, float] | None = None,
    ) -> None:
        """Record one read of a tracked vehicle; `centre` defaults to the plate box's centre."""
        if centre is None:
            x, y, w, h = read.box
            centre = (x + w / 2, y + h / 2)
        self._tracks.setdefault(track_id, []).append(_Sighting(read, frame_time, centre))

    def finish(self, track_id: Hashable) -> VotedPlate | None:
        """Close a track now (the tracker lost it) and return its voted plate, if it has enough reads."""
        sightings = self._tracks.pop(track_id, None)
        if not sightings or len(sightings) < self.min_reads:
            return None
        sightings.sort(key=lambda s: s.time)
        plate, confidence, best = vote([s.read for s in sightings])
        direction, heading = direction_of([(s.time, s.centre, s.read.box) for s in sightings])
        return VotedPlate(
            track_id=track_id,
            plate=plate,
            confidence=confidence,
            region=best.region,
            box=best.box,
            crop=best.crop,
            direction=direction,
            heading_deg=None if heading is None else round(heading, 1),
            reads=len(sightings),
            first_seen=sightings[0].time,
            last_seen=sightings[-1].time,
        )

    def expire(self, now: float) -> list[VotedPlate]:
        """Close and return every track not seen for `timeout_s` before `now`."""
        stale = [t for t, s in self._tracks.items() if now - max(x.time for x in s) >= self.timeout_s]
        return [v for t in stale if (v := self.finish(t)) is not None]

    def flush(self) -> list[VotedPlate]:
        """Close every open track (end of stream)."""
        return [v for t in list(self._tracks) if (v := self.finish(t)) is not None]

    @property
    def open_tracks(self) -> int:
        """How many tracks are collecting reads."""
        return len(self._tracks)
