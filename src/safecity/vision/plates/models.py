"""Result types, the detector interface and image loading shared by the plate reader's parts."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
import numpy.typing as npt

from safecity.core.errors import InvalidInput, NotFound

Box = tuple[int, int, int, int]
"""An axis-aligned box in pixels: x, y (top-left), width, height."""

MAX_IMAGE_BYTES = 50 * 1024 * 1024
MAX_IMAGE_PIXELS = 80_000_000


@dataclass
class PlateRead:
    """One plate read from one image: the normalised text, how sure we are, and where it is."""

    plate: str
    confidence: float
    box: Box
    region: str
    raw: str
    crop: npt.NDArray[np.uint8] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, object]:
        """The JSON form the CLI and the API print."""
        return {"plate": self.plate, "confidence": round(self.confidence, 3), "box": list(self.box)}


def to_detections(reads: list[PlateRead]) -> Any:
    """The reads as a supervision `Detections` (xyxy, confidence, `data["plate"]`) for trackers and zones."""
    import supervision as sv

    corners = [[x, y, x + w, y + h] for x, y, w, h in (r.box for r in reads)]
    xyxy = np.array(corners, np.float32).reshape(-1, 4)
    return sv.Detections(
        xyxy=xyxy,
        confidence=np.array([r.confidence for r in reads], np.float32),
        data={"plate": np.array([r.plate for r in reads], dtype=object)},
    )


@runtime_checkable
class PlateDetector(Protocol):
    """Finds plate regions in a BGR frame; each box is (x, y, w, h) in the frame's pixels."""

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> list[Box]:
        """Plate boxes, most plate-like first."""
        ...


def bundled_model(name: str) -> Path:
    """Path of a model file shipped inside the `rapidocr` package (no download)."""
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        raise NotFound("the rapidocr package is not installed", hint="pip install 'rapidocr>=3,<4'")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise NotFound(f"bundled model {name} is missing from {path.parent}", hint="reinstall rapidocr 3.x")
    return path


def _check_dimensions(p: Path) -> None:
    """Refuse an image whose header declares too many pixels, before decoding it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as img:
            width, height = img.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return  # OpenCV may still decode it; if not, the corrupt-image error below says so
    except Image.DecompressionBombError as exc:
        raise InvalidInput(f"{p}: {exc}", hint="resize the image") from exc
    if width * height > MAX_IMAGE_PIXELS:
        raise InvalidInput(
            f"{p}: {width}x{height} pixels is more than the {MAX_IMAGE_PIXELS:,} limit",
            hint="resize the image",
        )


def load_image(path: str | Path) -> npt.NDArray[np.uint8]:
    """Read an image file as BGR; raise InvalidInput saying why when it cannot be used."""
    p = Path(path)
    if not p.exists():
        raise InvalidInput(f"{p}: no such file", hint="check the path")
    if not p.is_file():
        raise InvalidInput(f"{p}: not a regular file", hint="give an image file, not a folder")
    size = p.stat().st_size
    if size == 0:
        raise InvalidInput(f"{p}: the file is empty", hint="re-export or re-download the image")
    if size > MAX_IMAGE_BYTES:
        raise InvalidInput(
            f"{p}: {size / 1e6:.0f} MB is larger than the {MAX_IMAGE_BYTES // 2**20} MiB limit",
            hint="resize the image or send a video frame instead",
        )
    data = np.fromfile(p, dtype=np.uint8)
    # Check the header before decoding so that a decompression bomb is refused, not decoded.
    header = data[:64].tobytes()
    if not (header.startswith((b"\xff\xd8", b"\x89PNG", b"BM", b"RIFF", b"II*\x00", b"MM\x00*"))):
        raise InvalidInput(f"{p}: not a JPEG, PNG, BMP, WebP or TIFF image", hint="give a photo or frame")
    _check_dimensions(p)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise InvalidInput(f"{p}: the image data is corrupt or truncated", hint="re-export the image")
    if image.shape[0] * image.shape[1] > MAX_IMAGE_PIXELS:
        raise InvalidInput(
            f"{p}: {image.shape[1]}x{image.shape[0]} pixels is more than the {MAX_IMAGE_PIXELS:,} limit",
            hint="resize the image",
        )
    return np.asarray(image, dtype=np.uint8)
