"""Helpers of the redaction tests: a clip with a moving textured square and a tone, and reading it back."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

FPS = 15
SIZE = (320, 240)
SQUARE = 48
TONE_HZ = 440.0
RATE = 48000


def square_at(index: int) -> tuple[int, int]:
    """Returns the top-left corner of the moving square in frame `index` (it crosses left to right)."""
    return 20 + 4 * index, 90 + (index % 10)


def checkerboard(side: int, cell: int = 4) -> npt.NDArray[np.uint8]:
    """Returns a black-and-white checkerboard: the finest detail a pixelation must remove."""
    ys, xs = np.indices((side, side))
    board = (((ys // cell) + (xs // cell)) % 2 * 255).astype(np.uint8)
    return np.dstack([board, board, board])


def make_clip(path: Path, *, seconds: float = 3.0, audio: bool = True, sound_from: float = 0.0) -> Path:
    """Encodes an MP4 (H.264; AAC, a 440 Hz tone from `sound_from` seconds after the first picture to the
    end): a checkerboard square moving over a smooth ground."""
    width, height = SIZE
    ground = np.dstack(
        [
            np.tile(np.linspace(40, 120, width, dtype=np.float32), (height, 1)),
            np.full((height, width), 70, np.float32),
            np.tile(np.linspace(90, 50, height, dtype=np.float32)[:, None], (1, width)),
        ]
    ).astype(np.uint8)
    board = checkerboard(SQUARE)
    frames = round(seconds * FPS)
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "12"}
        sound = out.add_stream("aac", rate=RATE) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for index in range(frames):
            image = ground.copy()
            x, y = square_at(index)
            image[y : y + SQUARE, x : x + SQUARE] = board
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        if sound is not None:
            t = np.arange(round((seconds - sound_from) * RATE)) / RATE
            tone = (0.5 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
            for start in range(0, len(tone), 1024):
                chunk = tone[start : start + 1024][None, :]
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
                frame.sample_rate, frame.pts = RATE, start + round(sound_from * RATE)
                for packet in sound.encode(frame):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    return path


def frames_of(path: Path) -> list[tuple[float, npt.NDArray[np.uint8]]]:
    """Returns every frame of a video with its time in seconds from the start."""
    found = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        for frame in container.decode(stream):
            found.append((float((frame.pts - start) * stream.time_base), frame.to_ndarray(format="rgb24")))
    return found


def detail(image: npt.NDArray[np.uint8], x: int, y: int, side: int = SQUARE, inset: int = 6) -> float:
    """Returns the mean difference between horizontal neighbours inside a square (a checkerboard: ~60)."""
    region = image[y + inset : y + side - inset, x + inset : x + side - inset].astype(np.int16)
    return float(np.abs(np.diff(region, axis=1)).mean())


def checker_edges(image: npt.NDArray[np.uint8], x: int, y: int, side: int = SQUARE, inset: int = 6) -> int:
    """Returns how many sharp black-white steps (over 120 levels) lie inside the square: a checkerboard
    has hundreds; solid pixelation blocks, whose neighbours differ less, none."""
    region = image[y + inset : y + side - inset, x + inset : x + side - inset].astype(np.int16)
    return int((np.abs(np.diff(region, axis=1)) > 120).sum())


def sound_of(path: Path) -> tuple[npt.NDArray[np.float32], int]:
    """Returns the first audio channel as float samples from the stream's start, and the sample rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [frame.to_ndarray()[0].astype(np.float32) for frame in container.decode(stream)]
        return np.concatenate(chunks), stream.codec_context.sample_rate


def rms(samples: npt.NDArray[np.float32], rate: int, t0: float, t1: float) -> float:
    """Returns the loudness of the sound from t0 to t1 seconds."""
    part = samples[round(t0 * rate) : round(t1 * rate)]
    return float(np.sqrt(np.mean(part.astype(np.float64) ** 2)))


def sound_on_picture_clock(path: Path) -> tuple[npt.NDArray[np.float32], int, float]:
    """Returns the first audio channel, its sample rate, and when its first sample plays in seconds from
    the first picture (as a player lines them up)."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        origin = float((video.start_time or 0) * video.time_base)
        frames = list(container.decode(container.streams.audio[0]))
        samples = np.concatenate([frame.to_ndarray()[0].astype(np.float32) for frame in frames])
        return samples, frames[0].sample_rate, float(frames[0].time or 0.0) - origin


def sound_onset(path: Path, level: float = 0.1) -> float:
    """Returns when the sound first gets louder than `level`, in seconds from the first picture."""
    samples, rate, start = sound_on_picture_clock(path)
    return start + int(np.flatnonzero(np.abs(samples) > level)[0]) / rate


def rotation_of(path: Path) -> float:
    """Returns the turn FFmpeg reads from a video's display matrix (degrees, as VideoFrame.rotation)."""
    with av.open(str(path)) as container:
        return float(next(container.decode(video=0)).rotation or 0)
