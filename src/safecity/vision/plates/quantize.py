"""An 8-bit copy of the bundled text detector, made on this machine: three times faster, a little less exact.

The PP-OCR text detector is most of a plate read's time on a CPU. Quantising its convolutions to int8
(weights per channel, activations per tensor) makes it about three times faster on the 2-core
benchmark machine; its boxes shift by a pixel or two and it misses a few more faint plates, which
cost 2 to 3 points of exact reads on US photos (bench/bench_plates.py, `text640` against
`text640-int8`). No model is downloaded: the copy is made from the model RapidOCR ships, calibrated
on synthetic street frames this module draws (so no licensed photo is needed), and cached by the
source model's hash.

    path = int8_model(bundled_model("PP-OCRv6_det_small.onnx"))   # made once, then cached
"""

from __future__ import annotations

import hashlib
import logging
import os
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from safecity.core.errors import InvalidInput

log = logging.getLogger(__name__)

RECIPE = "det-int8-v1"
"""Names the quantisation recipe below; part of the cache key, so changing the recipe remakes copies."""

CALIBRATION_SHAPES = ((352, 640), (480, 640), (416, 640), (640, 640), (192, 256), (128, 320), (704, 1280))
"""Detector input sizes the plate reader uses: whole frames at 640 px, close-ups, the 1280 px retry."""

CALIBRATION_FRAMES = 28

_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_PLAIN,
)
_CHARS = list(string.ascii_uppercase + string.digits)


def cache_dir() -> Path:
    """Where made models are kept: $SAFECITY_MODEL_CACHE, else the user's cache folder."""
    if env := os.environ.get("SAFECITY_MODEL_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "safecity" / "models"


def _texture(rng: np.random.Generator, h: int, w: int) -> npt.NDArray[np.float32]:
    """Coloured noise at several scales: the clutter of a street without any real picture in it."""
    out = np.zeros((h, w, 3), np.float32)
    amp = 1.0
    for octave in range(6):
        gh, gw = max(2, h >> (6 - octave)), max(2, w >> (6 - octave))
        noise = rng.normal(0, 1, (gh, gw, 3)).astype(np.float32)
        out += amp * cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
        amp *= 0.6
    out = (out - out.mean()) / (out.std() + 1e-6)
    return np.asarray(rng.uniform(60, 190, 3) + out * rng.uniform(15, 50), np.float32)


def _random_text(rng: np.random.Generator, low: int, high: int) -> str:
    return "".join(rng.choice(_CHARS, size=int(rng.integers(low, high))))


def _draw_plate(img: npt.NDArray[np.float32], rng: np.random.Generator) -> None:
    h, w = img.shape[:2]
    ph = int(rng.uniform(0.03, 0.15) * h)
    text = _random_text(rng, 5, 8)
    font = _FONTS[int(rng.integers(len(_FONTS)))]
    scale = ph / 30
    thick = max(1, int(scale * rng.uniform(1.5, 3)))
    (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    pw, tall = int(tw * 1.15) + 4, int(ph * 1.5)
    x0, y0 = int(rng.uniform(0, max(1, w - pw))), int(rng.uniform(0, max(1, h - tall)))
    # White, yellow (Sindh) or green-white (Punjab) plates with a dark border.
    backgrounds = (
        rng.uniform(200, 255, 3),
        np.array([40, 210, 240]) + rng.uniform(-20, 15, 3),
        np.array([230, 240, 230]),
    )
    colour = backgrounds[int(rng.integers(len(backgrounds)))]
    cv2.rectangle(img, (x0, y0), (x0 + pw, y0 + tall), colour.tolist(), -1)
    cv2.rectangle(img, (x0, y0), (x0 + pw, y0 + tall), (20, 20, 20), max(1, thick // 2))
    origin = (x0 + (pw - tw) // 2, y0 + (tall + th) // 2)
    cv2.putText(img, text, origin, font, scale, rng.uniform(0, 70, 3).tolist(), thick, cv2.LINE_AA)


def calibration_frame(rng: np.random.Generator, h: int, w: int) -> npt.NDArray[np.uint8]:
    """One synthetic street frame: clutter, vehicle-like blocks, plates and stray text, tilted,
    blurred, noisy and JPEG-compressed as a camera delivers it."""
    img = _texture(rng, h, w)
    for _ in range(int(rng.integers(2, 6))):
        x0, y0 = int(rng.uniform(0, w * 0.8)), int(rng.uniform(0, h * 0.8))
        bw, bh = int(rng.uniform(0.15, 0.6) * w), int(rng.uniform(0.15, 0.5) * h)
        cv2.rectangle(img, (x0, y0), (x0 + bw, y0 + bh), rng.uniform(10, 245, 3).tolist(), -1)
    for _ in range(int(rng.integers(1, 4))):
        _draw_plate(img, rng)
    for _ in range(int(rng.integers(0, 5))):
        # Signs, dealers' names, a camera's caption.
        scale = rng.uniform(0.3, 1.5) * h / 480
        origin = (int(rng.uniform(0, w * 0.7)), int(rng.uniform(20, h)))
        font = _FONTS[int(rng.integers(len(_FONTS)))]
        colour = rng.uniform(0, 255, 3).tolist()
        cv2.putText(img, _random_text(rng, 3, 12), origin, font, scale, colour, max(1, int(scale * 2)))
    frame = np.clip(img, 0, 255).astype(np.uint8)
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-8, 8), 1.0)
    frame = np.asarray(cv2.warpAffine(frame, turn, (w, h), borderMode=cv2.BORDER_REFLECT), np.uint8)
    if (sigma := rng.uniform(0, 1.5)) > 0.3:
        frame = np.asarray(cv2.GaussianBlur(frame, (0, 0), sigma), np.uint8)
    frame = np.clip(frame + rng.normal(0, rng.uniform(0, 6), frame.shape), 0, 255).astype(np.uint8)
    _, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 95))])
    return np.asarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), np.uint8)


