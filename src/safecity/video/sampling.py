"""Which frames to analyse: each camera at its own rate, chosen by the frames' own timestamps."""

from __future__ import annotations


class Sampler:
    """Picks frames at `target_fps` by stream time, whatever rate the camera sends.

        sampler = Sampler(5.0)          # 5 of a 25 fps camera's frames each second
        wanted = [f for f in frames if sampler.take(f.pts_seconds)]

    Frames are taken on a fixed grid of due times, so the long-run rate is exact; a frame up to
    up to 15% of an interval early still counts, which absorbs jittery timestamps. A jump in time
    (a gap, or a camera that restarted its clock) restarts the grid at the next frame.
    """

    def __init__(self, target_fps: float | None) -> None:
        if target_fps is not None and target_fps <= 0:
            raise ValueError("target_fps must be positive, or None to take every frame")
        self.target_fps = target_fps
        self._interval = 1.0 / target_fps if target_fps else 0.0
        self._due: float | None = None

    def take(self, pts_seconds: float) -> bool:
        """Returns whether the frame at `pts_seconds` should be analysed."""
        if not self._interval:
            return True
        tolerance = self._interval * 0.15
        if (
            self._due is None
            or pts_seconds < self._due - 2 * self._interval
            or pts_seconds > self._due + 10 * self._interval
        ):
            self._due = pts_seconds + self._interval
            return True
        if pts_seconds + tolerance < self._due:
            return False
        # Stay on the grid, but never fall behind it by more than one interval.
        self._due = max(self._due + self._interval, pts_seconds + self._interval - tolerance)
        return True

    def reset(self) -> None:
        """Forgets the grid, so the next frame is taken (after a reconnection)."""
        self._due = None
