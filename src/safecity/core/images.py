"""The one way SafeCity turns image bytes into pixels: header first, limits checked, then decoded.

Every photo, upload, plate image and evidence frame passes here, so a file that declares 20000×20000
pixels is refused from its header (a few dozen bytes read) before a single pixel is allocated:

    >>> limits = ImageLimits(max_pixels=40_000_000, max_bytes=50 * 2**20)
    >>> image = decode_image(Path("car.jpg").read_bytes(), label="car.jpg", limits=limits)
    >>> image.shape  # BGR, uint8, EXIF orientation applied
    (1080, 1920, 3)
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from safecity.core.errors import InvalidInput

if TYPE_CHECKING:
    from safecity.settings import Settings

FORMATS_TEXT = "JPEG, PNG, BMP, WebP or TIFF"
_HINT_FORMAT = f"send a {FORMATS_TEXT} image"
_HINT_SMALLER = "send a smaller photo"


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """The largest image accepted: pixels declared by the header, and bytes of the file."""

    max_pixels: int = 40_000_000
    max_bytes: int = 50 * 1024**2

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageLimits:
        """Returns the limits configured by `image_max_megapixels` and `image_max_bytes`."""
        return cls(
            max_pixels=round(settings.image_max_megapixels * 1_000_000), max_bytes=settings.image_max_bytes
        )


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """What an image's header declares: its format and its size in pixels."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def ext(self) -> str:
        """The file extension the media store files this format under."""
        return {"jpeg": "jpg"}.get(self.format, self.format)


def sniff_format(data: bytes) -> str | None:
    """Returns the format named by the file's first bytes (jpeg, png, bmp, webp, tiff), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"BM"):
        return "bmp"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    return None


def read_header(data: bytes, *, label: str = "image") -> ImageHeader:
    """Returns the format and size the image declares, reading its header only; refuses non-images."""
    if not data:
        raise InvalidInput(f"{label} is empty", hint=_HINT_FORMAT)
    fmt = sniff_format(data)
    if fmt is None:
        raise InvalidInput(f"{label} is not a readable image (not a {FORMATS_TEXT})", hint=_HINT_FORMAT)
    try:
        width, height = _declared_size(fmt, data)
    except Exception:  # a hostile header may fail Pillow's parser in any way; each means "unreadable"
        width = height = 0
    if width <= 0 or height <= 0:
        raise InvalidInput(
            f"{label}: the {fmt.upper()} header is corrupt or truncated",
            hint="re-export or re-send the image",
        )
    return ImageHeader(format=fmt, width=width, height=height)


def check_image(data: bytes, *, label: str = "image", limits: ImageLimits = ImageLimits()) -> ImageHeader:
    """Returns the header of an image within `limits`, without decoding it; raises InvalidInput otherwise."""
    if len(data) > limits.max_bytes:
        raise InvalidInput(
            f"{label} is larger than {_megabytes(limits.max_bytes)} MB, the limit", hint=_HINT_SMALLER
        )
    header = read_header(data, label=label)
    if header.pixels > limits.max_pixels:
        raise InvalidInput(
            f"{label} is {header.width}×{header.height} = {_megapixels(header.pixels)} megapixels; "
            f"the limit is {_megapixels(limits.max_pixels)}",
            hint=_HINT_SMALLER,
        )
    if header.format == "jpeg" and not _jpeg_complete(data):
        raise InvalidInput(
            f"{label}: the image data is corrupt or truncated (the JPEG ends before its last scan does)",
            hint="re-export or re-send the image",
        )
    return header


def decode_image(
    data: bytes, *, label: str = "image", limits: ImageLimits = ImageLimits()
) -> npt.NDArray[np.uint8]:
    """Returns the BGR pixels of an image within `limits`, EXIF orientation applied; refuses the rest."""
    header = check_image(data, label=label, limits=limits)
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise InvalidInput(
            f"{label}: the image data is corrupt or truncated", hint="re-export or re-send the image"
        )
    height, width = image.shape[:2]
    if width * height > limits.max_pixels:  # a header that lied about its size
        raise InvalidInput(
            f"{label} is {width}×{height} = {_megapixels(width * height)} megapixels, not the "
            f"{header.width}×{header.height} its header declares; the limit is "
            f"{_megapixels(limits.max_pixels)}",
            hint=_HINT_SMALLER,
        )
    return np.ascontiguousarray(image, dtype=np.uint8)


def read_image(path: str | Path, *, limits: ImageLimits = ImageLimits()) -> npt.NDArray[np.uint8]:
    """Returns the BGR pixels of an image file; the file's size is checked before a byte is read."""
    p = Path(path)
    if not p.exists():
        raise InvalidInput(f"{p}: no such file", hint="check the path")
    if not p.is_file():
        raise InvalidInput(f"{p}: not a regular file", hint="give an image file, not a folder")
    size = p.stat().st_size
    if size == 0:
        raise InvalidInput(f"{p}: the file is empty", hint="re-export or re-download the image")
    if size > limits.max_bytes:
        raise InvalidInput(
            f"{p} is {size / 1e6:.1f} MB; the limit is {_megabytes(limits.max_bytes)} MB", hint=_HINT_SMALLER
        )
    try:
        with p.open("rb") as handle:
            data = handle.read(limits.max_bytes + 1)  # a file that grew since stat() is still capped
    except OSError as exc:
        raise InvalidInput(
            f"{p}: cannot be read ({exc.strerror})", hint="check the file's permissions"
        ) from exc
    return decode_image(data, label=str(p), limits=limits)


def _declared_size(fmt: str, data: bytes) -> tuple[int, int]:
    # The format plugins parse the header without Image.open's global bomb check, which would refuse
    # a large image with a message that does not name its size; the limit here is ours.
    from PIL import BmpImagePlugin, JpegImagePlugin, PngImagePlugin, TiffImagePlugin, WebPImagePlugin

    opener = {
        "jpeg": JpegImagePlugin.JpegImageFile,
        "png": PngImagePlugin.PngImageFile,
        "bmp": BmpImagePlugin.BmpImageFile,
        "webp": WebPImagePlugin.WebPImageFile,
        "tiff": TiffImagePlugin.TiffImageFile,
    }[fmt]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about odd EXIF or TIFF tags; the size is what counts
        with opener(io.BytesIO(data)) as image:
            width, height = image.size
    return int(width), int(height)


def _jpeg_complete(data: bytes) -> bool:
    """Returns whether a JPEG's segments run, marker by marker, to its end-of-image marker."""
    n, pos = len(data), 2
    while pos + 2 <= n:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == 0xD9:  # end of image
            return True
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            pos += 2
            continue
        if pos + 4 > n:
            return False
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker != 0xDA:
            continue
        # Entropy-coded data follows a start of scan: it runs to the next marker that is not a stuffed
        # 0xFF00 or a restart marker (those are part of the scan).
        while True:
            pos = data.find(b"\xff", pos)
            if pos < 0 or pos + 1 >= n:
                return False
            following = data[pos + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                pos += 2
            elif following == 0xFF:
                pos += 1
            else:
                break
    return False


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.3g}"


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.3g}"