def calibration_inputs(count: int = CALIBRATION_FRAMES, seed: int = 1) -> Iterator[npt.NDArray[np.float32]]:
    """Detector inputs (1x3xHxW, scaled to -1..1 as the detector scales frames) for calibration."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        frame = calibration_frame(rng, *CALIBRATION_SHAPES[i % len(CALIBRATION_SHAPES)])
        yield (frame.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]


def quantize_detector(source: Path, target: Path, frames: int = CALIBRATION_FRAMES) -> Path:
    """Write an int8 copy of the DB text detector at `source` to `target` (atomically) and return it."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(str(source))
    name = model.graph.input[0].name

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self.inputs = calibration_inputs(frames)

        def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
            x = next(self.inputs, None)
            return None if x is None else {name: x}

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        work = Path(tmp)
        # Per-channel weight scales need opset 13 (the bundled model is opset 11).
        if model.opset_import[0].version < 13:
            model = version_converter.convert_version(model, 13)
        onnx.save(model, str(work / "opset13.onnx"))
        quant_pre_process(str(work / "opset13.onnx"), str(work / "pre.onnx"), skip_symbolic_shape=True)
        quantize_static(
            str(work / "pre.onnx"),
            str(work / "int8.onnx"),
            Frames(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["Conv"],
            calibrate_method=CalibrationMethod.MinMax,
        )
        # Another process making the same copy at once writes the same bytes; the last rename wins.
        os.replace(work / "int8.onnx", target)
    return target


def int8_model(source: Path, cache: Path | None = None) -> Path:
    """The cached int8 copy of the detector at `source`, made first if missing or unreadable."""
    if not source.is_file():
        raise InvalidInput(f"detector model {source} does not exist", hint="check the model path")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = (cache or cache_dir()) / f"{source.stem}.{RECIPE}.{digest}.onnx"
    if target.is_file() and _loads(target):
        return target
    log.info("making an int8 copy of %s in %s (once, about 10 s)", source.name, target.parent)
    return quantize_detector(source, target)


def _loads(path: Path) -> bool:
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:  # truncated, overwritten or not ONNX at all: any unreadable copy is remade
        log.warning("remaking the cached model %s: %s", path, exc)
        return False
    return True
