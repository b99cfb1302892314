"""Made-up street footage with known camera faults, for tests, benchmarks and demos.

`write_footage` encodes an H.264 file (PyAV) of a textured street with moving vehicles, in which
chosen stretches are covered, frozen, dark, blurred, shifted (camera knocked askew) or sent at a
low frame rate; it returns the stretches so a test can compare what health monitoring reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np
import numpy.typing as npt

# "truck" (a lorry filling a third of the view) and "dusk" (light fading and returning) are not
# faults: they are the ordinary events a health check must not mistake for one.
Fault = Literal["normal", "truck", "dusk", "covered", "frozen", "dark", "blurred", "moved", "low_fps"]

#: The health state each fault should produce (see `safecity.core.events.HealthState`).
EXPECTED_STATE: dict[str, str] = {
    "normal": "online",
    "truck": "online",
    "dusk": "online",
    "covered": "covered",
    "frozen": "frozen",
    "dark": "too_dark",
    "blurred": "out_of_focus",
    "moved": "moved",
    "low_fps": "low_fps",
}


@dataclass(frozen=True)
class Stretch:
    """One stretch of the footage: its fault and its time span in stream seconds."""

    fault: Fault
    start_s: float
    end_s: float


def _street(width: int, height: int, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """Returns a textured, static street scene: sky, buildings with windows, a road with lanes."""
    img = np.zeros((height, width, 3), np.uint8)
    horizon = height * 2 // 5
    img[:horizon] = (200, 170, 140)
    x = 0
    while x < width:
        w = int(rng.integers(width // 14, width // 6))
        top = int(rng.integers(height // 20, horizon - height // 20))
        colour = tuple(int(c) for c in rng.integers(60, 200, 3))
        cv2.rectangle(img, (x, top), (x + w, horizon), colour, -1)
        step = max(4, width // 80)
        for wy in range(top + step, horizon - step, step * 2):
            for wx in range(x + step // 2, x + w - step, step * 2):
                shade = int(rng.integers(20, 255))
                cv2.rectangle(img, (wx, wy), (wx + step - 2, wy + step - 2), (shade, shade, 40), -1)
        x += w
    img[horizon:] = (90, 90, 90)
    for lane in range(1, 4):
        y = horizon + (height - horizon) * lane // 4
        for lx in range(0, width, width // 12):
            cv2.line(img, (lx, y), (lx + width // 24, y), (235, 235, 235), max(1, height // 150))
    grain = rng.integers(-4, 5, img.shape, dtype=np.int16)
    return np.clip(img.astype(np.int16) + grain, 0, 255).astype(np.uint8)


def _vehicles(scene: npt.NDArray[np.uint8], t: float, rng_seed: int) -> npt.NDArray[np.uint8]:
    """Returns the scene with a few vehicles drawn where they are at time `t`."""
    height, width = scene.shape[:2]
    out = scene.copy()
    rng = np.random.default_rng(rng_seed)
    horizon = height * 2 // 5
    for lane in range(4):
        speed = float(rng.uniform(0.08, 0.25)) * width
        length = int(rng.uniform(0.08, 0.14) * width)
        offset = float(rng.uniform(0, width))
        x = int((offset + speed * t * (1 if lane % 2 else -1)) % (width + length)) - length
        y = horizon + (height - horizon) * lane // 4 + height // 40
        colour = tuple(int(c) for c in rng.integers(30, 255, 3))
        cv2.rectangle(out, (x, y), (x + length, y + height // 10), colour, -1)
        cv2.rectangle(out, (x + length // 5, y - height // 25), (x + length * 4 // 5, y), colour, -1)
    return out


def _covered(width: int, height: int, t: float) -> npt.NDArray[np.uint8]:
    """Returns a hand or cloth over the lens: smooth, dim and almost featureless."""
    ramp = np.linspace(0, 1, width, dtype=np.float32)[None, :] * np.ones((height, 1), np.float32)
    base = 70 + 25 * ramp + 3 * np.sin(t)
    img = np.stack([base * 0.7, base * 0.85, base], axis=-1)
    return np.clip(img, 0, 255).astype(np.uint8)


def _shifted(img: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Returns the view of a camera knocked askew: shifted and slightly rotated."""
    height, width = img.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 4.0, 1.0)
    matrix[0, 2] += width * 0.12
    matrix[1, 2] += height * 0.08
    return np.asarray(cv2.warpAffine(img, matrix, (width, height), borderMode=cv2.BORDER_REFLECT), np.uint8)


def render_fault(
    fault: Fault, scene: npt.NDArray[np.uint8], t: float, last: npt.NDArray[np.uint8] | None
) -> npt.NDArray[np.uint8]:
    """Returns the picture a camera with `fault` shows at time `t` (`last` is the previous picture)."""
    height, width = scene.shape[:2]
    if fault == "frozen" and last is not None:
        return last
    if fault == "covered":
        return _covered(width, height, t)
    live = _vehicles(scene, t, rng_seed=7)
    if fault == "dark":
        return (live.astype(np.uint16) * 3 // 40).astype(np.uint8)
    if fault == "blurred":
        return np.asarray(cv2.GaussianBlur(live, (0, 0), sigmaX=max(2.0, width / 160)), np.uint8)
    if fault == "moved":
        return _shifted(live)
    if fault == "dusk":
        light = 0.7 + 0.3 * np.cos(2 * np.pi * t / 8)
        return (live.astype(np.float32) * light).astype(np.uint8)
    if fault == "truck":
        x = int((t * width * 0.5) % (2 * width)) - width // 2
        cv2.rectangle(live, (x, height // 4), (x + width * 11 // 20, height * 19 // 20), (225, 225, 230), -1)
        cv2.putText(
            live,
            "CARGO",
            (x + width // 10, height // 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            height / 200,
            (40, 40, 160),
            max(1, height // 100),
        )
    return live


def write_footage(
    path: Path,
    stretches: Sequence[tuple[Fault, float]],
    *,
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    gop: int | None = None,
    bframes: int = 0,
    low_fps_divisor: int = 5,
    bitrate_kbps: int | None = None,
    seed: int = 1,
) -> list[Stretch]:
    """Encodes H.264 footage made of `(fault, seconds)` stretches; returns their time spans.

    Without `bitrate_kbps` the quality is constant (CRF 26); with it, the bit rate is capped as an
    IP camera's is (1080p cameras typically send 2-6 Mbit/s), which sets how costly decoding is.
    """
    rng = np.random.default_rng(seed)
    scene = _street(width, height, rng)
    spans: list[Stretch] = []
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.codec_context.gop_size = gop or fps
        stream.codec_context.max_b_frames = bframes
        preset = "ultrafast" if width * height > 1_000_000 else "veryfast"
        if bitrate_kbps:
            stream.bit_rate = bitrate_kbps * 1000
            stream.options = {
                "preset": preset,
                "x264-params": f"vbv-maxrate={bitrate_kbps}:vbv-bufsize={bitrate_kbps * 2}",
            }
        else:
            stream.options = {"preset": preset, "crf": "26"}
        index, last = 0, None
        for fault, seconds in stretches:
            start = index / fps
            for _ in range(round(seconds * fps)):
                t = index / fps
                picture = render_fault(fault, scene, t, last)
                last = picture
                if fault != "low_fps" or index % low_fps_divisor == 0:
                    frame = av.VideoFrame.from_ndarray(picture, format="bgr24")
                    frame.pts = index
                    out.mux(stream.encode(frame))
                index += 1
            spans.append(Stretch(fault, start, index / fps))
        out.mux(stream.encode(None))
    return spans
