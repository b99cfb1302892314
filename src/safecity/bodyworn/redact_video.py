"""Writing a redacted copy of a recording: every frame decoded, what the plan hides pixelated, H.264 again.

Frames are decided `lookahead` frames after they are decoded, so a face is hidden from a while before
the detector first finds it (`vision/redaction.RegionTimeline`). Boxes a person drew follow their
object from T0 to T1 (OpenCV's MIL tracker). The sound is copied as it is, or, where ranges are to
be muted, decoded, silenced over those ranges (to the sample) and encoded again as AAC; either way it
keeps its place beside the picture (sound that starts after the first frame still does). Frames are
redacted as stored (decoded, never turned), and the copy gets the original's display matrix exactly,
so a recording made on its side or mirrored plays as the original does. The source is only read;
the copy is written to `target`, which the caller puts into the store.

    result = redact(Path("original.mp4"), Path("redacted.mp4"), Plan(faces=FaceFinder()), progress=print)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import supervision as sv

from safecity.core.errors import InvalidInput
from safecity.video.display import IDENTITY, Matrix, display_matrix, set_matrix, stored_box
from safecity.vision.objects import ObjectTracker
from safecity.vision.redaction import (
    Boxes,
    BoxFollower,
    FaceFinder,
    FacesAhead,
    PlateFinder,
    RegionTimeline,
    pixelate,
)

HOLD_S = 0.4
"""How long a face or plate stays hidden before its first detection and after its last."""

FACE_PAD = 2.0
"""Faces are hidden in a box this much wider than the detector's: the whole head, hair and ears, so that
what is left is a square of blocks, not a head-shaped blob (a pixelated head in a 1.6× box still scored
as a face for BlazeFace on the shared walking clip)."""

FACE_UP = 0.15
"""…and centred this share of the face's height higher (the detector's box starts at the brows)."""

PLATE_PAD = 1.3
"""Plates: the text detector's box is tight on the characters."""

FACE_WORKERS = 2
"""Threads the face finder searches frames in, ahead of the tracker (one core each)."""

PRESET = "ultrafast"
"""x264's speed: the copy is made at least as fast as it plays (bench_evidence.py); it is larger for it."""

COPY_AUDIO = {"aac", "mp3", "mp3float", "ac3", "eac3", "opus", "alac"}
"""Sound codecs an MP4 takes as they are; others (PCM from AVI) are encoded again as AAC."""


@dataclass(frozen=True)
class TimedBox:
    """A box a person drew (x, y, w, h in frame pixels at t0) to hide from t0 to t1 seconds; `shown`:
    pixels of the picture as a player shows it (turned, mirrored), not as stored."""

    t0: float
    t1: float
    box: tuple[float, float, float, float]
    follow: bool = True
    shown: bool = False

    def stored(self, matrix: Matrix, width: int, height: int) -> TimedBox:
        """Returns the box in the stored picture's pixels."""
        if not self.shown:
            return self
        return TimedBox(self.t0, self.t1, stored_box(self.box, matrix, width, height), self.follow)


@dataclass
class Plan:
    """What to hide: faces and plates (finders), drawn boxes, and sound ranges (seconds) to silence."""

    faces: FaceFinder | None = None
    plates: PlateFinder | None = None
    boxes: list[TimedBox] = field(default_factory=list)
    mutes: list[tuple[float, float]] = field(default_factory=list)
    # Blocks across a box's longer side: few and large, so no face-like layout survives (6 left faces a
    # detector still found on the shared walking clip; 3 none).
    cells: int = 3


@dataclass(frozen=True)
class Result:
    """What the rewrite did."""

    frames: int
    width: int
    height: int
    fps: float
    faces_hidden: int
    plates_hidden: int
    boxes_hidden: int
    video_codec: str
    audio: str
    rotation: float = 0.0
    matrix: Matrix = IDENTITY


Progress = Callable[[int, int], None]
Hidden = Callable[[int, Boxes], None]


def video_encoder() -> str:
    """Returns the H.264 encoder PyAV's FFmpeg has (libx264, else another H.264, else MPEG-4 part 2)."""
    for name in ("libx264", "libopenh264", "h264"):
        if name in av.codecs_available:
            return name
    return "mpeg4"


