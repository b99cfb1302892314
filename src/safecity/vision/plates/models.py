"""Result types, the detector interface and image loading shared by the plate reader's parts."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from safecity.core.errors import NotFound
from safecity.core.images import ImageLimits, read_image

Box = tuple[int, int, int, int]
"""An axis-aligned box in pixels: x, y (top-left), width, height."""


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


def load_image(path: str | Path, *, limits: ImageLimits = ImageLimits()) -> npt.NDArray[np.uint8]:
    """Read an image file as BGR; raise InvalidInput saying why when it cannot be used (`core.images`)."""
    return read_image(path, limits=limits)
