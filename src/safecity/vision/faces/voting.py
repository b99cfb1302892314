"""Vote across the frames of one tracked face before raising anything; one frame can lie."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FaceDecision:
    """The voted outcome for one track: the watch-list entry it matched, on how many frames, how well."""

    track_id: int
    entry_id: str
    similarity: float  # best similarity among the agreeing frames
    mean_similarity: float
    votes: int
    frames: int


@dataclass
class _Track:
    frames: int = 0
    votes: Counter[str] = field(default_factory=Counter)
    best: dict[str, float] = field(default_factory=dict)
    total: dict[str, float] = field(default_factory=dict)
    decided: bool = False
    last_seen: int = 0


class FaceVoter:
    """Decides, per tracked face, whether enough of its frames agree on one watch-list entry.

    The rule: feed every frame of a track, with its best entry and similarity (entry None when the
    frame matched nothing or its face was unusable). A track is decided for entry E on the first frame
    where (1) at least `min_votes` frames had E as best match at or above `threshold`, and (2) those
    frames are at least `min_share` of the track's frames so far that matched any entry, so a face
    that flips between two entries waits until one clearly leads. A track is decided once; later
    frames return None. Tracks not fed for `forget_after` updates are dropped.

    >>> voter = FaceVoter(threshold=0.9, min_votes=3)
    >>> for frame in frames:
    ...     decision = voter.update(track_id, entry_id, similarity)
    ...     if decision: publish(decision)
    """

    def __init__(
        self, *, threshold: float, min_votes: int = 3, min_share: float = 0.6, forget_after: int = 1000
    ) -> None:
        self.threshold = threshold
        self.min_votes = min_votes
        self.min_share = min_share
        self.forget_after = forget_after
        self._tracks: dict[int, _Track] = {}
        self._clock = 0

    def update(self, track_id: int, entry_id: str | None, similarity: float) -> FaceDecision | None:
        """Records one frame of a track; returns the decision on the frame that settles it, else None."""
        self._clock += 1
        track = self._tracks.setdefault(track_id, _Track())
        track.frames += 1
        track.last_seen = self._clock
        if self._clock % 256 == 0:
            self._forget_stale()
        if track.decided or entry_id is None or similarity < self.threshold:
            return None
        track.votes[entry_id] += 1
        track.best[entry_id] = max(track.best.get(entry_id, 0.0), similarity)
        track.total[entry_id] = track.total.get(entry_id, 0.0) + similarity
        votes = track.votes[entry_id]
        matched_frames = sum(track.votes.values())
        if votes >= self.min_votes and votes >= self.min_share * matched_frames:
            track.decided = True
            return FaceDecision(
                track_id=track_id,
                entry_id=entry_id,
                similarity=track.best[entry_id],
                mean_similarity=track.total[entry_id] / votes,
                votes=votes,
                frames=track.frames,
            )
        return None

    def end_track(self, track_id: int) -> None:
        """Forgets a track the tracker has closed."""
        self._tracks.pop(track_id, None)

    def _forget_stale(self) -> None:
        stale = [tid for tid, t in self._tracks.items() if self._clock - t.last_seen > self.forget_after]
        for track_id in stale:
            del self._tracks[track_id]
