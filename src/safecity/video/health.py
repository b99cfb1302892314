"""Camera health: one state per camera, changed by what its frames show and by its connection.

    monitor = HealthMonitor("cam-17")
    for frame in source.frames():
        change = monitor.observe(frame)
        if change:
            publish(change.to_event())

States (`safecity.core.events.HealthState`): online, reconnecting, offline, frozen, covered,
out_of_focus, too_dark, moved, low_fps. Picture checks run on a small grey copy of at most one frame
per `check_interval_s` (key-frames are enough), and a fault must persist for `confirm_s` before it
is reported, so a bus passing the lens is not "covered". Each change carries the time the condition
began and the first frame that showed it. "moved" and "out_of_focus" compare with a reference view
learned from the first stable frames.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

import cv2
import numpy as np
import numpy.typing as npt

from safecity.core import keys
from safecity.core.clock import utcnow
from safecity.core.events import CameraHealth, HealthState
from safecity.video.sources import AuthenticationFailed, Frame, NotVideo, StreamCorrupt

_GRID = (6, 8)  # rows, columns of the cells compared with the reference for "covered"


@dataclass(frozen=True)
class HealthThresholds:
    """When each fault is declared; the defaults suit ordinary street cameras."""

    check_interval_s: float = 1.0  # look at the picture at most this often (stream seconds)
    confirm_s: float = 2.0  # a fault (or the recovery from one) must last this long to be reported
    offline_after_s: float = 6.0  # no picture for this long: offline
    frozen_after_s: float = 3.0  # an unchanging picture for this long: frozen
    frozen_diff: float = 0.4  # mean grey-level change below which two pictures count as identical
    dark_level: float = 35.0  # average brightness (0-255) below which the picture is too dark
    covered_share: float = 0.6  # share of the reference's textured cells gone blank: covered
    # Before the camera's own reference view is learned, only a nearly uniform picture counts:
    # asphalt seen from above or a blank wall is a low-texture scene, not a covered lens.
    covered_share_unreferenced: float = 0.95
    blank_cell_std: float = 6.0  # grey-level spread below which a cell counts as blank
    focus_ratio: float = 0.3  # sharpness below this share of the reference's: out of focus
    moved_shift: float = 0.03  # shift of the view, as a share of its width, that counts as moved
    moved_similarity: float = 0.4  # share of the reference's textured cells still matching, below: moved
    low_fps_ratio: float = 0.6  # measured frame rate below this share of the expected: low_fps
    fps_window_s: float = 3.0  # stream seconds over which the frame rate is measured
    reference_checks: int = 3  # stable checks needed to learn the reference view
    width: int = 480  # width of the grey copy the checks run on


@dataclass
class HealthChange:
    """A camera's health changed: the new state, why, since when, the evidence frame, the frame rate."""

    camera_id: str
    state: HealthState
    detail: str
    since: datetime
    evidence: npt.NDArray[np.uint8] | None = None
    fps: float | None = None
    previous: HealthState | None = None

    def to_event(self, frame_ref: str | None = None) -> CameraHealth:
        """Returns the bus event; `frame_ref` is where the caller stored the evidence frame."""
        return CameraHealth(
            key=keys.camera_health(self.camera_id, self.state, self.since),
            camera_id=self.camera_id,
            at=self.since,
            state=self.state,
            detail=self.detail,
            since=self.since,
            frame_ref=frame_ref,
            fps=self.fps,
        )


@dataclass
class _Candidate:
    """A state seen but not yet confirmed: when it began and the frame that first showed it."""

    state: HealthState
    detail: str
    since: datetime
    since_pts: float
    frame: Frame | None


@dataclass
class _Reference:
    """The camera's learned normal view: picture, sharpness and per-cell texture."""

    picture: npt.NDArray[np.float32]
    sharpness: float
    cell_std: npt.NDArray[np.float64]