def _seconds(pts: int | None, start: int, time_base: Fraction | None, fallback: float) -> float:
    if pts is None or time_base is None:
        return fallback
    return float((pts - start) * time_base)


class _Followers:
    """The drawn boxes: each starts following its object at its first frame from t0, ends after t1."""

    def __init__(self, boxes: list[TimedBox]) -> None:
        self.boxes = boxes
        self.live: dict[int, BoxFollower] = {}

    def at(self, t: float, image: npt.NDArray[np.uint8]) -> list[npt.NDArray[np.float32]]:
        found = []
        for i, timed in enumerate(self.boxes):
            if t + 1e-6 < timed.t0 or t > timed.t1 + 1e-6:
                self.live.pop(i, None)
                continue
            follower = self.live.get(i)
            if follower is None:
                follower = self.live[i] = BoxFollower(timed.box, follow=timed.follow)
            found.append(follower.update(image))
        return found


class _Writer:
    """Encodes and muxes in a thread of its own, in order, while the caller decodes and detects.

    ONNX Runtime and x264 both let go of the interpreter, so detection and encoding share two cores.
    At most `ahead` calls wait; the first failure is raised to the caller at its next call or at close.
    """

    def __init__(self, ahead: int = 8) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="redact-write")
        self._waiting: deque[Future[Any]] = deque()
        self.ahead = ahead

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._waiting.append(self._pool.submit(fn, *args))
        while len(self._waiting) > self.ahead or (self._waiting and self._waiting[0].done()):
            self._waiting.popleft().result()

    def close(self) -> None:
        try:
            while self._waiting:
                self._waiting.popleft().result()
        finally:
            for future in self._waiting:
                future.cancel()
            self._pool.shutdown(wait=True)


@dataclass
class _Pending:
    index: int
    t: float
    pts: int | None
    image: npt.NDArray[np.uint8]
    drawn: list[npt.NDArray[np.float32]]


def _silence(frame: av.AudioFrame, t: float, mutes: list[tuple[float, float]]) -> av.AudioFrame:
    """Returns the audio frame with the samples inside any mute range set to silence."""
    rate = frame.sample_rate
    end = t + frame.samples / rate
    ranges = [(a, b) for a, b in mutes if a < end and b > t]
    if not ranges:
        return frame
    samples = frame.to_ndarray()
    planar = frame.format.is_planar
    channels = len(frame.layout.channels)
    quiet = 128 if frame.format.name.startswith("u8") else 0
    for a, b in ranges:
        first = max(0, math.floor((a - t) * rate))
        last = min(frame.samples, math.ceil((b - t) * rate))
        if planar:
            samples[:, first:last] = quiet
        else:
            samples[:, first * channels : last * channels] = quiet
    quiet_frame = av.AudioFrame.from_ndarray(samples, format=frame.format.name, layout=frame.layout.name)
    quiet_frame.sample_rate, quiet_frame.pts, quiet_frame.time_base = rate, frame.pts, frame.time_base
    return quiet_frame