def _cell_std(gray: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """Returns the grey-level spread of each cell of a grid laid over the picture."""
    rows, cols = _GRID
    h, w = gray.shape
    cells = gray[: h - h % rows, : w - w % cols].reshape(rows, h // rows, cols, w // cols)
    return np.asarray(cells.std(axis=(1, 3)), dtype=np.float64)


def _sharpness(gray: npt.NDArray[np.uint8]) -> float:
    """Returns the Laplacian's variance over the squared mean brightness: high when focused, low when blurred.

    Dividing by brightness keeps dusk (every edge dimmer, none softer) from looking like blur.
    """
    mean = max(float(gray.mean()), 1.0)
    return float(cv2.Laplacian(gray, cv2.CV_32F).var()) / (mean * mean)


def _smooth(gray: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Returns a blurred float copy, for comparisons that should ignore noise and small objects."""
    return np.asarray(cv2.GaussianBlur(gray.astype(np.float32), (0, 0), 2.0), np.float32)


def _similarity(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    """Returns the normalised correlation of two pictures (1: same view)."""
    a0, b0 = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt((a0 * a0).sum() * (b0 * b0).sum()))
    return float((a0 * b0).sum()) / denominator if denominator else 0.0


def _cells(picture: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Returns the picture cut into the grid's cells, one flattened cell per row."""
    rows, cols = _GRID
    h, w = picture.shape
    cells = picture[: h - h % rows, : w - w % cols].reshape(rows, h // rows, cols, w // cols)
    return cells.transpose(0, 2, 1, 3).reshape(rows * cols, -1)


def _cell_similarity(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Returns the normalised correlation of each grid cell of two pictures."""
    ca, cb = _cells(a), _cells(b)
    ca = ca - ca.mean(axis=1, keepdims=True)
    cb = cb - cb.mean(axis=1, keepdims=True)
    denominator = np.sqrt((ca * ca).sum(axis=1) * (cb * cb).sum(axis=1))
    return np.where(denominator > 0, (ca * cb).sum(axis=1) / np.maximum(denominator, 1e-9), 0.0)


class HealthMonitor:
    """Tracks one camera's health from its frames, its connection failures and the passing of time."""

    def __init__(
        self, camera_id: str, thresholds: HealthThresholds | None = None, *, expected_fps: float | None = None
    ) -> None:
        """`expected_fps` is the camera's normal rate; without it the first measured rate is used."""
        self.camera_id = camera_id
        self.t = thresholds or HealthThresholds()
        self.expected_fps = expected_fps
        self.state: HealthState = "offline"
        self.detail = "not connected yet"
        self.since = utcnow()
        self.fps: float | None = None
        self._reported = False
        self._candidate: _Candidate | None = None
        self._reference: _Reference | None = None
        self._learning: list[tuple[npt.NDArray[np.float32], float, npt.NDArray[np.float64]]] = []
        self._previous: npt.NDArray[np.uint8] | None = None
        self._frozen_since: float | None = None
        self._last_check_pts: float | None = None
        self._last_seen: datetime | None = None
        self._rate: deque[tuple[float, int]] = deque()

    # -- inputs ---------------------------------------------------------------------------------

    def observe(self, frame: Frame) -> HealthChange | None:
        """Takes one frame (any frame: the monitor samples what it needs); returns a change, if any."""
        self._last_seen = utcnow()
        self._measure_rate(frame)
        if self.state in ("offline", "reconnecting") or not self._reported:
            self._candidate = None
            self._previous, self._frozen_since, self._last_check_pts = None, None, None
            return self._set("online", "picture received", frame.wall_time, None)
        due = (
            self._last_check_pts is None
            or frame.pts_seconds - self._last_check_pts >= self.t.check_interval_s * 0.8
            or frame.pts_seconds < self._last_check_pts
        )
        if not due:
            return None
        self._last_check_pts = frame.pts_seconds
        state, detail = self._judge(frame)
        return self._consider(state, detail, frame)

    def observe_failure(self, error: Exception) -> HealthChange | None:
        """Takes a failure to connect or read; returns a change to reconnecting or offline, if any."""
        now = utcnow()
        words = str(error)
        permanent = isinstance(error, AuthenticationFailed | NotVideo | StreamCorrupt)
        self._candidate = None
        if permanent or self._last_seen is None or not self._reported:
            return self._set("offline", words, now, None, keep_since=self.state == "offline")
        if (now - self._last_seen).total_seconds() >= self.t.offline_after_s:
            return self._set(
                "offline",
                f"no picture for {self._silence(now)}: {words}",
                self._last_seen,
                None,
                keep_since=self.state == "offline",
            )
        if self.state == "reconnecting":
            return None
        return self._set("reconnecting", f"lost the stream, reconnecting: {words}", now, None)

    def tick(self, now: datetime | None = None) -> HealthChange | None:
        """Checks the passing of time: a camera silent for `offline_after_s` goes offline."""
        now = now or utcnow()
        if self._last_seen is None or self.state == "offline":
            return None
        if (now - self._last_seen).total_seconds() >= self.t.offline_after_s:
            return self._set("offline", f"no picture for {self._silence(now)}", self._last_seen, None)
        return None

    def reset_reference(self) -> None:
        """Forgets the reference view (after the camera was deliberately re-aimed or refocused)."""
        self._reference = None
        self._learning.clear()

    # -- judging a picture ----------------------------------------------------------------------

    def _measure_rate(self, frame: Frame) -> None:
        """Keeps the frame rate over the last `fps_window_s`, counting frames not decoded too."""
        rate = self._rate
        if rate and frame.pts_seconds < rate[-1][0]:
            rate.clear()  # the stream restarted its clock
        rate.append((frame.pts_seconds, frame.index))
        while len(rate) > 2 and frame.pts_seconds - rate[1][0] >= self.t.fps_window_s:
            rate.popleft()
        span = rate[-1][0] - rate[0][0]
        if span >= self.t.fps_window_s * 0.9:
            self.fps = (rate[-1][1] - rate[0][1]) / span
            if self.expected_fps is None and self.fps > 0:
                self.expected_fps = self.fps

    def _judge(self, frame: Frame) -> tuple[HealthState, str]:
        """Returns the state this frame's picture shows, with the reason in plain words."""
        t = self.t
        gray = frame.gray(t.width)
        brightness = float(gray.mean())
        cells = _cell_std(gray)
        previous, self._previous = self._previous, gray
        if brightness < t.dark_level:
            return "too_dark", f"picture is too dark (average brightness {brightness:.0f} of 255)"
        blank = cells < t.blank_cell_std
        ref = self._reference
        if ref is not None:
            textured = ref.cell_std >= 2 * t.blank_cell_std
            share = float((blank & textured).sum()) / max(1, int(textured.sum()))
            limit = t.covered_share
        else:
            share = float(blank.mean())
            limit = t.covered_share_unreferenced
        if share >= limit:
            return "covered", f"{share:.0%} of the picture is blank: lens covered or view obstructed"
        if (
            previous is not None
            and previous.shape == gray.shape
            and float(cv2.absdiff(previous, gray).mean()) < t.frozen_diff
        ):
            if self._frozen_since is None:
                self._frozen_since = frame.pts_seconds - t.check_interval_s
            still = frame.pts_seconds - self._frozen_since
            if still >= t.frozen_after_s - t.confirm_s:
                return "frozen", f"picture has not changed for {still:.0f} s"
        else:
            self._frozen_since = None
        sharpness = _sharpness(gray)
        smooth = _smooth(gray)
        if ref is None:
            self._learn(smooth, sharpness, cells)
            return self._rate_state()
        if sharpness < t.focus_ratio * ref.sharpness:
            return "out_of_focus", (
                f"picture is blurred: sharpness {sharpness / ref.sharpness:.0%} of the camera's normal view"
            )
        moved = self._moved(smooth, ref)
        if moved:
            return "moved", moved
        if self.state == "online":
            # Follow slow changes (dusk, seasons) so they are not mistaken for faults.
            ref.sharpness = 0.98 * ref.sharpness + 0.02 * sharpness
            ref.cell_std = 0.98 * ref.cell_std + 0.02 * cells
        return self._rate_state()

    def _rate_state(self) -> tuple[HealthState, str]:
        """Returns low_fps when the measured rate is well under the expected one, else online."""
        if self.fps is not None and self.expected_fps and self.fps < self.t.low_fps_ratio * self.expected_fps:
            return "low_fps", f"frame rate dropped to {self.fps:.1f} fps (normally {self.expected_fps:.0f})"
        return "online", "picture normal"

    def _learn(
        self, smooth: npt.NDArray[np.float32], sharpness: float, cells: npt.NDArray[np.float64]
    ) -> None:
        """Collects stable normal pictures; once enough agree, they become the reference view."""
        if self._learning and _similarity(self._learning[0][0], smooth) < 0.8:
            self._learning.clear()  # the view is still changing (camera settling, being aimed)
        self._learning.append((smooth, sharpness, cells))
        if len(self._learning) >= self.t.reference_checks:
            pictures, sharpnesses, cell_stds = zip(*self._learning, strict=True)
            self._reference = _Reference(
                picture=pictures[0],
                sharpness=float(np.median(sharpnesses)),
                cell_std=np.median(np.stack(cell_stds), axis=0),
            )
            self._learning.clear()

    def _moved(self, smooth: npt.NDArray[np.float32], ref: _Reference) -> str | None:
        """Returns why the view no longer matches the reference, or None if it still does."""
        height, width = smooth.shape
        window = cv2.createHanningWindow((width, height), cv2.CV_32F)
        # phaseCorrelate windows its inputs in place: give it copies, or the reference decays.
        (dx, dy), response = cv2.phaseCorrelate(ref.picture.copy(), smooth.copy(), window)
        shift = float(np.hypot(dx, dy))
        if response > 0.1 and shift >= self.t.moved_shift * width:
            return f"view shifted by {shift / width:.0%} of its width from the reference view"
        # Judged cell by cell: passing traffic changes a few cells, a moved camera changes them all.
        textured = ref.cell_std.reshape(-1) >= 2 * self.t.blank_cell_std
        if not textured.any():
            return None
        matching = float((_cell_similarity(ref.picture, smooth)[textured] >= 0.5).mean())
        if matching < self.t.moved_similarity:
            return f"view no longer matches the reference view (only {matching:.0%} of it still lines up)"
        return None

    # -- state changes --------------------------------------------------------------------------

    def _consider(self, state: HealthState, detail: str, frame: Frame) -> HealthChange | None:
        """Confirms a state once it has lasted long enough; returns the change when it does."""
        if state == self.state:
            self._candidate = None
            self.detail = detail
            return None
        candidate = self._candidate
        if candidate is None or candidate.state != state:
            start = frame.wall_time
            if state == "frozen" and self._frozen_since is not None:
                start -= timedelta(seconds=frame.pts_seconds - self._frozen_since)
            candidate = self._candidate = _Candidate(state, detail, start, frame.pts_seconds, frame)
        candidate.detail = detail
        if frame.pts_seconds - candidate.since_pts < self.t.confirm_s * 0.9:
            return None
        self._candidate = None
        evidence = candidate.frame.image.copy() if candidate.frame is not None and state != "online" else None
        return self._set(state, candidate.detail, candidate.since, evidence)

    def _set(
        self,
        state: HealthState,
        detail: str,
        since: datetime,
        evidence: npt.NDArray[np.uint8] | None,
        *,
        keep_since: bool = False,
    ) -> HealthChange | None:
        """Moves to `state`; returns the change unless nothing a person would notice changed."""
        if self._reported and state == self.state and (detail == self.detail or keep_since):
            return None
        previous = self.state if self._reported else None
        if not (keep_since and state == self.state):
            self.since = since
        self.state, self.detail, self._reported = state, detail, True
        return HealthChange(self.camera_id, state, detail, self.since, evidence, self.fps, previous)

    def _silence(self, now: datetime) -> str:
        """Returns how long the camera has been silent, in words."""
        assert self._last_seen is not None
        return f"{(now - self._last_seen).total_seconds():.0f} s"