def redact(
    source: Path,
    target: Path,
    plan: Plan,
    *,
    progress: Progress | None = None,
    hidden: Hidden | None = None,
    crf: int = 23,
) -> Result:
    """Writes `source` with what `plan` hides pixelated to `target` (MP4, H.264); returns what it did.

    `hidden(frame, boxes)`, if given, is told the boxes pixelated in each frame (a check of the copy).
    Raises InvalidInput for a source PyAV cannot read as video; OSError (a full disk) passes through.
    """
    try:
        inp = av.open(str(source), metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise InvalidInput(
            f"{source.name} is not a video PyAV can read ({exc})", hint="is it a recording?"
        ) from None
    with inp:
        if not inp.streams.video:
            raise InvalidInput(f"{source.name} holds no video stream", hint="is it an audio file or a photo?")
        try:
            return _rewrite(inp, target, plan, progress, hidden, crf)
        except av.FFmpegError as exc:
            raise InvalidInput(
                f"{source.name} could not be redacted ({exc})", hint="is the original damaged?"
            ) from None


def _rewrite(
    inp: Any, target: Path, plan: Plan, progress: Progress | None, hidden: Hidden | None, crf: int
) -> Result:
    video_in = inp.streams.video[0]
    video_in.thread_type = "AUTO"
    rate = video_in.average_rate or video_in.guessed_rate or Fraction(25)
    fps = float(rate)
    total = video_in.frames or (round(float(inp.duration) / 1e6 * fps) if inp.duration else 0)
    hold = max(3, round(HOLD_S * fps))
    faces = RegionTimeline(hold_before=hold, hold_after=hold, max_gap=hold, pad=FACE_PAD, up=FACE_UP)
    plates = RegionTimeline(hold_before=hold, hold_after=hold, max_gap=hold, pad=PLATE_PAD)
    # Low IoU to continue a track: a face close to a moving camera moves far between frames.
    face_tracker = ObjectTracker(fps=fps, lost_seconds=HOLD_S, min_iou=0.1)
    if plan.plates is not None:
        plan.plates.for_rate(fps)
    plate_tracker = ObjectTracker(
        fps=fps / plan.plates.every if plan.plates else fps, lost_seconds=HOLD_S, min_iou=0.1
    )
    followers = _Followers([])  # the drawn boxes, placed on the stored picture at the first frame
    codec = video_encoder()
    counts = {"faces": 0, "plates": 0, "boxes": 0}
    rotation, matrix = 0.0, IDENTITY
    with av.open(str(target), "w", format="mp4") as out:
        video_out: Any = out.add_stream(codec, rate=rate)
        video_out.width = video_in.codec_context.width // 2 * 2
        video_out.height = video_in.codec_context.height // 2 * 2
        video_out.pix_fmt = "yuv420p"
        time_base = video_in.time_base or Fraction(1, 90000)
        video_out.time_base = time_base
        if codec == "libx264":
            video_out.options = {"preset": PRESET, "crf": str(crf)}
        audio_in = inp.streams.audio[0] if inp.streams.audio else None
        audio_out: Any = None
        audio_mode = "none"
        if audio_in is not None:
            if not plan.mutes and audio_in.codec_context.name in COPY_AUDIO:
                audio_out, audio_mode = out.add_stream_from_template(audio_in), "copied"
            else:
                audio_out = out.add_stream("aac", rate=audio_in.codec_context.sample_rate or 48000)
                audio_out.layout = (
                    audio_in.codec_context.layout.name if audio_in.codec_context.layout else "stereo"
                )
                audio_mode = "muted" if plan.mutes else "aac"
        video_start = video_in.start_time if video_in.start_time is not None else 0
        origin = float(video_start * time_base)  # the first picture: where the recording's clock starts
        pending: deque[_Pending] = deque()
        state = {"written": 0, "last_pts": -1}
        writer = _Writer()
        # Plate searches run in a thread of their own beside the face finder (ONNX Runtime lets go of
        # the interpreter), so a frame waits `every` frames more before it is written: by then its
        # search and those of the frames it looks ahead to are done.
        searcher = ThreadPoolExecutor(1, thread_name_prefix="redact-plates") if plan.plates else None
        searching: deque[tuple[int, Future[sv.Detections]]] = deque()
        # Faces are searched in FACE_WORKERS threads, a frame each, ahead of the tracker, which takes
        # their finds in frame order: a frame waits twice as many frames more, so both keep busy.
        finder = FacesAhead(plan.faces, workers=FACE_WORKERS) if plan.faces else None
        finding: deque[tuple[int, Future[sv.Detections]]] = deque()
        lookahead = hold + max(plan.plates.every if plan.plates else 0, 2 * FACE_WORKERS if finder else 0)

        def collect(upto: int) -> None:
            while finding and finding[0][0] <= upto:
                at, found = finding.popleft()
                faces.add(at, face_tracker.update(found.result()))
            while searching and searching[0][0] <= upto:
                at, search = searching.popleft()
                plates.add(at, plate_tracker.update(search.result()))

        def encode(image: npt.NDArray[np.uint8], hidden: Boxes, pts: int) -> None:
            picture = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(
                    pixelate(image, hidden, cells=plan.cells)[: video_out.height, : video_out.width]
                ),
                format="rgb24",
            )
            picture.pts, picture.time_base = pts, time_base
            for packet in video_out.encode(picture):
                out.mux(packet)
            state["written"] += 1
            if progress is not None:
                progress(state["written"], max(total, state["written"]))

        def encode_rest() -> None:
            for packet in video_out.encode():
                out.mux(packet)

        def encode_sound(frame: av.AudioFrame | None) -> None:
            for packet in audio_out.encode(frame):
                out.mux(packet)

        def write(item: _Pending) -> None:
            boxes = [faces.boxes(item.index), plates.boxes(item.index)]
            if item.drawn:
                boxes.append(np.stack(item.drawn).astype(np.float32))
            hide = np.concatenate(boxes) if any(len(b) for b in boxes) else np.zeros((0, 4), np.float32)
            if hidden is not None:
                hidden(item.index, hide)
            counts["faces"] += len(boxes[0])
            counts["plates"] += len(boxes[1])
            counts["boxes"] += len(item.drawn)
            pts = item.pts if item.pts is not None else round(item.t / float(time_base))
            pts = max(pts, state["last_pts"] + 1)
            state["last_pts"] = pts
            writer.submit(encode, item.image, hide, pts)

        index = 0
        sound_at = (
            _seconds(audio_in.start_time, 0, audio_in.time_base, origin) - origin
            if audio_in is not None
            else 0.0
        )
        try:
            for packet in inp.demux(*[s for s in (video_in, audio_in) if s is not None]):
                if packet.stream.type == "audio":
                    if audio_mode == "copied":
                        if packet.dts is not None:
                            packet.stream = audio_out
                            writer.submit(out.mux, packet)
                    elif audio_out is not None:
                        for frame in packet.decode():
                            # Mute ranges are on the picture's clock, as boxes are; the frame keeps its
                            # own time, so sound that starts later than the picture still does.
                            t = _seconds(frame.pts, 0, frame.time_base, sound_at + origin) - origin
                            sound_at = t + frame.samples / frame.sample_rate
                            writer.submit(encode_sound, _silence(frame, t, plan.mutes))
                    continue
                for frame in packet.decode():
                    t = _seconds(frame.pts, video_start, frame.time_base, index / fps)
                    if index == 0:
                        rotation, matrix = float(frame.rotation or 0.0), display_matrix(frame)
                        followers = _Followers(
                            [b.stored(matrix, frame.width, frame.height) for b in plan.boxes]
                        )
                    image = frame.to_ndarray(format="rgb24")
                    if finder is not None:
                        finding.append((index, finder.submit(index, image)))
                    if searcher is not None and plan.plates is not None and plan.plates.due(index):
                        searching.append((index, searcher.submit(plan.plates.find, index, image)))
                    pending.append(_Pending(index, t, frame.pts, image, followers.at(t, image)))
                    if len(pending) > lookahead:
                        collect(pending[0].index + hold)
                        write(pending.popleft())
                        faces.forget(pending[0].index)
                        plates.forget(pending[0].index)
                    index += 1
            while pending:
                collect(pending[0].index + hold)
                write(pending.popleft())
            writer.submit(encode_rest)
            if audio_out is not None and audio_mode != "copied":
                writer.submit(encode_sound, None)
        finally:
            if finder is not None:
                finder.close()
            if searcher is not None:
                searcher.shutdown(wait=True, cancel_futures=True)
            writer.close()
    if state["written"] == 0:
        raise InvalidInput(
            f"{Path(inp.name).name} has a video stream but no frame could be decoded", hint="damaged?"
        )
    if matrix != IDENTITY:
        set_matrix(target, matrix)
    return Result(
        frames=state["written"],
        width=video_out.width,
        height=video_out.height,
        fps=round(fps, 3),
        faces_hidden=counts["faces"],
        plates_hidden=counts["plates"],
        boxes_hidden=counts["boxes"],
        video_codec=codec,
        audio=audio_mode,
        rotation=rotation,
        matrix=matrix,
    )
